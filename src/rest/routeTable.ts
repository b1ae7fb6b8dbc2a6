import { methodNotAllowed, notFound } from '../fhir/outcome';
import { assertId, assertVersionId, decodeSegment } from './requestSyntax';
import type { FhirRequest, FhirResponse, HttpMethod } from './fhirHttp';

/**
 * A small table of FHIR REST routes (http.html#summary), matched on path segments.
 * `:type` matches a capitalised resource type name, `$op` an operation name, other `:x` any segment.
 */
export type RouteParams = Record<string, string>;
export type RouteHandler<C> = (req: FhirRequest, params: RouteParams, ctx: C) => Promise<FhirResponse>;

interface Route<C> {
  method: HttpMethod;
  pattern: string[];
  handler: RouteHandler<C>;
}

function matchSegment(pattern: string, segment: string, params: RouteParams): boolean {
  if (pattern === ':type') {
    if (!/^[A-Z][A-Za-z]*$/.test(segment)) return false;
    params.type = segment;
    return true;
  }
  if (pattern === '$op') {
    if (!/^\$[A-Za-z][A-Za-z0-9-]*$/.test(segment)) return false;
    params.op = segment.slice(1);
    return true;
  }
  if (pattern.startsWith(':')) {
    if (segment.startsWith('$') || segment.startsWith('_')) return false;
    // Ids are checked against FHIR's syntax here, before any handler can take them to SQL.
    if (pattern === ':id') assertId(segment);
    if (pattern === ':vid') assertVersionId(segment);
    params[pattern.slice(1)] = segment;
    return true;
  }
  return pattern === segment;
}

export class RouteTable<C> {
  private readonly routes: Route<C>[] = [];

  add(method: HttpMethod, path: string, handler: RouteHandler<C>): this {
    this.routes.push({ method, pattern: path === '' ? [] : path.split('/'), handler });
    return this;
  }

  /** 404 when no route has this shape, 405 when one does but not for this method. */
  async handle(req: FhirRequest, ctx: C): Promise<FhirResponse> {
    const segments = req.path === '' ? [] : req.path.split('/').map(decodeSegment);
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    let shapeMatched = false;
    for (const route of this.routes) {
      if (route.pattern.length !== segments.length) continue;
      const params: RouteParams = {};
      if (!route.pattern.every((p, i) => matchSegment(p, segments[i], params))) continue;
      shapeMatched = true;
      if (route.method === method) return route.handler(req, params, ctx);
    }
    if (shapeMatched) throw methodNotAllowed(`${req.method} is not supported on '${req.path || '/'}' at this endpoint`);
    throw notFound(`No FHIR interaction matches '${req.path || '/'}'`);
  }
}
