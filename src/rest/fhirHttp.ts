import type { Resource } from '../fhir/types';
import type { StoredVersion } from '../store/resourceRepository';

/**
 * The REST door's own request and response: no Fastify in here, so the same route table serves HTTP and
 * the entries of a batch or transaction Bundle.
 */
export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface FhirRequest {
  method: HttpMethod;
  /** Relative to the endpoint base, no leading slash: `Patient/1/_history/2`. */
  path: string;
  /** Query pairs in order, `_format` and `_pretty` already taken out. */
  query: [string, string][];
  /** Lower-case names. */
  headers: Record<string, string | undefined>;
  body?: unknown;
  /** Media type of the body without parameters, e.g. `application/json-patch+json`. */
  contentType?: string;
}

export interface FhirResponse {
  status: number;
  headers: Record<string, string>;
  body?: unknown;
  /** `body`'s JSON as served, when already at hand (a stored resource read by key): sent as it is for JSON without `_pretty`. */
  json?: string;
}

export function weakEtag(versionId: number | string): string {
  return `W/"${versionId}"`;
}

/** `W/"3"`, `"3"` or `3` → 3; anything else is not a version this server issued. */
export function parseEtag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(?:W\/)?"?(\d+)"?$/.exec(value.trim());
  // A version this server never issued (they are 32-bit counters) matches nothing rather than overflowing in SQL.
  return m && m[1].length <= 10 && Number(m[1]) <= 2_147_483_647 ? Number(m[1]) : Number.NaN;
}

export type PreferReturn = 'minimal' | 'representation' | 'OperationOutcome';

/** Parses `Prefer: return=…, handling=…` (RFC 7240; FHIR R4 http.html#ops and search.html#errors). */
export function parsePrefer(value: string | undefined): { return?: PreferReturn; handling?: 'strict' | 'lenient' } {
  const out: { return?: PreferReturn; handling?: 'strict' | 'lenient' } = {};
  for (const part of (value ?? '').split(/[;,]/)) {
    const [k, v] = part.split('=').map((s) => s.trim().replace(/^"|"$/g, ''));
    if (k === 'return' && (v === 'minimal' || v === 'representation' || v === 'OperationOutcome')) out.return = v;
    if (k === 'handling' && (v === 'strict' || v === 'lenient')) out.handling = v;
  }
  return out;
}

export function versionHeaders(stored: StoredVersion): Record<string, string> {
  return {
    ETag: weakEtag(stored.versionId),
    'Last-Modified': stored.lastUpdated.toUTCString(),
  };
}

export function ok(body: Resource, status = 200, headers: Record<string, string> = {}): FhirResponse {
  return { status, headers, body };
}

/**
 * 200 with a stored version: its text goes out as it is when the store had it (StoredVersion `json`), and the
 * resource is parsed only if something asks for the body (XML, `_pretty`, a Bundle entry).
 */
export function okStored(stored: StoredVersion, headers: Record<string, string>): FhirResponse {
  return {
    status: 200,
    headers,
    get body() {
      return stored.resource ?? undefined;
    },
    get json() {
      return stored.json;
    },
  };
}
