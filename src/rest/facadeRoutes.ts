import { methodNotAllowed, notFound } from '../fhir/outcome';
import type { Bundle, Resource } from '../fhir/types';
import { FACADE_TYPES, isFacadeType, r4SearchParam, r4ToStu3 } from '../facade/r4ToStu3';
import type { FhirService } from '../service/fhirService';
import { type FhirRequest, ok, parsePrefer, versionHeaders } from './fhirHttp';
import { RouteTable, type RouteHandler } from './routeTable';

/**
 * The facade endpoint `/fhir/facade/` (issue 14 item 2; DESIGN §1): read-only STU3 views of the native record
 * of the caller's organisation, and nothing else. The service it gets from the authorisation point is bound
 * to that organisation's native store, so no customer-endpoint data can reach it; each resource is converted
 * to STU3 on the way out (src/facade/r4ToStu3.ts). Types outside FACADE_TYPES are 404 and every write is 405.
 */
export interface FacadeContext {
  service: FhirService;
  baseUrl: string;
}

function requireFacadeType(type: string): void {
  if (!isFacadeType(type)) throw notFound(`The facade serves ${FACADE_TYPES.join(', ')}; not ${type}`);
}

const read: RouteHandler<FacadeContext> = async (_req, p, ctx) => {
  requireFacadeType(p.type);
  const stored = await ctx.service.read(p.type, p.id);
  return ok(r4ToStu3(stored.resource as Resource), 200, versionHeaders(stored));
};

async function searchWith(req: FhirRequest, type: string, params: [string, string][], ctx: FacadeContext) {
  requireFacadeType(type);
  const handling = parsePrefer(req.headers.prefer).handling ?? 'lenient';
  const bundle: Bundle = await ctx.service.search(
    type,
    params.map(([k, v]) => [r4SearchParam(type, k), v]),
    { baseUrl: ctx.baseUrl, handling },
  );
  // Included resources of other types (the organisation's own Organization) are not part of the facade.
  const entry = (bundle.entry ?? []).filter((e) => !e.resource || isFacadeType(e.resource.resourceType) || e.resource.resourceType === 'OperationOutcome');
  return ok({ ...bundle, entry: entry.map((e) => (e.resource && e.resource.resourceType !== 'OperationOutcome' ? { ...e, resource: r4ToStu3(e.resource) } : e)) });
}

const search: RouteHandler<FacadeContext> = (req, p, ctx) => searchWith(req, p.type, req.query, ctx);
const searchPost: RouteHandler<FacadeContext> = (req, p, ctx) => {
  const form = typeof req.body === 'string' ? [...new URLSearchParams(req.body).entries()] : [];
  return searchWith(req, p.type, [...req.query, ...form], ctx);
};

const readOnly: RouteHandler<FacadeContext> = async (req) => {
  throw methodNotAllowed(`The facade endpoint is read-only: ${req.method} is not allowed`);
};

export function facadeRoutes(): RouteTable<FacadeContext> {
  const table = new RouteTable<FacadeContext>()
    .add('GET', ':type', search)
    .add('POST', ':type/_search', searchPost)
    .add('GET', ':type/:id', read)
    .add('POST', '', readOnly)
    .add('POST', ':type', readOnly);
  for (const method of ['PUT', 'PATCH', 'DELETE'] as const) table.add(method, ':type', readOnly).add(method, ':type/:id', readOnly);
  return table;
}
