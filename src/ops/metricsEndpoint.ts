import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { bearerToken } from '../access/caller';
import { unauthorized } from '../fhir/outcome';
import { sendOutcome } from '../rest/fastifyFhir';
import type { Metrics } from './metrics';

/**
 * Where Prometheus scrapes `/metrics`. By default on the main port, for a bearer token: METRICS_TOKEN when set,
 * else the admin token (so the figures are never public). With METRICS_PORT, on a listener of its own on that
 * port (and HOST), meant to be reachable only from the monitoring network: there no token is asked unless
 * METRICS_TOKEN is set.
 */
export interface MetricsEndpointOptions {
  metrics: Metrics;
  metricsToken?: string;
  adminToken: string;
  port?: number;
  host: string;
}

function sameSecret(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(presented), digest(expected));
}

export function mountMetrics(app: FastifyInstance, options: MetricsEndpointOptions): void {
  const { metrics } = options;
  if (options.port === undefined) {
    app.get('/metrics', async (request, reply) => {
      const token = bearerToken(request.headers.authorization);
      if (!sameSecret(token, options.metricsToken ?? options.adminToken)) {
        return sendOutcome(reply, unauthorized(`/metrics needs 'Authorization: Bearer <${options.metricsToken ? 'METRICS_TOKEN' : 'admin token'}>'`));
      }
      return reply.type(metrics.contentType).send(await metrics.scrape());
    });
    return;
  }
  let server: Server | undefined;
  app.addHook('onListen', async () => {
    server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'GET' || path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
        return;
      }
      if (options.metricsToken && !sameSecret(bearerToken(req.headers.authorization), options.metricsToken)) {
        res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' }).end('Authorization: Bearer <METRICS_TOKEN> required\n');
        return;
      }
      metrics.scrape().then(
        (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        (err: Error) => {
          app.log.error({ err }, 'metrics scrape failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('scrape failed\n');
        },
      );
    });
    const listening = server;
    await new Promise<void>((resolve, reject) => {
      listening.once('error', reject);
      listening.listen(options.port, options.host, () => resolve());
    });
    app.log.info(`metrics on http://${options.host}:${(listening.address() as { port: number }).port}/metrics`);
  });
  app.addHook('onClose', async () => {
    if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
  });
}
