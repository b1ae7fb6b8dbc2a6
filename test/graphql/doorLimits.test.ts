import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Issue 12 (3, 4): the cost limit and the introspection setting hold on every GraphQL door — /graphql, a
 * customer endpoint's `$graphql` and the aggregated endpoint's `$graphql`, at system and instance level —
 * and the cost counts what will run: `_count` given by a variable, or by a variable's default.
 */
type Json = Record<string, any>;
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
let server: TestServer;
let t: Tenant;
let aggregatedPatient: string;

interface Door {
  name: string;
  /** The response to a GraphQL request on this door: HTTP status and the GraphQL result. */
  send(query: string, variables?: Json): Promise<{ status: number; body: Json }>;
  /** Instance-level doors have the Patient as their root, so queries start inside it. */
  instance: boolean;
}

async function call(url: string, token: string, query: string, variables?: Json) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query, ...(variables ? { variables } : {}) }),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

const doors = (): Door[] => [
  { name: '/graphql', instance: false, send: (q, v) => call(`${server.url}/graphql`, t.token, q, v) },
  { name: 'customer $graphql', instance: false, send: (q, v) => call(`${t.baseUrl}/$graphql`, t.token, q, v) },
  { name: 'customer Patient/p1/$graphql', instance: true, send: (q, v) => call(`${t.baseUrl}/Patient/p1/$graphql`, t.token, q, v) },
  { name: 'aggregated $graphql', instance: false, send: (q, v) => call(`${server.url}/fhir/aggregated/$graphql`, t.token, q, v) },
  { name: 'aggregated Patient/[id]/$graphql', instance: true, send: (q, v) => call(`${server.url}/fhir/aggregated/Patient/${aggregatedPatient}/$graphql`, t.token, q, v) },
];

beforeAll(async () => {
  server = await startTestServer({ GRAPHQL_MAX_COST: '500', GRAPHQL_INTROSPECTION: 'off' });
  t = await server.provision({ defaultSourceOrg: 'Organization/org1' });
  const put = async (resource: Json) => {
    const res = await t.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: JSON.stringify(resource) });
    if (res.status >= 300) throw new Error(await res.text());
  };
  await put({ resourceType: 'Organization', id: 'org1', identifier: [{ system: 'ods', value: 'O1' }], name: 'Org One' });
  await put({ resourceType: 'Patient', id: 'p1', identifier: [{ system: NHS, value: '9000000009' }], name: [{ family: 'Smith' }] });
  for (let i = 0; i < 3; i++) await put({ resourceType: 'Observation', id: `o${i}`, status: 'final', code: { text: `obs ${i}` }, subject: { reference: 'Patient/p1' } });
  await server.waitForAggregation();
  const found = (await (await server.aggregated(t, `Patient?identifier=${NHS}|9000000009`)).json()) as Json;
  aggregatedPatient = found.entry[0].resource.id;
}, 120_000);
afterAll(() => server.close());

/** Lists of Observations under each Patient: within a cost of 500 only for a small `_count`. */
function listQuery(door: Door, count: string, header = '($n: Int)') {
  const observations = `ObservationList(_reference: subject, _count: ${count}) { id status code { text } }`;
  return door.instance ? `query ${header} { id ${observations} }` : `query ${header} { PatientList(_count: ${count}) { id ${observations} } }`;
}

function expectTooCostly(result: { status: number; body: Json }) {
  // /graphql answers a refused operation 400; `$graphql`, like its other errors, in a 200 result.
  expect([200, 400]).toContain(result.status);
  expect(result.body.data ?? undefined).toBeUndefined();
  expect(result.body.errors?.[0].message).toMatch(/cost is \d+, over the limit of 500/);
  expect(result.body.errors[0].extensions).toMatchObject({
    code: 'QUERY_TOO_COMPLEX',
    limit: 500,
    resource: { resourceType: 'OperationOutcome', issue: [{ code: 'too-costly' }] },
  });
}

describe.each(doors().map((d) => [d.name, d] as const))('%s', (_name, door) => {
  test('a small _count given by a variable runs', async () => {
    const { body } = await door.send(listQuery(door, '$n'), { n: 2 });
    expect(body.errors).toBeUndefined();
    const patient = door.instance ? body.data : body.data.PatientList[0];
    expect(patient.ObservationList).toHaveLength(2);
  });

  test('_count written in the query and over the cost limit is refused', async () => {
    const result = await door.send(listQuery(door, '1000', ''));
    expectTooCostly(result);
    if (door.name === '/graphql') expect(result.status).toBe(400);
  });

  test('the same _count given by a variable is refused too', async () => {
    expectTooCostly(await door.send(listQuery(door, '$n'), { n: 1000 }));
  });

  test("…and by a variable's default", async () => {
    expectTooCostly(await door.send(listQuery(door, '$n', '($n: Int = 1000)')));
  });

  test('a fragment spread and aliases of a list field count every copy', async () => {
    const fragment = `fragment obs on Patient { ObservationList(_reference: subject, _count: $n) { id status code { text } } }`;
    const copies = 'a: ObservationList(_reference: subject, _count: $n) { id } b: ObservationList(_reference: subject, _count: $n) { id }';
    const query = door.instance ? `query ($n: Int) { ...obs ${copies} } ${fragment}` : `query ($n: Int) { PatientList(_count: 1) { ...obs ${copies} } } ${fragment}`;
    // 3 lists of 100 are over 500; 3 lists of 10 are not.
    expect((await door.send(query, { n: 10 })).body.errors).toBeUndefined();
    expectTooCostly(await door.send(query, { n: 100 }));
  });

  test('introspection is refused when GRAPHQL_INTROSPECTION is off', async () => {
    for (const query of ['{ __schema { types { name } } }', '{ __type(name: "Patient") { name fields { name } } }']) {
      const { body } = await door.send(query);
      expect(body.data ?? undefined).toBeUndefined();
      expect(body.errors?.[0].message).toMatch(/introspection has been disabled/);
      expect(body.errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    }
  });
});

test('$graphql by GET with the query in the URL refuses introspection too', async () => {
  const res = await fetch(`${t.baseUrl}/$graphql?query=${encodeURIComponent('{__schema{types{name}}}')}`, { headers: { authorization: `Bearer ${t.token}` } });
  const body = (await res.json()) as Json;
  expect(body.data ?? undefined).toBeUndefined();
  expect(body.errors?.[0].message).toMatch(/introspection has been disabled/);
});
