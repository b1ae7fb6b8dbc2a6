import { ID } from '../fhir/ids';
import { badRequest, OperationOutcomeError, operationOutcome } from '../fhir/outcome';
import { JSON_TYPES, XML_TYPES } from './fhirFormat';

/**
 * FHIR syntax checks on what a REST request carries besides its body, made before anything reaches SQL
 * (issue 16): path ids (datatypes.html#id), version ids this server can have issued, query values without NUL
 * (PostgreSQL text cannot hold one), and the media type of a resource sent to a create or update.
 */

/** Version ids are 32-bit counters here; anything longer is no version of ours (and would overflow in SQL). */
const MAX_VERSION = 2_147_483_647;

/** A path segment, percent-decoded; 400 when the encoding is malformed. */
export function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw badRequest(`The path segment '${segment}' is not valid percent-encoded UTF-8`);
  }
}

/** 400 unless `id` is a FHIR id: 1 to 64 of A-Z a-z 0-9 - . */
export function assertId(id: string, what = 'id'): void {
  if (!ID.test(id)) throw badRequest(`'${printable(id)}' is not a valid ${what}: FHIR ids are 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'`, what);
}

/** 400 for a version id that is not an id, or a number larger than any version this server issues. */
export function assertVersionId(vid: string): void {
  assertId(vid, 'version id');
  if (/^\d+$/.test(vid) && (vid.length > 10 || Number(vid) > MAX_VERSION)) throw badRequest(`version id '${vid}' is larger than any version this server issues`, 'version id');
}

/** 400 naming the parameter when a query name or value holds a NUL character. */
export function assertQuerySyntax(query: [string, string][]): void {
  for (const [name, value] of query) {
    if (name.includes('\u0000') || value.includes('\u0000')) throw badRequest(`Query parameter '${printable(name)}' holds a NUL character`, printable(name));
  }
}

const RESOURCE_TYPES = new Set([...JSON_TYPES, ...XML_TYPES].filter((t) => t !== 'application/json-patch+json'));

/**
 * 415 when a create or update (POST/PUT on a type or instance) carries no resource media type: a JSON Patch,
 * form or missing Content-Type is not a FHIR resource (http.html#mime-type). Searches, operations and PATCH
 * check their own bodies.
 */
export function assertResourceMediaType(method: string, path: string, contentType: string | undefined): void {
  if (method !== 'POST' && method !== 'PUT') return;
  const last = path.split('/').pop() ?? '';
  if (last === '_search' || last.startsWith('$')) return;
  const type = contentType?.split(';')[0].trim().toLowerCase();
  if (type && RESOURCE_TYPES.has(type)) return;
  throw new OperationOutcomeError(
    415,
    operationOutcome([
      {
        severity: 'error',
        code: 'not-supported',
        diagnostics: `${type ? `Content-Type '${type}'` : 'A missing Content-Type'} is not a FHIR resource format: send application/fhir+json or application/fhir+xml`,
      },
    ]),
  );
}

/** Control characters shown escaped, so that a diagnostic never carries them. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  return text.slice(0, 100).replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
