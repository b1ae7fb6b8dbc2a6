import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { badRequest, OperationOutcomeError, operationOutcome } from '../fhir/outcome';
import type { Resource } from '../fhir/types';
import { type FhirRequest, type FhirResponse, type HttpMethod, ok } from './fhirHttp';
import type { RouteTable } from './routeTable';

/**
 * The only place FHIR REST meets Fastify: turns an HTTP request into a `FhirRequest`, runs the route table,
 * and writes the `FhirResponse` (or the OperationOutcome of an error) back with FHIR's media types.
 */
export interface FhirMount<C> {
  /** Fastify path prefix of the endpoint root, e.g. `/fhir/customer/:endpointId`. */
  prefix: string;
  routes: RouteTable<C>;
  /**
   * The CapabilityStatement (`GET [base]/metadata`), answered before `context` and so without a token:
   * FHIR clients read it before they authenticate (http.html#capabilities).
   */
  metadata(request: FastifyRequest): Promise<Resource>;
  /** Authenticates and resolves the endpoint; throws an OperationOutcomeError to refuse. */
  context(request: FastifyRequest): Promise<C>;
}

const JSON_TYPES = ['application/fhir+json', 'application/json', 'application/json-patch+json'];
const FORMAT_ALIASES: Record<string, string> = {
  json: 'application/fhir+json',
  'application/json': 'application/json',
  'application/fhir+json': 'application/fhir+json',
  'text/json': 'application/json',
};

/** The media type to answer with, from `_format` (which wins) or `Accept`; 406 when only XML/RDF is acceptable. */
export function negotiate(format: string | undefined, accept: string | undefined): string {
  if (format !== undefined) {
    const type = FORMAT_ALIASES[format.split(';')[0].trim()];
    if (!type) throw new OperationOutcomeError(406, operationOutcome([{ severity: 'error', code: 'not-supported', diagnostics: `_format '${format}' is not supported: this server speaks JSON only`, expression: ['_format'] }]));
    return type;
  }
  if (!accept) return 'application/fhir+json';
  const ranges = accept.split(',').map((r) => r.split(';')[0].trim().toLowerCase());
  if (ranges.some((r) => r === 'application/fhir+json' || r === '*/*' || r === 'application/*' || r === '')) return 'application/fhir+json';
  if (ranges.some((r) => r === 'application/json' || r === 'text/json')) return 'application/json';
  throw new OperationOutcomeError(406, operationOutcome([{ severity: 'error', code: 'not-supported', diagnostics: `Cannot answer in '${accept}': this server speaks application/fhir+json and application/json` }]));
}

function splitQuery(url: string): { query: [string, string][]; format?: string; pretty: boolean } {
  const i = url.indexOf('?');
  const all = i < 0 ? [] : [...new URLSearchParams(url.slice(i + 1)).entries()];
  const format = all.find(([k]) => k === '_format')?.[1];
  const pretty = all.some(([k, v]) => k === '_pretty' && v === 'true');
  return { query: all.filter(([k]) => k !== '_format' && k !== '_pretty'), format, pretty };
}

export function sendOutcome(reply: FastifyReply, err: OperationOutcomeError, mediaType = 'application/fhir+json'): FastifyReply {
  return reply
    .status(err.status)
    .headers(err.headers)
    .type(`${mediaType}; charset=utf-8`)
    .send(JSON.stringify(err.outcome));
}

/** Installs JSON body parsing for FHIR media types (and forms for `_search`) in the caller's plugin scope. */
export function installFhirParsers(app: FastifyInstance, bodyLimit: number): void {
  app.removeContentTypeParser(['application/json']);
  app.addContentTypeParser(JSON_TYPES, { parseAs: 'string', bodyLimit }, (_req, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (e) {
      done(badRequest(`The body is not valid JSON: ${(e as Error).message}`));
    }
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit }, (_req, body, done) => done(null, body));
}

function fhirRequestOf(request: FastifyRequest, path: string, query: [string, string][]): FhirRequest {
  return {
    method: request.method as HttpMethod,
    path,
    query,
    headers: request.headers as Record<string, string | undefined>,
    body: request.body,
    contentType: request.headers['content-type']?.split(';')[0].trim().toLowerCase(),
  };
}

export function mountFhir<C>(app: FastifyInstance, mount: FhirMount<C>): void {
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const { query, format, pretty } = splitQuery(request.raw.url ?? '');
    let mediaType = 'application/fhir+json';
    try {
      mediaType = negotiate(format, request.headers.accept);
      const params = request.params as Record<string, string>;
      const path = (params['*'] ?? '').replace(/\/+$/, '');
      const response: FhirResponse =
        path === 'metadata' && (request.method === 'GET' || request.method === 'HEAD')
          ? ok(await mount.metadata(request))
          : await mount.routes.handle(fhirRequestOf(request, path, query), await mount.context(request));
      reply.status(response.status).headers(response.headers);
      if (response.body === undefined || response.status === 304) return reply.send();
      return reply.type(`${mediaType}; charset=utf-8`).send(pretty ? JSON.stringify(response.body, null, 2) : JSON.stringify(response.body));
    } catch (err) {
      if (err instanceof OperationOutcomeError) return sendOutcome(reply, err, mediaType);
      throw err;
    }
  };
  const methods: HttpMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
  app.route({ method: methods, url: `${mount.prefix}`, handler });
  app.route({ method: methods, url: `${mount.prefix}/*`, handler });
}
