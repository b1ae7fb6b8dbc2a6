import fc from 'fast-check';
import type { Tenant, TestServer } from '../support/testServer';

/**
 * The property-based fuzzer of issue 16 item 10, shared by `npm test` (a few hundred seeded cases,
 * fuzz.test.ts) and `npm run fuzz` (≥ 10,000, scripts/fuzz.ts). Each case is one HTTP request built by
 * fast-check from FHIR JSON bodies, Bundles, search URLs, headers or GraphQL documents, most of them broken
 * on purpose. The properties, checked against the real server on a real database:
 * - the answer is never a 5xx, and the server still answers afterwards (no crash);
 * - a refused request (4xx) changes no stored data: the row count and checksum of the resource and history
 *   tables are the same before and after.
 */
export interface FuzzTarget {
  server: TestServer;
  tenant: Tenant;
  /** An id that exists, so reads, updates and vreads are exercised on a real resource too. */
  knownId: string;
}

export interface FuzzCase {
  kind: string;
  method: string;
  /** Relative to the tenant's FHIR base, or absolute from the server root when it starts with `/`. */
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface FuzzReport {
  cases: number;
  failures: number;
  byKind: Record<string, number>;
  byStatus: Record<string, number>;
  counterexample?: string;
}

const TYPES = ['Patient', 'Observation', 'Bundle', 'Organization', 'Practitioner', 'Encounter', 'Nope', 'patient', ''];
const SEARCH_NAMES = [
  'name',
  'family',
  'identifier',
  'birthdate',
  'gender',
  '_id',
  '_lastUpdated',
  '_count',
  '_sort',
  '_include',
  '_revinclude',
  '_summary',
  '_elements',
  '_total',
  '_cursor',
  '_offset',
  '_type',
  'subject',
  'subject:Patient.name',
  'general-practitioner.name',
  '_has:Observation:subject:code',
  'code',
  'value-quantity',
  'date',
  'name:exact',
  'name:contains',
  'identifier:not',
  'birthdate:missing',
  'unknown-param',
];
const CONTENT_TYPES = [
  'application/fhir+json',
  'application/json',
  'application/fhir+json; charset=utf-8',
  'application/fhir+json; charset=utf-16',
  'application/fhir+xml',
  'application/xml',
  'application/json-patch+json',
  'application/x-www-form-urlencoded',
  'text/plain',
  'multipart/form-data; boundary=x',
  'application/graphql',
  '',
];

/** Percent-encodes `s`; a lone surrogate (which has no UTF-8) becomes the bytes of an encoded surrogate, itself invalid UTF-8. */
function encode(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return `${encodeURIComponent(s.replace(/[\ud800-\udfff]/g, ''))}%ED%A0%80`;
  }
}

/** Printable ASCII: what a header value can carry (fetch refuses the rest before sending). */
const headerText = fc.stringOf(
  fc.char().filter((c) => c >= ' ' && c <= '~'),
  { maxLength: 40 },
);

/** Strings that hurt: control characters, lone surrogates, huge numbers in text, injection attempts. */
const nastyString = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.fullUnicodeString({ maxLength: 20 }),
  fc.constantFrom('\u0000', '\ud800', '\udfff', "'; DROP TABLE resource; --", '%00', '../../etc/passwd', '\\', '"', '1e308', '-0', 'NaN', '9'.repeat(40), 'Patient/..'),
  fc.string16bits({ maxLength: 10 }),
);

const nastyNumber = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(1e308, -1e308, 2 ** 31, -(2 ** 31) - 1, 0.1, Number.MAX_SAFE_INTEGER + 2));

const jsonValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    nastyString,
    nastyNumber,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.oneof(fc.constantFrom('id', 'meta', 'extension', 'url', 'valueString', 'reference', 'system', 'value', 'code', 'resourceType'), nastyString), tie('value'), {
      maxKeys: 4,
    }),
  ),
})).value;

/** A Patient-shaped object with some elements right, some of the wrong type, some unknown. */
const patientLike = fc
  .record(
    {
      resourceType: fc.oneof(fc.constant('Patient'), fc.constantFrom('Observation', 'Bundle', 'Nope', ''), nastyString),
      id: fc.oneof(fc.constant('p1'), nastyString),
      meta: fc.oneof(fc.record({ versionId: nastyString, lastUpdated: nastyString }, { requiredKeys: [] }), jsonValue),
      name: fc.oneof(fc.array(fc.record({ family: nastyString, given: fc.array(nastyString, { maxLength: 2 }) }, { requiredKeys: [] }), { maxLength: 2 }), jsonValue),
      telecom: jsonValue,
      birthDate: fc.oneof(fc.constantFrom('1970-01-01', '1970', '1970-13-45', '0000-00-00'), nastyString),
      gender: fc.oneof(fc.constantFrom('male', 'female', 'other', 'unknown'), nastyString),
      multipleBirthInteger: nastyNumber,
      identifier: fc.array(fc.record({ system: nastyString, value: nastyString }, { requiredKeys: [] }), { maxLength: 2 }),
      extension: jsonValue,
      contained: fc.array(jsonValue, { maxLength: 2 }),
      managingOrganization: fc.oneof(fc.record({ reference: nastyString }), jsonValue),
      text: jsonValue,
    },
    { requiredKeys: ['resourceType'] },
  )
  .map((r) => r as Record<string, unknown>);

/** Body text: mostly JSON of the above, sometimes broken JSON, deep nesting or bytes that are not JSON at all. */
const bodyText = fc.oneof(
  { weight: 5, arbitrary: patientLike.map((r) => JSON.stringify(r)) },
  { weight: 2, arbitrary: jsonValue.map((v) => JSON.stringify(v) ?? 'null') },
  { weight: 1, arbitrary: fc.integer({ min: 50, max: 5000 }).map((d) => `{"resourceType":"Patient","extension":${'['.repeat(d)}${']'.repeat(d)}}`) },
  { weight: 1, arbitrary: patientLike.map((r) => JSON.stringify(r).slice(0, -1)) },
  { weight: 1, arbitrary: fc.fullUnicodeString({ maxLength: 60 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      'null',
      '[]',
      '{}',
      '<Patient xmlns="http://hl7.org/fhir"><id value="x"/></Patient>',
      '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>',
    ),
  },
);

const bundleText = fc
  .record({
    resourceType: fc.constant('Bundle'),
    type: fc.oneof(fc.constantFrom('transaction', 'batch', 'collection', 'searchset'), nastyString),
    entry: fc.array(
      fc.record(
        {
          fullUrl: fc.oneof(fc.constantFrom('urn:uuid:5f0c4a4e-8b8e-4d2a-9d56-1c7c1f0e9a11', 'Patient/p1'), nastyString),
          resource: fc.oneof(patientLike, jsonValue),
          request: fc.oneof(
            fc.record({
              method: fc.oneof(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD'), nastyString),
              url: fc.oneof(fc.constantFrom('Patient', 'Patient/p1', 'Patient?name=x', 'Patient/p1/_history/1', 'Patient/%00', 'Patient/99999999999999999999'), nastyString),
              ifMatch: fc.oneof(fc.constant('W/"1"'), nastyString),
              ifNoneExist: fc.oneof(fc.constant('identifier=a|b'), nastyString),
            }),
            jsonValue,
          ),
        },
        { requiredKeys: [] },
      ),
      { maxLength: 4 },
    ),
  })
  .map((b) => JSON.stringify(b));

const searchQuery = fc
  .array(
    fc.tuple(
      fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...SEARCH_NAMES) }, { weight: 1, arbitrary: nastyString }),
      fc.oneof(nastyString, fc.constantFrom('gt2020', 'a,b,c', 'Patient/p1', 'http://x|y', '-name', 'true', '1000000', 'count')),
    ),
    {
      maxLength: 6,
    },
  )
  .map((pairs) => pairs.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&'));

const idSegment = fc.oneof(fc.constantFrom('p1', '%00', '%E0%A4%A', '..', 'a'.repeat(65), '99999999999999999999', '_history', '$everything', '%2F'), nastyString.map(encode));

const graphqlDocument = fc.oneof(
  fc.constantFrom(
    '{ Patient(id: "p1") { id name { family } } }',
    '{ PatientList(name: "x") { id } }',
    '{ PatientList(_count: 100000) { id managingOrganization { resource { ... on Organization { id } } } } }',
    `{ ${Array.from({ length: 80 }, (_, i) => `a${i}: Patient(id: "p1") { id }`).join(' ')} }`,
    `{ PatientList { ${'name { extension { extension { '.repeat(12)} url ${'} } } '.repeat(12)} } }`,
    'query { __schema { types { name } } }',
    'mutation { PatientCreate(res: {}) { id } }',
    `{ ${'a '.repeat(20_000)} }`,
  ),
  fc.fullUnicodeString({ maxLength: 80 }),
  fc
    .tuple(fc.constantFrom('Patient', 'PatientList', 'Observation', 'ObservationList'), nastyString, fc.constantFrom('id', '_id', 'name', '_count', 'subject'))
    .map(([field, value, arg]) => `{ ${field}(${arg}: ${JSON.stringify(value)}) { id } }`),
);

const extraHeaders = fc.record(
  {
    accept: fc.oneof(fc.constantFrom('application/fhir+json', 'application/fhir+xml', 'text/html', '*/*', 'application/fhir+json;q=0'), headerText),
    prefer: fc.oneof(fc.constantFrom('return=minimal', 'return=OperationOutcome', 'handling=strict', 'respond-async'), headerText),
    'if-match': fc.oneof(fc.constantFrom('W/"1"', 'W/"99999999999999999999"', '*'), headerText),
    'if-none-exist': fc.oneof(fc.constantFrom('identifier=a|b', '_id=p1', ''), headerText),
    'if-none-match': headerText,
    'x-forwarded-for': headerText,
  },
  { requiredKeys: [] },
);

/** One request of each family, with random headers and content type. */
export function fuzzCases(): fc.Arbitrary<FuzzCase> {
  const withHeaders = (kind: string, method: string, path: string, body: string | undefined) =>
    fc.tuple(extraHeaders, fc.constantFrom(...CONTENT_TYPES)).map(([headers, contentType]) => ({
      kind,
      method,
      path,
      body,
      headers: { ...(headers as Record<string, string>), ...(contentType ? { 'content-type': contentType } : {}) },
    }));
  return fc.oneof(
    fc
      .tuple(fc.constantFrom('POST', 'PUT'), fc.constantFrom(...TYPES), idSegment, bodyText)
      .chain(([method, type, id, body]) => withHeaders('resource', method, method === 'POST' ? type : `${type}/${id}`, body)),
    bundleText.chain((body) => withHeaders('bundle', 'POST', '', body)),
    fc.tuple(fc.constantFrom(...TYPES), searchQuery).chain(([type, query]) => withHeaders('search', 'GET', `${type}?${query}`, undefined)),
    fc.tuple(fc.constantFrom(...TYPES), searchQuery).chain(([type, query]) => withHeaders('search', 'POST', `${type}/_search`, query)),
    fc
      .tuple(
        fc.constantFrom('GET', 'DELETE', 'PATCH', 'HEAD'),
        fc.constantFrom(...TYPES),
        idSegment,
        fc.constantFrom('', '/_history', '/_history/1', '/_history/99999999999999999999', '/$graphql', '/_history/%00'),
      )
      .chain(([method, type, id, tail]) =>
        withHeaders('instance', method, `${type}/${id}${tail}`, method === 'PATCH' ? '[{"op":"replace","path":"/gender","value":"other"}]' : undefined),
      ),
    fc.tuple(graphqlDocument, fc.boolean()).map(([query, fhirDoor]) => ({
      kind: 'graphql',
      method: 'POST',
      path: fhirDoor ? '$graphql' : '/graphql',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query }),
    })),
  );
}

/** Row count and checksum of the stored resources and their history: what a refused request must not change. */
async function fingerprint(target: FuzzTarget): Promise<string> {
  const rows = await target.server.database.db.sql.query<{ f: string }[]>(
    `SELECT (SELECT count(*) || ':' || coalesce(sum(hashtext(pk || ':' || version_id || ':' || coalesce(content::text, ''))), 0) FROM resource)
       || '/' || (SELECT count(*) FROM resource_history) AS f`,
  );
  return rows[0].f;
}

export async function send(target: FuzzTarget, c: FuzzCase): Promise<{ status: number; text: string }> {
  const url = c.path.startsWith('/') ? `${target.server.url}${c.path}` : `${target.tenant.baseUrl}/${c.path}`;
  const res = await fetch(url, { method: c.method, headers: { authorization: `Bearer ${target.tenant.token}`, ...c.headers }, body: c.body });
  return { status: res.status, text: await res.text() };
}

/** Runs `numRuns` cases from `seed`; a failing case is reported (shrunk), never thrown. */
export async function runFuzz(target: FuzzTarget, options: { numRuns: number; seed: number; onProgress?: (done: number) => void }): Promise<FuzzReport> {
  const report: FuzzReport = { cases: 0, failures: 0, byKind: {}, byStatus: {} };
  const property = fc.asyncProperty(fuzzCases(), async (c) => {
    report.cases++;
    report.byKind[c.kind] = (report.byKind[c.kind] ?? 0) + 1;
    options.onProgress?.(report.cases);
    const before = await fingerprint(target);
    let answer: { status: number; text: string };
    try {
      answer = await send(target, c);
    } catch (err) {
      report.failures++;
      throw new Error(`no HTTP answer: ${(err as Error).message}`, { cause: err });
    }
    const band = `${Math.floor(answer.status / 100)}xx`;
    report.byStatus[band] = (report.byStatus[band] ?? 0) + 1;
    if (answer.status >= 500) {
      report.failures++;
      throw new Error(`${answer.status}: ${answer.text.slice(0, 300)}`);
    }
    if (answer.status >= 400 && (await fingerprint(target)) !== before) {
      report.failures++;
      throw new Error(`refused with ${answer.status} but stored data changed`);
    }
  });
  const result = await fc.check(property, { numRuns: options.numRuns, seed: options.seed, endOnFailure: true });
  if (result.failed) report.counterexample = `${JSON.stringify(result.counterexample)}\n${String(result.errorInstance)}`;
  return report;
}
