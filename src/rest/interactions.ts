import { badRequest, informational, methodNotAllowed, preconditionFailed } from '../fhir/outcome';
import { parseFhirJson } from '../fhir/losslessJson';
import type { Bundle, BundleEntry, FhirVersion, Resource } from '../fhir/types';
import type { FhirService, WriteOutcome } from '../service/fhirService';
import { parseQuery } from '../service/fhirService';
import { BundleProcessor } from '../service/bundleProcessor';
import { reportParameters } from '../aggregator/reportParameters';
import type { HistoryPage, StoredVersion } from '../store/resourceRepository';
import { type FhirRequest, type FhirResponse, ok, okStored, parseEtag, parsePrefer, versionHeaders, weakEtag } from './fhirHttp';
import type { RouteParams } from './routeTable';

/** What every FHIR REST handler needs: the service bound to one store, and where that store is served. */
export interface EndpointContext {
  service: FhirService;
  /** Largest batch/transaction Bundle accepted, in entries. */
  bundleMaxEntries?: number;
  /** FHIR `$graphql` over this endpoint (system level, or with an instance as the root). */
  graphql?(request: { query: string; variables?: Record<string, unknown>; operationName?: string | null }, instance?: Resource): Promise<unknown>;
  /** What the aggregator made of an upstream resource (customer endpoints). */
  aggregationStatus?(type: string, id: string): Promise<Resource>;
  /** Absolute URL of the endpoint root, no trailing slash. */
  baseUrl: string;
  /** The endpoint's FHIR version (R4 when not given): XML bodies are read and written by its definitions. */
  fhirVersion?: FhirVersion;
}

type Handler = (req: FhirRequest, p: RouteParams, ctx: EndpointContext) => Promise<FhirResponse>;

const DEFAULT_PAGE = 50;
const MAX_PAGE = 1000;

function ifMatch(req: FhirRequest): number | undefined {
  const v = parseEtag(req.headers['if-match']);
  if (Number.isNaN(v)) throw preconditionFailed(`If-Match '${req.headers['if-match']}' is not a version tag such as W/"3"`);
  return v;
}

/** The answer to a write, shaped by `Prefer: return` (http.html#ops). */
function writeResponse(req: FhirRequest, ctx: EndpointContext, result: WriteOutcome, status: number): FhirResponse {
  const { stored } = result;
  const headers: Record<string, string> = versionHeaders(stored);
  if (status === 201) headers.Location = `${ctx.baseUrl}/${stored.type}/${stored.id}/_history/${stored.versionId}`;
  const prefer = parsePrefer(req.headers.prefer).return;
  if (prefer === 'minimal') return { status, headers };
  if (prefer === 'OperationOutcome') {
    const verb = status === 201 ? 'Created' : 'Updated';
    return ok(informational(`${verb} ${stored.type}/${stored.id} version ${stored.versionId}`), status, headers);
  }
  return ok(stored.resource as Resource, status, headers);
}

/** POST [base] with a batch or transaction Bundle (http.html#transaction). */
export const transaction: Handler = async (req, _p, ctx) => {
  const bundle = await new BundleProcessor(ctx.service).process(req.body, {
    baseUrl: ctx.baseUrl,
    maxEntries: ctx.bundleMaxEntries ?? 10_000,
    returnResources: parsePrefer(req.headers.prefer).return === 'representation',
  });
  return ok(bundle);
};

/** GET [type]/[id]/$aggregation-status: an OperationOutcome saying whether and why (not) it is aggregated. */
export const aggregationStatus: Handler = async (_req, p, ctx) => {
  await ctx.service.read(p.type, p.id);
  if (!ctx.aggregationStatus) throw methodNotAllowed('$aggregation-status is not available here');
  return ok(await ctx.aggregationStatus(p.type, p.id));
};

/** GET [base]/$aggregation-report: the endpoint's aggregation report as a Parameters resource (aggregator/report.ts). */
export const aggregationReport: Handler = async (_req, _p, ctx) => ok(reportParameters(await ctx.service.aggregationReport()));

/** `$graphql` (graphql.html#invoking): the query in `query` (GET) or a JSON body {query, variables, operationName}. */
export const graphqlOperation: Handler = async (req, p, ctx) => {
  if (!ctx.graphql) throw methodNotAllowed('$graphql is not available here');
  const body = req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {};
  const fromQuery = (name: string) => req.query.find(([k]) => k === name)?.[1];
  const query = (body.query as string | undefined) ?? fromQuery('query') ?? (typeof req.body === 'string' ? req.body : undefined);
  if (!query) throw badRequest('$graphql needs a query', 'query');
  let variables = body.variables as Record<string, unknown> | undefined;
  const variablesText = fromQuery('variables');
  if (!variables && variablesText) {
    try {
      variables = parseFhirJson(variablesText) as Record<string, unknown>;
    } catch {
      throw badRequest("'variables' is not JSON", 'variables');
    }
  }
  const instance = p.type && p.id ? ((await ctx.service.read(p.type, p.id)).resource as Resource) : undefined;
  return ok((await ctx.graphql({ query, variables, operationName: (body.operationName as string | undefined) ?? fromQuery('operationName') }, instance)) as Resource);
};

export const read: Handler = async (req, p, ctx) => {
  const stored = await ctx.service.read(p.type, p.id);
  const headers = versionHeaders(stored);
  // Conditional read (http.html#cread): the client's copy is current → 304 with no body.
  const noneMatch = req.headers['if-none-match'];
  if (noneMatch && parseEtag(noneMatch) === stored.versionId) return { status: 304, headers };
  const since = req.headers['if-modified-since'];
  if (since && !noneMatch) {
    const t = Date.parse(since);
    if (!Number.isNaN(t) && Math.floor(stored.lastUpdated.getTime() / 1000) <= Math.floor(t / 1000)) return { status: 304, headers };
  }
  return okStored(stored, headers);
};

export const vread: Handler = async (_req, p, ctx) => {
  const stored = await ctx.service.vread(p.type, p.id, p.vid);
  return ok(stored.resource as Resource, 200, versionHeaders(stored));
};

export const create: Handler = async (req, p, ctx) => {
  const result = await ctx.service.create(p.type, req.body, { ifNoneExist: req.headers['if-none-exist'] });
  return writeResponse(req, ctx, result, result.created ? 201 : 200);
};

export const update: Handler = async (req, p, ctx) => {
  const result = await ctx.service.update(p.type, p.id, req.body, { ifMatch: ifMatch(req) });
  return writeResponse(req, ctx, result, result.created ? 201 : 200);
};

export const conditionalUpdate: Handler = async (req, p, ctx) => {
  const result = await ctx.service.conditionalUpdate(p.type, req.query, req.body, { ifMatch: ifMatch(req) });
  return writeResponse(req, ctx, result, result.created ? 201 : 200);
};

export const patch: Handler = async (req, p, ctx) => {
  if (req.contentType && req.contentType !== 'application/json-patch+json') {
    throw badRequest(`PATCH takes a JSON Patch body (application/json-patch+json), not ${req.contentType}`);
  }
  const result = await ctx.service.patch(p.type, p.id, req.body, { ifMatch: ifMatch(req) });
  return writeResponse(req, ctx, result, 200);
};

function deleted(stored: StoredVersion | undefined): FhirResponse {
  return { status: 204, headers: stored ? { ETag: weakEtag(stored.versionId) } : {} };
}

export const remove: Handler = async (_req, p, ctx) => deleted(await ctx.service.delete(p.type, p.id));

export const conditionalDelete: Handler = async (req, p, ctx) => deleted(await ctx.service.conditionalDelete(p.type, req.query));

/** GET [type]?… and GET [base]?_type=… (search.html). */
export const search: Handler = async (req, p, ctx) => searchWith(req, p.type, req.query, ctx);

/** POST [type]/_search: parameters in a form body, the URL, or both (search.html#Introduction). */
export const searchPost: Handler = async (req, p, ctx) => {
  const form = typeof req.body === 'string' ? [...new URLSearchParams(req.body).entries()] : [];
  return searchWith(req, p.type, [...req.query, ...form], ctx);
};

function searchWith(req: FhirRequest, type: string | undefined, params: [string, string][], ctx: EndpointContext): Promise<FhirResponse> {
  const handling = parsePrefer(req.headers.prefer).handling ?? 'lenient';
  return ctx.service.search(type, params, { baseUrl: ctx.baseUrl, handling }).then((bundle) => ok(bundle));
}

function historyOptions(req: FhirRequest) {
  const get = (name: string) => req.query.find(([k]) => k === name)?.[1];
  const countText = get('_count');
  const count = countText === undefined ? DEFAULT_PAGE : Number(countText);
  if (!Number.isInteger(count) || count < 0) throw badRequest(`_count must be a non-negative integer, got '${countText}'`, '_count');
  const sinceText = get('_since');
  const since = sinceText === undefined ? undefined : new Date(sinceText);
  if (since && Number.isNaN(since.getTime())) throw badRequest(`_since must be an instant, got '${sinceText}'`, '_since');
  const atText = get('_at');
  const before = atText === undefined ? undefined : new Date(atText);
  if (before && Number.isNaN(before.getTime())) throw badRequest(`_at must be a date, got '${atText}'`, '_at');
  return { count: Math.min(count, MAX_PAGE), since, before, cursor: get('_cursor') };
}

function historyEntry(ctx: EndpointContext, v: StoredVersion): BundleEntry {
  const url = `${v.type}/${v.id}`;
  const entry: BundleEntry = { fullUrl: `${ctx.baseUrl}/${url}` };
  if (v.resource) entry.resource = v.resource;
  entry.request = v.deleted ? { method: 'DELETE', url } : v.versionId === 1 ? { method: 'POST', url: v.type } : { method: 'PUT', url };
  entry.response = {
    status: v.deleted ? '204' : v.versionId === 1 ? '201' : '200',
    etag: weakEtag(v.versionId),
    lastModified: v.lastUpdated.toISOString(),
  };
  return entry;
}

/** A `history` Bundle, newest first, with `self`/`next` links (http.html#history). */
function historyBundle(req: FhirRequest, ctx: EndpointContext, page: HistoryPage, options: ReturnType<typeof historyOptions>): Bundle {
  const base = `${ctx.baseUrl}/${req.path}`.replace(/\/$/, '');
  const keep = req.query.filter(([k]) => k !== '_cursor' && k !== '_count');
  const link = (cursor?: string) => {
    const pairs: [string, string][] = [...keep, ['_count', String(options.count)]];
    if (cursor) pairs.push(['_cursor', cursor]);
    const q = new URLSearchParams(pairs);
    return `${base}?${q.toString()}`;
  };
  const links = [{ relation: 'self', url: link(options.cursor) }];
  if (page.next) links.push({ relation: 'next', url: link(page.next) });
  return { resourceType: 'Bundle', type: 'history', link: links, entry: page.entries.map((v) => historyEntry(ctx, v)) };
}

export const history: Handler = async (req, p, ctx) => {
  const options = historyOptions(req);
  const page = await ctx.service.history({ type: p.type, id: p.id }, options);
  return ok(historyBundle(req, ctx, page, options));
};

export { parseQuery };
