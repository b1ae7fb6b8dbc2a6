import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Issue 12 (4): a List without `_count` is priced at a default page before it runs, yet returns every
 * match; nested, such lists could fan out far past the cost limit. What the operation actually fetches is
 * counted too, on every door, and the operation is refused once it passes the limit.
 */
type Json = Record<string, any>;
let server: TestServer;
let t: Tenant;

async function graphql(url: string, query: string): Promise<{ status: number; body: Json }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query }),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

beforeAll(async () => {
  // Priced before running: 1 + 2 × (1 + 1 + 20 × 1) = 45, under 50.
  server = await startTestServer({ GRAPHQL_MAX_COST: '50' });
  t = await server.provision();
  const entry = (resource: Json) => ({ fullUrl: `${resource.resourceType}/${resource.id}`, resource, request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` } });
  const resources: Json[] = [];
  for (const p of ['many1', 'many2', 'few']) resources.push({ resourceType: 'Patient', id: p, name: [{ family: p }] });
  // 2 Patients and 60 Observations: 62 resources fetched, over the limit of 50.
  for (const p of ['many1', 'many2']) {
    for (let i = 0; i < 30; i++) resources.push({ resourceType: 'Observation', id: `${p}-${i}`, status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${p}` } });
  }
  for (let i = 0; i < 3; i++) resources.push({ resourceType: 'Observation', id: `f${i}`, status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/few' } });
  const res = await t.fetch('', { method: 'POST', body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: resources.map(entry) }) });
  if (res.status !== 200) throw new Error(await res.text());
}, 120_000);
afterAll(() => server.close());

const nested = (name: string) => `{ PatientList(name: "${name}", _count: 2) { id ObservationList(_reference: subject) { id } } }`;

test.each([
  ['/graphql', () => `${server.url}/graphql`],
  ['customer $graphql', () => `${t.baseUrl}/$graphql`],
])('%s: nested lists that fetch more resources than the cost limit are refused with a too-costly OperationOutcome', async (_door, url) => {
  const { body } = await graphql(url(), nested('many').replace('PatientList(', `PatientList(_endpoint: "${t.endpointId}", `));
  const returned = (body.data?.PatientList ?? []).flatMap((p: Json) => p.ObservationList ?? []);
  expect(returned.length).toBeLessThan(50);
  const error = body.errors?.[0];
  expect(error.message).toMatch(/fetched more than 50 resources/);
  expect(error.extensions.resource.issue[0].code).toBe('too-costly');
});

test('the same query over a patient with few matches runs', async () => {
  const { body } = await graphql(`${t.baseUrl}/$graphql`, nested('few'));
  expect(body.errors).toBeUndefined();
  expect(body.data.PatientList[0].ObservationList.map((o: Json) => o.id).sort()).toEqual(['f0', 'f1', 'f2']);
});
