import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Bad input and abuse (issue 13), through the real server: mass assignment and IDOR across customers.
 * - Mass assignment: what only the server may set (source-tracking codings, `replaced-by` links: 403) and what
 *   no caller may send (unknown or several privacy labels, references into another store: 400) is refused
 *   by every kind of write (create, update, patch, conditional create/update, transaction and batch entries,
 *   GraphQL mutations) with an OperationOutcome naming the element, and nothing is written: the store's
 *   history and search counts, read by its owner (who sees everything there), are unchanged.
 * - IDOR: another customer's endpoint, resource, client ids answer exactly like ids that exist nowhere,
 *   over REST and GraphQL, and the other customer's data is untouched.
 * Token forgery and NHS Login id tokens have their own suites (tokens and NHS Login helpers).
 */
type Json = Record<string, any>;
const SYS = 'http://fhir.patientsknowbest.com/codesystem/';
const LABEL = `${SYS}privacy-label`;
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const ODS = 'https://fhir.nhs.uk/Id/ods-organization-code';
const GHOST_ENDPOINT = 'ep-00000000-0000-4000-8000-000000000000';

let server: TestServer;
let a: Tenant;
let b: Tenant;
let aggregatedPatient: string;

async function json(res: Response): Promise<Json> {
  const text = await res.text();
  return text ? (JSON.parse(text) as Json) : {};
}
async function put(t: Tenant, resource: Json): Promise<void> {
  const res = await t.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: JSON.stringify(resource) });
  if (res.status >= 300) throw new Error(`${resource.resourceType}/${resource.id}: ${res.status} ${await res.text()}`);
}
async function graphql(t: Tenant, query: string, variables: Json = {}): Promise<Json> {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return json(res);
}

/** What an owner sees of its store: every version in its history, and how many of each type match. */
async function footprint(t: Tenant): Promise<Json> {
  const versions: string[] = [];
  let next: string | undefined = '_history?_count=100';
  while (next) {
    const bundle = await json(await t.fetch(next));
    versions.push(
      ...(bundle.entry ?? []).map((e: Json) => `${e.resource?.resourceType ?? e.request?.url}/${e.resource?.id ?? ''}/${e.resource?.meta?.versionId ?? e.response?.status}`),
    );
    next = bundle.link?.find((l: Json) => l.relation === 'next')?.url;
  }
  const counts: Json = {};
  for (const type of ['Patient', 'Observation']) counts[type] = (await json(await t.fetch(`${type}?_total=accurate&_count=0`))).total;
  return { versions: versions.sort(), counts };
}

async function unchanged<T>(fn: () => Promise<T>): Promise<T> {
  const before = { a: await footprint(a), b: await footprint(b) };
  const result = await fn();
  expect({ a: await footprint(a), b: await footprint(b) }).toEqual(before);
  return result;
}

const observation = (extra: Json = {}): Json => ({
  resourceType: 'Observation',
  status: 'final',
  code: { text: 'heart rate' },
  subject: { reference: 'Patient/pa' },
  ...extra,
});

beforeAll(async () => {
  server = await startTestServer();
  a = await server.provision({ name: 'Trust A' });
  b = await server.provision({ name: 'Trust B' });
  await put(a, { resourceType: 'Organization', id: 'orgA', identifier: [{ system: ODS, value: 'AAA01' }], name: 'Trust A' });
  await put(a, { resourceType: 'Patient', id: 'pa', identifier: [{ system: NHS, value: '9000000101' }], managingOrganization: { reference: 'Organization/orgA' } });
  await put(a, observation({ id: 'oa', meta: { security: [{ system: LABEL, code: 'GENERAL_HEALTH' }] } }));
  await put(b, { resourceType: 'Organization', id: 'orgB', identifier: [{ system: ODS, value: 'BBB01' }], name: 'Trust B' });
  await put(b, { resourceType: 'Patient', id: 'pb', identifier: [{ system: NHS, value: '9000000202' }], managingOrganization: { reference: 'Organization/orgB' } });
  await put(b, observation({ id: 'ob', subject: { reference: 'Patient/pb' }, meta: { security: [{ system: LABEL, code: 'MENTAL_HEALTH' }] } }));
  await server.waitForAggregation();
  const found = await json(await server.aggregated(a, `Patient?identifier=${NHS}|9000000101`));
  aggregatedPatient = found.entry[0].resource.id;
}, 120_000);
afterAll(() => server.close());

/** A resource carrying one kind of forbidden content, the status and the element its refusal names. */
interface Abuse {
  name: string;
  status: 400 | 403;
  expression: string;
  resource: () => Json;
  /** The JSON Patch that brings the same content into the stored Observation `oa` / Patient `pa`. */
  patch: () => { target: string; ops: Json[] };
}
const securityPatch = (codings: Json[]) => () => ({ target: 'Observation/oa', ops: [{ op: 'replace', path: '/meta/security', value: codings }] });
const sourceCoding = (kind: string): Abuse => ({
  name: `a ${kind} source coding`,
  status: 403,
  expression: 'Observation.meta.security[0]',
  resource: () => observation({ meta: { security: [{ system: `${SYS}${kind}`, code: 'org-of-someone-else' }] } }),
  patch: securityPatch([{ system: `${SYS}${kind}`, code: 'org-of-someone-else' }]),
});
const ABUSES: Abuse[] = [
  sourceCoding('source-organization'),
  sourceCoding('source-team'),
  sourceCoding('source-practitioner'),
  sourceCoding('source-patient'),
  {
    name: 'a privacy label that is not one of the four',
    status: 400,
    expression: 'Observation.meta.security[0]',
    resource: () => observation({ meta: { security: [{ system: LABEL, code: 'EVERYTHING' }] } }),
    patch: securityPatch([{ system: LABEL, code: 'EVERYTHING' }]),
  },
  {
    name: 'two privacy labels on one data point',
    status: 400,
    expression: 'Observation.meta.security[1]',
    resource: () =>
      observation({
        meta: {
          security: [
            { system: LABEL, code: 'GENERAL_HEALTH' },
            { system: LABEL, code: 'MENTAL_HEALTH' },
          ],
        },
      }),
    patch: securityPatch([
      { system: LABEL, code: 'GENERAL_HEALTH' },
      { system: LABEL, code: 'MENTAL_HEALTH' },
    ]),
  },
  {
    name: 'a replaced-by link',
    status: 403,
    expression: 'Patient.link[0].type',
    resource: () => ({ resourceType: 'Patient', link: [{ other: { reference: 'Patient/pa' }, type: 'replaced-by' }] }),
    patch: () => ({ target: 'Patient/pa', ops: [{ op: 'add', path: '/link', value: [{ other: { reference: 'Patient/pa' }, type: 'replaced-by' }] }] }),
  },
  {
    name: "a reference into another customer's endpoint",
    status: 400,
    expression: 'Observation.subject.reference',
    resource: () => observation({ subject: { reference: `${server.url}/fhir/customer/${b.endpointId}/Patient/pb` } }),
    patch: () => ({ target: 'Observation/oa', ops: [{ op: 'replace', path: '/subject', value: { reference: `${server.url}/fhir/customer/${b.endpointId}/Patient/pb` } }] }),
  },
  {
    name: 'a reference into the aggregated record',
    status: 400,
    expression: 'Observation.subject.reference',
    resource: () => observation({ subject: { reference: `${server.url}/fhir/aggregated/Patient/${aggregatedPatient}` } }),
    patch: () => ({ target: 'Observation/oa', ops: [{ op: 'replace', path: '/subject', value: { reference: `${server.url}/fhir/aggregated/Patient/${aggregatedPatient}` } }] }),
  },
];

function expectRefusal(status: number, body: Json, abuse: Abuse): void {
  expect({ status, resourceType: body.resourceType }).toEqual({ status: abuse.status, resourceType: 'OperationOutcome' });
  expect(body.issue).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ severity: 'error', code: abuse.status === 403 ? 'forbidden' : 'invalid', expression: expect.arrayContaining([abuse.expression]) }),
    ]),
  );
}

describe.each(ABUSES)('mass assignment: $name', (abuse) => {
  const type = () => abuse.resource().resourceType as string;

  test('create, conditional create, update and conditional update are refused; nothing is written', async () => {
    await unchanged(async () => {
      const body = JSON.stringify(abuse.resource());
      const create = await a.fetch(type(), { method: 'POST', body });
      expectRefusal(create.status, await json(create), abuse);
      const conditional = await a.fetch(type(), { method: 'POST', body, headers: { 'if-none-exist': '_id=fresh-one' } });
      expectRefusal(conditional.status, await json(conditional), abuse);
      const update = await a.fetch(`${type()}/fresh-put`, { method: 'PUT', body: JSON.stringify({ ...abuse.resource(), id: 'fresh-put' }) });
      expectRefusal(update.status, await json(update), abuse);
      const conditionalUpdate = await a.fetch(`${type()}?_id=fresh-cond`, { method: 'PUT', body });
      expectRefusal(conditionalUpdate.status, await json(conditionalUpdate), abuse);
    });
  });

  test('a patch that brings it in is refused; the resource keeps its version', async () => {
    const { target, ops } = abuse.patch();
    await unchanged(async () => {
      const res = await a.fetch(target, { method: 'PATCH', body: JSON.stringify(ops), headers: { 'content-type': 'application/json-patch+json' } });
      expectRefusal(res.status, await json(res), abuse);
    });
  });

  test('a transaction with it is refused whole; a batch refuses that entry only', async () => {
    const entries = [
      { fullUrl: 'urn:uuid:6f1d1a52-0d4e-4d1b-9d55-000000000001', resource: observation({ code: { text: 'innocent' } }), request: { method: 'POST', url: 'Observation' } },
      { fullUrl: 'urn:uuid:6f1d1a52-0d4e-4d1b-9d55-000000000002', resource: abuse.resource(), request: { method: 'POST', url: type() } },
    ];
    await unchanged(async () => {
      const res = await a.fetch('', { method: 'POST', body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: entries }) });
      const body = await json(res);
      expect(res.status).toBe(abuse.status);
      expect(JSON.stringify(body.issue)).toContain(abuse.expression);
    });
    const before = await footprint(a);
    const res = await a.fetch('', { method: 'POST', body: JSON.stringify({ resourceType: 'Bundle', type: 'batch', entry: entries.slice(1) }) });
    const body = await json(res);
    expect(res.status).toBe(200);
    expect(body.entry[0].response.status).toMatch(new RegExp(`^${abuse.status}`));
    expectRefusal(abuse.status, body.entry[0].response.outcome, abuse);
    expect(await footprint(a)).toEqual(before);
  });
});

describe('mass assignment through GraphQL mutations', () => {
  test.each([
    [
      'a source coding (403)',
      403,
      'Observation.meta.security[0]',
      `ObservationCreate(res: { status: "final", code: { text: "x" }, meta: { security: [{ system: "${SYS}source-organization", code: "org-x" }] } }, _endpoint: $ep) { id }`,
    ],
    [
      'two privacy labels (400)',
      400,
      'Observation.meta.security[1]',
      `ObservationCreate(res: { status: "final", code: { text: "x" }, meta: { security: [{ system: "${LABEL}", code: "GENERAL_HEALTH" }, { system: "${LABEL}", code: "SOCIAL_CARE" }] } }, _endpoint: $ep) { id }`,
    ],
    [
      'a replaced-by link on update (403)',
      403,
      'Patient.link[0].type',
      `PatientUpdate(id: "pa", res: { id: "pa", link: [{ other: { reference: "Patient/pa" }, type: "replaced-by" }] }, _endpoint: $ep) { id }`,
    ],
  ])('%s', async (_name, status, expression, mutation) => {
    await unchanged(async () => {
      const result = await graphql(a, `mutation ($ep: ID) { ${mutation} }`, { ep: a.endpointId });
      expect(result.errors?.[0].extensions).toMatchObject({ status, resource: { resourceType: 'OperationOutcome' } });
      expect(JSON.stringify(result.errors[0].extensions.resource.issue)).toContain(expression);
    });
  });

  test("a reference into another customer's endpoint answers the same whether that endpoint exists or not", async () => {
    const refusal = async (endpointId: string) => {
      const result = await graphql(
        a,
        `
          mutation ($ep: ID, $ref: String) {
            ObservationCreate(res: { status: "final", code: { text: "x" }, subject: { reference: $ref } }, _endpoint: $ep) {
              id
            }
          }
        `,
        {
          ep: a.endpointId,
          ref: `${server.url}/fhir/customer/${endpointId}/Patient/pb`,
        },
      );
      return JSON.parse(
        JSON.stringify(result.errors?.[0].extensions ?? null)
          .split(endpointId)
          .join('EP'),
      );
    };
    await unchanged(async () => {
      const real = await refusal(b.endpointId);
      expect(real).toMatchObject({ status: 400 });
      expect(await refusal(GHOST_ENDPOINT)).toEqual(real);
    });
  });
});

describe('what a client may still write', () => {
  test('one privacy label, other security codings, own-store absolute references and other Patient links are accepted', async () => {
    const labelled = await a.fetch('Observation', {
      method: 'POST',
      body: JSON.stringify(
        observation({
          meta: {
            security: [
              { system: LABEL, code: 'SOCIAL_CARE' },
              { system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' },
            ],
          },
        }),
      ),
    });
    expect(labelled.status).toBe(201);
    const ownAbsolute = await a.fetch('Observation', { method: 'POST', body: JSON.stringify(observation({ subject: { reference: `${a.baseUrl}/Patient/pa` } })) });
    expect(ownAbsolute.status).toBe(201);
    const seeAlso = await a.fetch('Patient', {
      method: 'POST',
      body: JSON.stringify({ resourceType: 'Patient', link: [{ other: { reference: 'Patient/pa' }, type: 'seealso' }] }),
    });
    expect(seeAlso.status).toBe(201);
  });
});

/** The aggregated id of B's Observation, which A may not see (B's own source, a label A was not granted). */
async function bsAggregatedObservation(): Promise<string> {
  const bundle = await json(await server.aggregated(b, 'Observation'));
  const found = (bundle.entry ?? []).filter((e: Json) => e.search?.mode === 'match' && e.resource.code?.text === 'heart rate');
  expect(found).toHaveLength(1);
  return found[0].resource.id as string;
}

/** A refusal with the ids it names replaced, so two refusals about different ids can be compared. */
async function answer(res: Response, ...ids: string[]): Promise<Json> {
  let text = await res.text();
  for (const id of ids) text = text.split(id).join('ID');
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

describe("IDOR: another customer's ids answer exactly like ids that exist nowhere", () => {
  // `metadata` is left out on purpose: it is public (clients read it before they authenticate) and answers for
  // any existing endpoint id, which tells only a caller who already holds that random id (src/app.ts).
  // Every row has three cells: a test function with more parameters than its row is handed jest's `done`.
  const interactions: [string, string, Json | null][] = [
    ['GET', 'Patient/pb', null],
    ['GET', 'Patient/pb/_history/1', null],
    ['GET', 'Patient/pb/_history', null],
    ['GET', 'Patient/_history', null],
    ['GET', '_history', null],
    ['GET', 'Patient?_id=pb', null],
    ['GET', '?_type=Patient', null],
    ['POST', 'Patient', { resourceType: 'Patient' }],
    ['PUT', 'Patient/pb', { resourceType: 'Patient', id: 'pb', active: false }],
    ['PATCH', 'Patient/pb', [{ op: 'add', path: '/active', value: false }]],
    ['DELETE', 'Patient/pb', null],
    ['DELETE', 'Patient?_id=pb', null],
    ['POST', '', { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'DELETE', url: 'Patient/pb' } }] }],
    ['GET', `$graphql?query=${encodeURIComponent('{ PatientList { id } }')}`, null],
    ['GET', `Patient/pb/$graphql?query=${encodeURIComponent('{ id }')}`, null],
  ];

  test.each(interactions)("%s %s on another customer's endpoint is a 404 like a missing endpoint; nothing changes", async (method, path, body) => {
    await unchanged(async () => {
      const call = (endpointId: string) =>
        fetch(`${server.url}/fhir/customer/${endpointId}/${path}`, {
          method,
          headers: { authorization: `Bearer ${a.token}`, 'content-type': method === 'PATCH' ? 'application/json-patch+json' : 'application/fhir+json' },
          body: body ? JSON.stringify(body) : undefined,
        });
      const other = await answer(await call(b.endpointId), b.endpointId);
      expect(other.status).toBe(404);
      expect(other).toEqual(await answer(await call(GHOST_ENDPOINT), GHOST_ENDPOINT));
    });
  });

  test("another customer's resource ids on one's own endpoint are missing ones, and writes to them stay in one's own store", async () => {
    expect(await answer(await a.fetch('Observation/ob'), 'ob')).toEqual(await answer(await a.fetch('Observation/ghost'), 'ghost'));
    expect(await answer(await a.fetch('Observation/ob/_history'), 'ob')).toEqual(await answer(await a.fetch('Observation/ghost/_history'), 'ghost'));
    expect(await answer(await a.fetch('Observation/ob/_history/1'), 'ob')).toEqual(await answer(await a.fetch('Observation/ghost/_history/1'), 'ghost'));
    const bBefore = await footprint(b);
    const deleted = await a.fetch('Observation/ob', { method: 'DELETE' });
    expect(deleted.status).toBeLessThan(300);
    const patched = await a.fetch('Observation/ob', {
      method: 'PATCH',
      body: JSON.stringify([{ op: 'add', path: '/status', value: 'cancelled' }]),
      headers: { 'content-type': 'application/json-patch+json' },
    });
    expect(patched.status).toBe(404);
    expect(await footprint(b)).toEqual(bBefore);
    expect((await json(await b.fetch('Observation/ob'))).status).toBe('final');
  });

  test("on the aggregated record, another customer's hidden data answers like data that exists nowhere", async () => {
    const hidden = await bsAggregatedObservation();
    for (const path of ['Observation/ID', 'Observation/ID/_history/1', 'Observation/ID/_history', `Observation?_id=ID&_total=accurate`]) {
      const seen = await answer(await server.aggregated(a, path.replace('ID', hidden)), hidden);
      expect(seen).toEqual(await answer(await server.aggregated(a, path.replace('ID', 'ghost-id')), 'ghost-id'));
    }
  });

  test("GraphQL fields with another customer's endpoint or hidden ids answer like missing ones", async () => {
    const same = async (query: string, variables: (id: string) => Json, real: string, ghost: string) => {
      const mask = (result: Json, id: string) => JSON.parse(JSON.stringify(result).split(id).join('ID'));
      const other = mask(await graphql(a, query, variables(real)), real);
      expect(other.errors?.[0].extensions?.status).toBe(404);
      expect(other).toEqual(mask(await graphql(a, query, variables(ghost)), ghost));
    };
    await unchanged(async () => {
      await same('query ($ep: ID) { Patient(id: "pb", _endpoint: $ep) { id } }', (ep) => ({ ep }), b.endpointId, GHOST_ENDPOINT);
      await same('query ($ep: ID) { PatientList(_endpoint: $ep) { id } }', (ep) => ({ ep }), b.endpointId, GHOST_ENDPOINT);
      await same('mutation ($ep: ID) { PatientCreate(res: { active: true }, _endpoint: $ep) { id } }', (ep) => ({ ep }), b.endpointId, GHOST_ENDPOINT);
      await same('mutation ($ep: ID) { PatientUpdate(id: "pb", res: { id: "pb", active: false }, _endpoint: $ep) { id } }', (ep) => ({ ep }), b.endpointId, GHOST_ENDPOINT);
      await same('mutation ($ep: ID) { PatientDelete(id: "pb", _endpoint: $ep) { id } }', (ep) => ({ ep }), b.endpointId, GHOST_ENDPOINT);
      await same('query ($ep: ID!) { aggregationStatus(id: "pb", resourceType: "Patient", endpoint: $ep) { status } }', (ep) => ({ ep }), b.endpointId, GHOST_ENDPOINT);
      const hidden = await bsAggregatedObservation();
      await same('query ($id: ID!) { aggregation(id: $id, resourceType: "Observation") { id } }', (id) => ({ id }), hidden, 'ghost-id');
      await same('query ($id: ID!) { Observation(id: $id) { id } }', (id) => ({ id }), hidden, 'ghost-id');
    });
  });

  test("another customer's client id: the token endpoint and the admin API answer as for a client that does not exist", async () => {
    const tokenFor = (clientId: string) =>
      fetch(`${server.url}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: a.clientSecret }).toString(),
      });
    const other = await answer(await tokenFor(b.clientId), b.clientId);
    expect([400, 401]).toContain(other.status);
    expect(other.body.error).toBe('invalid_client');
    expect(other).toEqual(await answer(await tokenFor('cli-ghost'), 'cli-ghost'));
    for (const [method, path] of [
      ['POST', '/admin/clients/ID/revoke'],
      ['POST', '/admin/clients/ID/secret'],
      ['DELETE', '/admin/clients/ID'],
      ['GET', '/admin/endpoints/ID'],
    ] as const) {
      const call = (id: string) => fetch(`${server.url}${path.replace('ID', id)}`, { method, headers: { authorization: `Bearer ${a.token}` } });
      const real = await answer(await call(path.includes('endpoints') ? b.endpointId : b.clientId), b.clientId, b.endpointId);
      expect(real.status).toBe(401);
      expect(real).toEqual(await answer(await call('ghost'), 'ghost'));
    }
    // B's client still works.
    expect((await b.fetch('Patient/pb')).status).toBe(200);
    expect(await server.token(b.clientId, b.clientSecret)).toEqual(expect.any(String));
  });
});
