import { randomUUID } from 'node:crypto';
import type { Permission } from '../access/scopes';
import { badRequest, notFound, OperationOutcomeError, operationOutcome, payloadTooLarge, tooManyMatches, type OperationOutcome } from '../fhir/outcome';
import type { Bundle, BundleEntry, Resource } from '../fhir/types';
import type { StoredVersion } from '../store/resourceRepository';
import { type FhirService, parseQuery } from './fhirService';

/**
 * Batch and transaction Bundles (http.html#transaction). A transaction runs in one database transaction:
 * placeholders (`urn:uuid:`/`urn:oid:` fullUrls) and conditional references are resolved first, then the
 * entries run in the order the spec fixes (DELETE, POST, PUT/PATCH, GET); any failure rolls everything
 * back and is reported as one OperationOutcome naming the entry. A batch runs each entry on its own.
 * Every entry's interaction is checked against the caller's scopes before anything is written: one
 * refused entry refuses a transaction (403 naming it), and fails only itself in a batch.
 */
export interface BundleOptions {
  baseUrl: string;
  maxEntries: number;
  /** `Prefer: return=representation` puts each resource in its response entry. */
  returnResources: boolean;
}

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
const ORDER: Record<Method, number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3, HEAD: 3 };

interface Work {
  index: number;
  fullUrl?: string;
  method: Method;
  type: string;
  id?: string;
  vid?: string;
  query?: [string, string][];
  resource?: Resource;
  ifNoneExist?: string;
  ifMatch?: number;
  /** Set during resolution: the id a POST or conditional PUT will write. */
  targetId?: string;
  /** A conditional create that matched: the existing resource answers. */
  existing?: boolean;
  response?: BundleEntry['response'];
  result?: Resource;
}

class EntryError extends Error {
  constructor(
    readonly work: { index: number; fullUrl?: string },
    readonly outcomeError: OperationOutcomeError,
  ) {
    super(outcomeError.message);
  }
}

const where = (w: { index: number; fullUrl?: string }) => `Bundle.entry[${w.index}]${w.fullUrl ? ` (${w.fullUrl})` : ''}`;

function parseEntry(entry: unknown, index: number): Work {
  const fail = (msg: string) => badRequest(`Bundle.entry[${index}]: ${msg}`, `Bundle.entry[${index}]`);
  if (!entry || typeof entry !== 'object') throw fail('must be an object');
  const e = entry as BundleEntry;
  const request = e.request;
  if (!request || typeof request.method !== 'string' || typeof request.url !== 'string') throw fail('needs request.method and request.url');
  const method = request.method.toUpperCase() as Method;
  if (!(method in ORDER)) throw fail(`request.method '${request.method}' is not one of GET, HEAD, POST, PUT, PATCH, DELETE`);
  const url = request.url.replace(/^\/+/, '');
  const [path, qs] = url.split('?', 2) as [string, string | undefined];
  const segments = path.split('/').filter((s) => s !== '');
  const type = segments[0];
  if (!type || !/^[A-Z][A-Za-z]+$/.test(type)) throw fail(`request.url '${request.url}' does not start with a resource type`);
  const work: Work = { index, fullUrl: e.fullUrl, method, type, id: segments[1], resource: e.resource };
  if (segments[2] === '_history' && segments[3]) work.vid = segments[3];
  if (qs !== undefined) work.query = [...new URLSearchParams(qs).entries()];
  if (request.ifNoneExist) work.ifNoneExist = request.ifNoneExist;
  if (request.ifMatch) {
    const m = /^W\/"(\d+)"$/.exec(request.ifMatch.trim()) ?? /^"?(\d+)"?$/.exec(request.ifMatch.trim());
    if (!m) throw fail(`request.ifMatch '${request.ifMatch}' is not a version tag such as W/"3"`);
    work.ifMatch = Number(m[1]);
  }
  if ((method === 'POST' || method === 'PUT') && (!e.resource || typeof e.resource !== 'object')) throw fail(`a ${method} needs a resource`);
  if (e.resource && (e.resource as Resource).resourceType !== type && method !== 'PATCH') {
    throw fail(`the resource is a ${(e.resource as Resource).resourceType}, but request.url names ${type}`);
  }
  if (method === 'PUT' && !work.id && !work.query) throw fail('a PUT needs an id or search criteria in request.url');
  if (method === 'DELETE' && !work.id && !work.query) throw fail('a DELETE needs an id or search criteria in request.url');
  return work;
}

/**
 * The objects holding a string `reference`, wherever they sit in a resource, in document order: resolved and
 * rewritten from this one list rather than by walking the resource once for each.
 */
export function referenceHolders(node: unknown, into: Record<string, unknown>[]): Record<string, unknown>[] {
  if (Array.isArray(node)) {
    for (const item of node) referenceHolders(item, into);
    return into;
  }
  if (!node || typeof node !== 'object') return into;
  const obj = node as Record<string, unknown>;
  for (const key in obj) {
    const value = obj[key];
    if (key === 'reference' && typeof value === 'string') into.push(obj);
    else if (value !== null && typeof value === 'object') referenceHolders(value, into);
  }
  return into;
}

/** The scopes an entry's interaction needs (the same as FhirService's for that interaction). */
function permissionsOf(w: Work): Permission[] {
  switch (w.method) {
    case 'DELETE':
      return w.query ? ['d', 's'] : ['d'];
    case 'POST':
      return w.ifNoneExist ? ['c', 's'] : ['c'];
    case 'PUT':
      return w.query ? ['u', 's'] : ['u'];
    case 'PATCH':
      return ['u'];
    default:
      return w.id ? ['r'] : ['s'];
  }
}

function responseOf(stored: StoredVersion, status: string): BundleEntry['response'] {
  return {
    status,
    location: `${stored.type}/${stored.id}/_history/${stored.versionId}`,
    etag: `W/"${stored.versionId}"`,
    lastModified: stored.lastUpdated.toISOString(),
  };
}

function asEntryError(work: { index: number; fullUrl?: string }, err: unknown): unknown {
  if (err instanceof EntryError) return err;
  if (err instanceof OperationOutcomeError) return new EntryError(work, err);
  return err;
}

/** The JSON Patch a transaction carries: a Binary whose data is the patch document (http.html#patch). */
function patchDocument(work: Work): unknown {
  const r = work.resource as (Resource & { contentType?: string; data?: string }) | undefined;
  if (!r || r.resourceType !== 'Binary' || typeof r.data !== 'string') {
    throw badRequest('A PATCH entry needs a Binary resource holding a JSON Patch (contentType application/json-patch+json)');
  }
  try {
    return JSON.parse(Buffer.from(r.data, 'base64').toString('utf8'));
  } catch {
    throw badRequest("The PATCH entry's Binary.data is not base64-encoded JSON");
  }
}

export class BundleProcessor {
  constructor(private readonly service: FhirService) {}

  async process(body: unknown, options: BundleOptions): Promise<Bundle> {
    if (!body || typeof body !== 'object' || (body as Resource).resourceType !== 'Bundle') {
      throw badRequest('POST to the endpoint root takes a Bundle of type transaction or batch', 'Bundle');
    }
    const bundle = body as Bundle;
    if (bundle.type !== 'transaction' && bundle.type !== 'batch') {
      throw badRequest(`Bundle.type '${bundle.type}' cannot be processed; send a transaction or batch (to store a Bundle as a resource, POST it to /Bundle)`, 'Bundle.type');
    }
    const entries = bundle.entry ?? [];
    if (!Array.isArray(entries)) throw badRequest('Bundle.entry must be an array', 'Bundle.entry');
    if (entries.length > options.maxEntries) {
      throw payloadTooLarge(`The Bundle has ${entries.length} entries; this server takes at most ${options.maxEntries} per request`);
    }
    return bundle.type === 'transaction' ? this.transaction(entries, options) : this.batch(entries, options);
  }

  private async transaction(entries: unknown[], options: BundleOptions): Promise<Bundle> {
    const works = entries.map(parseEntry);
    const seen = new Set<string>();
    for (const w of works) {
      if (w.fullUrl && (w.method === 'POST' || w.method === 'PUT')) {
        if (seen.has(w.fullUrl)) throw badRequest(`${where(w)}: fullUrl appears more than once in the transaction`, `Bundle.entry[${w.index}].fullUrl`);
        seen.add(w.fullUrl);
      }
    }
    try {
      for (const w of works) this.authorize(w);
      await this.service.transaction(async (svc) => {
        await this.resolve(svc, works);
        await this.execute(svc, works, options);
      }, works.length);
    } catch (err) {
      if (err instanceof EntryError) {
        const issues = err.outcomeError.outcome.issue.map((i) => ({
          ...i,
          diagnostics: `${where(err.work)}: ${i.diagnostics ?? i.code}`,
          expression: [...(i.expression ?? []), `Bundle.entry[${err.work.index}]`],
        }));
        throw new OperationOutcomeError(err.outcomeError.status, operationOutcome(issues), err.outcomeError.headers);
      }
      throw err;
    }
    return {
      resourceType: 'Bundle',
      type: 'transaction-response',
      entry: works.map((w) => ({
        ...(w.result && options.returnResources ? { fullUrl: `${options.baseUrl}/${w.result.resourceType}/${w.result.id}`, resource: w.result } : {}),
        response: w.response,
      })),
    };
  }

  /** Throws an EntryError unless the entry's type is known and the caller may run its interaction on it. */
  private authorize(w: Work): void {
    try {
      this.service.requireType(w.type);
      this.service.requireScope(w.type, ...permissionsOf(w));
    } catch (err) {
      throw asEntryError(w, err);
    }
  }

  /** Assigns ids to POSTs and conditional PUTs and rewrites every reference to the placeholders. */
  private async resolve(svc: FhirService, works: Work[]): Promise<void> {
    const mapping = new Map<string, string>();
    for (const w of works) {
      try {
        if (w.method === 'POST') {
          if (w.ifNoneExist) {
            const matches = await svc.resolveMatches(w.type, parseQuery(w.ifNoneExist, 'ifNoneExist'));
            if (matches.length > 1) throw tooManyMatches(`ifNoneExist '${w.ifNoneExist}' matches more than one ${w.type}`);
            if (matches.length === 1) {
              w.existing = true;
              w.targetId = matches[0].id;
            }
          }
          w.targetId ??= randomUUID();
        } else if (w.method === 'PUT') {
          if (w.query) {
            const matches = await svc.resolveMatches(w.type, w.query);
            if (matches.length > 1) throw tooManyMatches(`The criteria of ${w.type}?${new URLSearchParams(w.query)} match more than one resource`);
            // No match: this conditional update creates, which needs the create scope too.
            if (matches.length === 0) svc.requireScope(w.type, 'c');
            w.targetId = matches[0]?.id ?? (w.resource?.id as string | undefined) ?? randomUUID();
          } else w.targetId = w.id;
        }
      } catch (err) {
        throw asEntryError(w, err);
      }
      if (w.fullUrl && w.targetId && (w.method === 'POST' || w.method === 'PUT')) mapping.set(w.fullUrl, `${w.type}/${w.targetId}`);
    }
    for (const w of works) {
      if (!w.resource || w.method === 'PATCH') continue;
      const pending: Promise<void>[] = [];
      const conditional = new Map<string, string>();
      const holders = referenceHolders(w.resource, []);
      // Conditional references first (each a search), then one synchronous rewrite pass.
      for (const holder of holders) {
        const ref = holder.reference as string;
        if (/^[A-Z][A-Za-z]+\?/.test(ref) && !conditional.has(ref)) {
          conditional.set(ref, ref);
          pending.push(
            (async () => {
              const [type, qs] = ref.split('?', 2);
              const matches = await svc.resolveMatches(type, [...new URLSearchParams(qs).entries()]);
              if (matches.length === 0) throw notFound(`The conditional reference '${ref}' matches no ${type}`);
              if (matches.length > 1) throw tooManyMatches(`The conditional reference '${ref}' matches more than one ${type}`);
              conditional.set(ref, `${type}/${matches[0].id}`);
            })(),
          );
        }
      }
      try {
        for (const p of pending) await p;
      } catch (err) {
        throw asEntryError(w, err);
      }
      for (const holder of holders) {
        const ref = holder.reference as string;
        const target = mapping.get(ref) ?? conditional.get(ref);
        if (target !== undefined) holder.reference = target;
      }
    }
  }

  private async execute(svc: FhirService, works: Work[], options: BundleOptions): Promise<void> {
    const ordered = [...works].sort((a, b) => ORDER[a.method] - ORDER[b.method] || a.index - b.index);
    const creates = ordered.filter((w) => w.method === 'POST' && !w.existing);
    for (const w of ordered) {
      try {
        if (w.method === 'DELETE') {
          const deleted = w.query ? await svc.conditionalDelete(w.type, w.query) : await svc.delete(w.type, w.id as string);
          w.response = deleted ? { status: '204 No Content', etag: `W/"${deleted.versionId}"` } : { status: '204 No Content' };
        } else if (w.method === 'POST' && w.existing) {
          const stored = await svc.read(w.type, w.targetId as string);
          w.response = responseOf(stored, '200 OK');
          w.result = stored.resource ?? undefined;
        } else if (w.method === 'POST') {
          if (w !== creates[0]) continue;
          // Every plain create of the transaction in one batched insert.
          let failed = 0;
          const stored = await svc
            .createMany(
              creates.map((c) => ({ type: c.type, id: c.targetId as string, body: c.resource })),
              (i) => (failed = i),
            )
            .catch((err) => {
              throw asEntryError(creates[failed], err);
            });
          stored.forEach((s, i) => {
            creates[i].response = responseOf(s, '201 Created');
            creates[i].result = s.resource ?? undefined;
          });
        } else if (w.method === 'PUT') {
          const body = { ...(w.resource as Resource), id: w.targetId };
          const { stored, created } = await svc.update(w.type, w.targetId as string, body, { ifMatch: w.ifMatch });
          w.response = responseOf(stored, created ? '201 Created' : '200 OK');
          w.result = stored.resource ?? undefined;
        } else if (w.method === 'PATCH') {
          const { stored } = await svc.patch(w.type, w.id as string, patchDocument(w), { ifMatch: w.ifMatch });
          w.response = responseOf(stored, '200 OK');
          w.result = stored.resource ?? undefined;
        } else {
          await this.get(svc, w, options);
        }
      } catch (err) {
        throw asEntryError(w, err);
      }
    }
  }

  private async get(svc: FhirService, w: Work, options: BundleOptions): Promise<void> {
    if (w.id && w.vid) {
      const stored = await svc.vread(w.type, w.id, w.vid);
      w.response = responseOf(stored, '200 OK');
      w.result = stored.resource ?? undefined;
    } else if (w.id) {
      const stored = await svc.read(w.type, w.id);
      w.response = responseOf(stored, '200 OK');
      w.result = stored.resource ?? undefined;
    } else {
      w.result = await svc.search(w.type, w.query ?? [], { baseUrl: options.baseUrl });
      w.response = { status: '200 OK' };
    }
  }

  private async batch(entries: unknown[], options: BundleOptions): Promise<Bundle> {
    const out: BundleEntry[] = [];
    for (let index = 0; index < entries.length; index++) {
      try {
        const work = parseEntry(entries[index], index);
        this.authorize(work);
        // Each entry on its own: its own transaction, or (inside an idempotent request's) its own savepoint.
        await this.service.transaction(
          async (svc) => {
            await this.resolve(svc, [work]);
            await this.execute(svc, [work], options);
          },
          1,
          { isolated: true },
        );
        out.push({
          ...(work.result && (options.returnResources || work.method === 'GET' || work.method === 'HEAD') ? { resource: work.result } : {}),
          response: work.response,
        });
      } catch (err) {
        const cause = err instanceof EntryError ? err.outcomeError : err instanceof OperationOutcomeError ? err : undefined;
        if (!cause) throw err;
        out.push({ response: { status: `${cause.status}`, outcome: cause.outcome as OperationOutcome } });
      }
    }
    return { resourceType: 'Bundle', type: 'batch-response', entry: out };
  }
}
