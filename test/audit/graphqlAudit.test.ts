import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * A GraphQL request's audit events are held while it runs and written together just before its answer
 * (audit/heldAudit.ts): one batch INSERT for a query that makes several service calls one after another,
 * every event in the log by the time the answer arrives, and no data at all when they cannot be written.
 */
jest.setTimeout(60_000);

let server: TestServer;
let tenant: Tenant;
let auditWrites = 0;

beforeAll(async () => {
  server = await startTestServer({ AGGREGATION_WORKER: 'off' }, { queryEvents: true });
  server.database.db.onQuery((sql) => {
    if (/^\s*INSERT INTO "audit_event"/.test(sql)) auditWrites++;
  });
  tenant = await server.provision();
  const put = async (resource: { resourceType: string; id: string } & Record<string, unknown>) =>
    expect((await tenant.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: JSON.stringify(resource) })).status).toBe(201);
  await put({ resourceType: 'Patient', id: 'gq-p', name: [{ family: 'Held' }] });
  await put({ resourceType: 'Encounter', id: 'gq-e', status: 'finished', class: { code: 'AMB' }, subject: { reference: 'Patient/gq-p' } });
  for (const id of ['gq-o1', 'gq-o2']) {
    await put({ resourceType: 'Observation', id, status: 'final', code: { text: 'pulse' }, subject: { reference: 'Patient/gq-p' }, encounter: { reference: 'Encounter/gq-e' } });
  }
});
afterAll(async () => server?.close());

/** The Patient, its Observations and their Encounter: three service calls, each after the one before. */
const RECORD = `query ($ep: ID) { Patient(id: "gq-p", _endpoint: $ep) { id
  ObservationList(_reference: subject) { id encounter { resource { ... on Encounter { id } } } } } }`;

const graphql = (query: string, variables: Record<string, unknown>) =>
  fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tenant.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });

const json = async (res: Response): Promise<any> => res.json();
type AuditEvent = { subtype: { code: string }[]; entity?: { what?: { reference: string } }[] };
const eventsSince = async (since: string): Promise<AuditEvent[]> =>
  ((await server.admin<{ entry?: { resource: AuditEvent }[] }>('GET', `/admin/AuditEvent?agent=${tenant.clientId}&date=ge${since}&_count=50`)).entry ?? []).map((e) => e.resource);

test('a query making three service calls writes their three events in one INSERT, before its answer', async () => {
  const since = new Date().toISOString();
  const before = auditWrites;
  const res = await graphql(RECORD, { ep: tenant.endpointId });
  const body = await json(res);
  expect(res.status).toBe(200);
  expect(body.errors).toBeUndefined();
  expect(body.data.Patient.ObservationList.map((o: { encounter: { resource: { id: string } } }) => o.encounter.resource.id)).toEqual(['gq-e', 'gq-e']);
  expect(auditWrites - before).toBe(1);
  const events = await eventsSince(since);
  expect(events.map((e) => e.subtype[0].code).sort()).toEqual(['read', 'read', 'search-type']);
  const named = events.flatMap((e) => (e.entity ?? []).flatMap((x) => (x.what ? [x.what.reference] : [])));
  // The read names the version it returned; the search and the batched reference load name the resources.
  expect(named.filter((r) => !r.startsWith('Patient/')).sort()).toEqual(['Encounter/gq-e', 'Observation/gq-o1', 'Observation/gq-o2']);
  expect(named).toContain('Patient/gq-p/_history/1');
});

test("the customer endpoint's $graphql writes its events in one INSERT too", async () => {
  const before = auditWrites;
  const res = await tenant.fetch('$graphql', { method: 'POST', body: JSON.stringify({ query: RECORD, variables: {} }) });
  expect(res.status).toBe(200);
  expect((await json(res)).data.Patient.ObservationList).toHaveLength(2);
  expect(auditWrites - before).toBe(1);
});

test('a query whose events cannot be written answers 503 with Retry-After and no data, on both doors', async () => {
  await server.database.db.sql.execute('ALTER TABLE "audit_event" RENAME TO "audit_event_away"');
  try {
    const res = await graphql(RECORD, { ep: tenant.endpointId });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    const body = await json(res);
    expect(body.data).toBeUndefined();
    expect(JSON.stringify(body)).not.toContain('gq-o1');
    expect(body.errors[0].message).toContain('audit log');
    const rest = await tenant.fetch('$graphql', { method: 'POST', body: JSON.stringify({ query: RECORD, variables: {} }) });
    expect(rest.status).toBe(503);
    const outcome = await rest.text();
    expect(outcome).toContain('audit log');
    expect(outcome).not.toContain('gq-o1');
  } finally {
    await server.database.db.sql.execute('ALTER TABLE "audit_event_away" RENAME TO "audit_event"');
  }
  expect((await graphql(RECORD, { ep: tenant.endpointId })).status).toBe(200);
});
