import { aggregatedPatient } from '../support/accessModel';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * The audit log through the real server: every read, search, write, token issue and failure leaves a BALP
 * AuditEvent the admin can search by patient and date; a request whose audit cannot be written fails loudly.
 */
jest.setTimeout(60_000);

type AuditEvent = {
  resourceType: string;
  subtype: { code: string }[];
  action: string;
  outcome: string;
  recorded: string;
  agent: { who: { identifier?: { value: string }; reference?: string }; requestor: boolean; network?: { address: string } }[];
  entity?: { what?: { reference: string }; role?: { code: string }; query?: string }[];
};
type Bundle = { entry?: { resource: AuditEvent }[]; link?: { relation: string; url: string }[] };

let server: TestServer;
let tenant: Tenant;

beforeAll(async () => {
  server = await startTestServer();
  tenant = await server.provision();
});
afterAll(async () => server?.close());

const auditEvents = async (query: string): Promise<AuditEvent[]> => {
  const bundle = await server.admin<Bundle>('GET', `/admin/AuditEvent?${query}`);
  return (bundle.entry ?? []).map((e) => e.resource);
};
const byClient = (q = '') => auditEvents(`agent=${tenant.clientId}&_count=200${q}`);
const json = async (res: Response | Promise<Response>): Promise<any> => (await res).json();
const references = (e: AuditEvent) => (e.entity ?? []).map((x) => x.what?.reference).filter(Boolean);

test('a token issue is audited with the client and its address', async () => {
  const events = await byClient();
  const issued = events.find((e) => e.subtype[0].code === 'token-issue');
  expect(issued).toBeDefined();
  expect(issued?.outcome).toBe('0');
  expect(issued?.agent[0].who.identifier?.value).toBe(tenant.clientId);
  expect(issued?.agent[0].network?.address).toBe('127.0.0.1');
});

test('a refused token request is audited as a failure', async () => {
  await fetch(`${server.url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: tenant.clientId, client_secret: 'wrong' }).toString(),
  });
  const failed = (await byClient()).filter((e) => e.subtype[0].code === 'token-issue' && e.outcome === '4');
  expect(failed).toHaveLength(1);
});

test('a write, a read, a search and a failed read each leave their event', async () => {
  const created = await json(tenant.fetch('Patient', { method: 'POST', body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Audited' }] }) }));
  expect((await tenant.fetch(`Patient/${created.id}`)).status).toBe(200);
  expect((await tenant.fetch('Patient?family=Audited')).status).toBe(200);
  expect((await tenant.fetch('Patient/no-such-patient')).status).toBe(404);

  const events = await byClient();
  const create = events.find((e) => e.subtype[0].code === 'create');
  expect(create).toMatchObject({ action: 'C', outcome: '0' });
  expect(references(create as AuditEvent)).toEqual([`Patient/${created.id}/_history/1`]);

  const read = events.find((e) => e.subtype[0].code === 'read' && e.outcome === '0');
  expect(read?.action).toBe('R');
  expect(references(read as AuditEvent)).toEqual([`Patient/${created.id}/_history/1`]);

  const search = events.find((e) => e.subtype[0].code === 'search-type');
  expect(search?.action).toBe('E');
  expect(references(search as AuditEvent)).toEqual([`Patient/${created.id}`]);
  const query = search?.entity?.find((x) => x.role?.code === '24')?.query;
  expect(Buffer.from(query as string, 'base64').toString()).toBe('Patient?family=Audited');

  const missing = events.find((e) => e.subtype[0].code === 'read' && e.outcome === '4');
  expect(references(missing as AuditEvent)).toEqual(['Patient/no-such-patient']);
});

test('reads of the aggregated record are searchable by patient and date, and the patient sees who accessed', async () => {
  const tenant = await server.provision({ name: 'Aggregating customer', defaultSourceOrg: 'Organization/org' });
  const put = (r: { resourceType: string; id: string }) => tenant.fetch(`${r.resourceType}/${r.id}`, { method: 'PUT', body: JSON.stringify(r) });
  await put({ resourceType: 'Organization', id: 'org', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'AUD01' }], name: 'Audit GP' } as never);
  await put({
    resourceType: 'Patient',
    id: 'p',
    identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: '9990001113' }],
    name: [{ family: 'Compartment' }],
    managingOrganization: { reference: 'Organization/org' },
  } as never);
  await put({ resourceType: 'Observation', id: 'o', status: 'final', code: { text: 'pulse' }, subject: { reference: 'Patient/p' } } as never);
  await server.waitForAggregation();
  const status = await json(tenant.fetch('Patient/p/$aggregation-status'));
  const aggregatedId = /is aggregated as Patient\/([^ .,;]+)/.exec(status.issue?.[0]?.diagnostics ?? '')?.[1] as string;
  expect(aggregatedId).toBeDefined();
  expect((await server.aggregated(tenant, `Patient/${aggregatedId}`)).status).toBe(200);
  const observations = await json(server.aggregated(tenant, `Observation?subject=Patient/${aggregatedId}`));
  expect(observations.entry).toHaveLength(1);

  const before = new Date(Date.now() - 60_000).toISOString();
  const forPatient = await auditEvents(`patient=${aggregatedId}&date=ge${before}`);
  // The Patient read and the Observation search: the Observation's patient comes from its agg_access row.
  expect(forPatient.map((e) => e.subtype[0].code).sort()).toEqual(['read', 'search-type']);
  expect(forPatient.every((e) => references(e).some((r) => r?.startsWith(`Patient/${aggregatedId}`)))).toBe(true);
  expect(await auditEvents(`patient=${aggregatedId}&date=lt${before}`)).toEqual([]);
  expect(await auditEvents(`patient=someone-else`)).toEqual([]);

  const patientToken = server.tokens.issue('fhir', { clientId: 'nhs-login-app', customerId: tenant.customerId, scopes: ['patient/*.rs'], patientId: aggregatedId } as never);
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${(patientToken as { access_token: string }).access_token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query: '{ myRecordAccess { agent action subtype recorded outcome what purpose } }' }),
  });
  const body = await json(res);
  expect(body.errors).toBeUndefined();
  const agents = body.data.myRecordAccess.map((a: { agent: string }) => a.agent);
  expect(agents).toContain(tenant.clientId);
  expect(body.data.myRecordAccess[0].what.length).toBeGreaterThan(0);
});

test('each entry of a transaction Bundle is audited, and a consent change too', async () => {
  const bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { resource: { resourceType: 'Patient', id: 'tx-p' }, request: { method: 'PUT', url: 'Patient/tx-p' } },
      { resource: { resourceType: 'Practitioner', id: 'tx-dr' }, request: { method: 'PUT', url: 'Practitioner/tx-dr' } },
    ],
  };
  expect((await tenant.fetch(tenant.baseUrl, { method: 'POST', body: JSON.stringify(bundle) })).status).toBe(200);
  const writes = (await byClient()).filter((e) => e.subtype[0].code === 'create').flatMap(references);
  expect(writes).toEqual(expect.arrayContaining(['Patient/tx-p/_history/1', 'Practitioner/tx-dr/_history/1']));

  const patientId = await aggregatedPatient(server, '9000000777');
  await server.admin('POST', '/admin/consents', { patientId, grantee: 'team-audited', label: 'MENTAL_HEALTH' });
  await expect(server.admin('POST', '/admin/consents', { patientId, grantee: 'team-audited', label: 'ALL' })).rejects.toThrow(/400/);
  const consent = await auditEvents(`patient=${patientId}`);
  // Newest first: the refused grant (the caller's failure, 4), then the grant.
  expect(consent.map((e) => [e.subtype[0].code, e.action, e.outcome])).toEqual([
    ['consent-grant', 'C', '4'],
    ['consent-grant', 'C', '0'],
  ]);
});

test('a GraphQL query leaves one event per service call it makes, naming what it returned', async () => {
  const since = new Date().toISOString();
  const res = await tenant.fetch('$graphql', { method: 'POST', body: JSON.stringify({ query: '{ PatientList(family: "Audited") { id } }' }) });
  const body = await json(res);
  expect(body.errors).toBeUndefined();
  const ids = body.data.PatientList.map((p: { id: string }) => `Patient/${p.id}`);
  expect(ids.length).toBeGreaterThan(0);
  const events = await byClient(`&date=ge${since}`);
  expect(events).toHaveLength(1);
  expect(events[0].subtype[0].code).toBe('search-type');
  expect(references(events[0])).toEqual(ids);
});

test('admins search audit in GraphQL', async () => {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query: `{ auditEvents(agent: "${tenant.clientId}", action: "C") { id subtype outcome agent what } }` }),
  });
  const body = await json(res);
  expect(body.errors).toBeUndefined();
  expect(body.data.auditEvents.length).toBeGreaterThanOrEqual(1);
  expect(body.data.auditEvents.every((e: { subtype: string }) => e.subtype === 'create')).toBe(true);
});

test('only the admin searches the audit log, and only a patient token lists its own record accesses', async () => {
  expect((await fetch(`${server.url}/admin/AuditEvent`, { headers: { authorization: `Bearer ${tenant.token}` } })).status).toBe(401);
  const ask = async (token: string, query: string) =>
    json(fetch(`${server.url}/graphql`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ query }) }));
  const asClient = await ask(tenant.token, '{ auditEvents { id } }');
  expect(asClient.data).toBeNull();
  expect(JSON.stringify(asClient.errors)).toContain('admin token');
  const notPatient = await ask(tenant.token, '{ myRecordAccess { id } }');
  expect(notPatient.data).toBeNull();
  expect(JSON.stringify(notPatient.errors)).toContain('patient-scoped token');
});

test('bad audit search parameters are a 400 naming them', async () => {
  const res = await fetch(`${server.url}/admin/AuditEvent?date=yesterday`, { headers: { authorization: `Bearer ${server.adminToken}` } });
  expect(res.status).toBe(400);
  expect(JSON.stringify(await res.json())).toContain('date');
});

test('a read whose audit cannot be written is refused loudly, not served unaudited', async () => {
  const created = await json(tenant.fetch('Patient', { method: 'POST', body: JSON.stringify({ resourceType: 'Patient' }) }));
  await server.database.db.sql.execute('ALTER TABLE "audit_event" RENAME TO "audit_event_away"');
  try {
    const res = await tenant.fetch(`Patient/${created.id}`);
    expect(res.status).toBe(503);
    expect(JSON.stringify(await res.json())).toContain('audit log');
  } finally {
    await server.database.db.sql.execute('ALTER TABLE "audit_event_away" RENAME TO "audit_event"');
  }
  expect((await tenant.fetch(`Patient/${created.id}`)).status).toBe(200);
});

test('AUDIT=off records nothing', async () => {
  const quiet = await startTestServer({ AUDIT: 'off' });
  try {
    const t = await quiet.provision();
    await t.fetch('Patient', { method: 'POST', body: JSON.stringify({ resourceType: 'Patient' }) });
    const bundle = await quiet.admin<Bundle>('GET', '/admin/AuditEvent');
    expect(bundle.entry ?? []).toEqual([]);
  } finally {
    await quiet.close();
  }
});

test('refusals before any service are audited: a bad token (401), another customer’s endpoint (404), a missing scope (403)', async () => {
  const since = new Date().toISOString();
  const other = await server.provision({ name: 'Other customer' });
  expect((await fetch(`${server.url}/fhir/aggregated/Patient`, { headers: { authorization: 'Bearer not-a-token' } })).status).toBe(401);
  expect((await tenant.fetch(`${other.baseUrl}/Patient`)).status).toBe(404);
  const narrow = await server.admin<{ client_id: string; client_secret: string }>('POST', '/admin/clients', {
    customerId: tenant.customerId,
    family: 'fhir',
    scopes: 'system/Patient.rs',
  });
  const narrowToken = await server.token(narrow.client_id, narrow.client_secret);
  expect((await fetch(`${tenant.baseUrl}/Observation`, { headers: { authorization: `Bearer ${narrowToken}` } })).status).toBe(403);

  const anonymous = await auditEvents(`agent=anonymous&date=ge${since}`);
  expect(anonymous.map((e) => [e.subtype[0].code, e.outcome])).toEqual([['access-refused', '4']]);
  const foreign = (await byClient(`&date=ge${since}`)).filter((e) => e.subtype[0].code === 'access-refused');
  expect(foreign.map((e) => e.outcome)).toEqual(['4']);
  expect(foreign[0].agent[0].network?.address).toBe('127.0.0.1');
  const scope = await auditEvents(`agent=${narrow.client_id}&date=ge${since}`);
  expect(scope.filter((e) => e.outcome === '4').map((e) => e.subtype[0].code)).toEqual(['search-type']);
});

test('an event is stored as the activity it records, without the token’s scopes; one stored whole by an earlier version is served as stored', async () => {
  const created = await json(tenant.fetch('Patient', { method: 'POST', body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Stored' }] }) }));
  expect((await tenant.fetch(`Patient/${created.id}`)).status).toBe(200);
  const sql = server.database.db.sql;
  const rows = await sql.query<{ body: unknown; activity: { caller: Record<string, unknown> } }[]>(
    `SELECT body, activity FROM audit_event WHERE client = $1 AND subtype = 'read' AND activity->'resources' @> $2::jsonb`,
    tenant.clientId,
    JSON.stringify([{ type: 'Patient', id: created.id }]),
  );
  expect(rows).toHaveLength(1);
  expect(rows[0].body).toBeNull();
  expect(rows[0].activity.caller).toMatchObject({ clientId: tenant.clientId, address: '127.0.0.1' });
  expect(rows[0].activity.caller).not.toHaveProperty('scopes');
  const [read] = (await byClient()).filter((e) => e.subtype[0].code === 'read' && references(e).includes(`Patient/${created.id}/_history/1`));
  expect(read).toMatchObject({ resourceType: 'AuditEvent', action: 'R', outcome: '0' });

  const earlier = {
    resourceType: 'AuditEvent',
    id: 'stored-whole-1',
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' },
    subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: 'read' }],
    action: 'R',
    recorded: '2026-01-02T03:04:05.678Z',
    outcome: '0',
    agent: [{ who: { identifier: { system: 'urn:tributary:client', value: tenant.clientId } }, requestor: true }],
    source: { observer: { display: 'Tributary' } },
  };
  await sql.execute(
    `INSERT INTO audit_event (id, recorded, patient_ids, client, action, subtype, outcome, body) VALUES ($1, $2, '{}', $3, 'R', 'read', '0', $4::jsonb)`,
    earlier.id,
    earlier.recorded,
    tenant.clientId,
    JSON.stringify(earlier),
  );
  expect(await auditEvents(`agent=${tenant.clientId}&date=2026-01-02`)).toEqual([earlier]);
});
