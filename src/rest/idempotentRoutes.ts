import { IDEMPOTENCY_HEADER, type IdempotentWrites } from '../service/idempotentWrites';
import type { FhirRequest, FhirResponse } from './fhirHttp';
import type { EndpointContext } from './interactions';
import type { RouteTable } from './routeTable';

/**
 * A customer endpoint's routes with `Idempotency-Key` honoured on writes and Bundles (POST, PUT, PATCH,
 * DELETE; not POST `_search` or operations, which write nothing): the request runs through the same routes,
 * inside the transaction in which idempotentWrites.ts records its answer.
 */
const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function idempotentRoutes(routes: RouteTable<EndpointContext>, writes: IdempotentWrites): Pick<RouteTable<EndpointContext>, 'handle'> {
  return {
    async handle(req: FhirRequest, ctx: EndpointContext): Promise<FhirResponse> {
      const key = req.headers[IDEMPOTENCY_HEADER];
      if (key === undefined || !WRITES.has(req.method) || /(^|\/)(_search|\$[^/]*)$/.test(req.path)) return routes.handle(req, ctx);
      const entries = (req.body as { entry?: unknown } | undefined)?.entry;
      const items = req.path === '' && Array.isArray(entries) ? Math.max(1, entries.length) : 1;
      return writes.run(ctx.service, { key, method: req.method, path: req.path, query: req.query, headers: req.headers, body: req.body, items }, (service) =>
        routes.handle(req, { ...ctx, service }),
      );
    },
  };
}
