import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

let server: TestServer;
let tenant: Tenant;

beforeAll(async () => {
  server = await startTestServer({ BODY_LIMIT_BYTES: '20000' });
  tenant = await server.provision();
});
afterAll(() => server.close());

async function outcome(res: Response): Promise<{ status: number; diagnostics: string; expression?: string[]; code: string }> {
  const body = (await res.json()) as any;
  expect(body.resourceType).toBe('OperationOutcome');
  return { status: res.status, diagnostics: body.issue[0].diagnostics, expression: body.issue[0].expression, code: body.issue[0].code };
}

async function countPatients(): Promise<number> {
  const rows = await server.database.db.prisma.$queryRawUnsafe<{ n: bigint }[]>(`SELECT count(*) AS n FROM resource WHERE store = $1 AND type = 'Patient'`, tenant.endpointId);
  return Number(rows[0].n);
}

describe('bad input gets a 4xx OperationOutcome and changes nothing', () => {
  test('malformed JSON is 400 saying so', async () => {
    const before = await countPatients();
    const o = await outcome(await tenant.fetch('Patient', { method: 'POST', body: '{"resourceType": "Patient",' }));
    expect(o.status).toBe(400);
    expect(o.diagnostics).toMatch(/not valid JSON/);
    expect(await countPatients()).toBe(before);
  });

  test('an unknown resourceType in the body is 400', async () => {
    const o = await outcome(await tenant.fetch('Patient', { method: 'POST', body: JSON.stringify({ resourceType: 'Patriot' }) }));
    expect(o.status).toBe(400);
    expect(o.diagnostics).toMatch(/Patriot/);
  });

  test('a resourceType that does not match the URL is 400', async () => {
    const o = await outcome(await tenant.fetch('Patient', { method: 'POST', body: JSON.stringify({ resourceType: 'Observation', status: 'final', code: {} }) }));
    expect(o.status).toBe(400);
    expect(o.diagnostics).toMatch(/Observation/);
  });

  test('an id in the body that differs from the URL on PUT is 400', async () => {
    const o = await outcome(await tenant.fetch('Patient/a', { method: 'PUT', body: JSON.stringify({ resourceType: 'Patient', id: 'b' }) }));
    expect(o.status).toBe(400);
    expect(o.expression).toEqual(['Patient.id']);
  });

  test('an invalid contained resource is 400 naming the location inside it', async () => {
    const before = await countPatients();
    const body = { resourceType: 'Patient', contained: [{ resourceType: 'Organization', id: 'o', active: 'yes' }], managingOrganization: { reference: '#o' } };
    const o = await outcome(await tenant.fetch('Patient', { method: 'POST', body: JSON.stringify(body) }));
    expect(o.status).toBe(400);
    expect(o.expression).toEqual(['Patient.contained[0].active']);
    const unknown = await outcome(
      await tenant.fetch('Patient', { method: 'POST', body: JSON.stringify({ resourceType: 'Patient', contained: [{ resourceType: 'Organisation', id: 'o' }] }) }),
    );
    expect(unknown.status).toBe(400);
    expect(unknown.expression).toEqual(['Patient.contained[0].resourceType']);
    expect(unknown.diagnostics).toMatch(/'Organisation' is not a FHIR R4 resource type/);
    expect(await countPatients()).toBe(before);
  });

  test('an element that violates the schema is 400 naming its location', async () => {
    const before = await countPatients();
    const o = await outcome(await tenant.fetch('Patient', { method: 'POST', body: JSON.stringify({ resourceType: 'Patient', gender: 'robot' }) }));
    expect(o.status).toBe(400);
    expect(o.expression).toEqual(['Patient.gender']);
    expect(await countPatients()).toBe(before);
  });

  test('an element the type does not have is 400 naming it', async () => {
    const o = await outcome(await tenant.fetch('Patient', { method: 'POST', body: JSON.stringify({ resourceType: 'Patient', colour: 'blue' }) }));
    expect(o.status).toBe(400);
    expect(o.diagnostics).toMatch(/colour/);
  });

  test('a body over the size limit is 413', async () => {
    const big = { resourceType: 'Patient', name: Array.from({ length: 2000 }, () => ({ family: 'Smith' })) };
    const o = await outcome(await tenant.fetch('Patient', { method: 'POST', body: JSON.stringify(big) }));
    expect(o.status).toBe(413);
  });

  test('bodies in neither JSON nor XML are 415', async () => {
    const o = await outcome(await tenant.fetch('Patient', { method: 'POST', headers: { 'content-type': 'text/turtle' }, body: '[] a fhir:Patient .' }));
    expect(o.status).toBe(415);
  });

  test('an unknown resource type in the URL is 404, an unknown route 404, a wrong method 405', async () => {
    expect((await outcome(await tenant.fetch('Patriot/1'))).status).toBe(404);
    expect((await outcome(await tenant.fetch('Patient/1/_history/1/extra'))).status).toBe(404);
    expect((await outcome(await tenant.fetch('Patient/1/_history', { method: 'DELETE' }))).status).toBe(405);
    expect((await outcome(await fetch(`${server.url}/nowhere`))).status).toBe(404);
  });

  test('a read of an id that never existed is 404', async () => {
    expect((await outcome(await tenant.fetch('Patient/never'))).status).toBe(404);
  });

  test('a reference into another endpoint is 400 at its element however its URL spells fhir (an escape, a tab a URL drops)', async () => {
    const observation = (subject: string, performer: string) => ({
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'weight' },
      subject: { reference: subject },
      performer: [{ reference: 'Practitioner/p1' }, { reference: performer }],
    });
    const refused = async (body: unknown) => outcome(await tenant.fetch('Observation', { method: 'POST', body: JSON.stringify(body) }));
    // writeGuard parses only references that could name a store: these must still be parsed, and refused.
    const escaped = await refused(observation('Patient/p1', 'https://elsewhere.example/%66hir/customer/other-endpoint/Practitioner/p2'));
    expect([escaped.status, escaped.code, escaped.expression]).toEqual([400, 'invalid', ['Observation.performer[1].reference']]);
    const tab = await refused(observation('https://elsewhere.example/fh\tir/aggregated/Patient/p1', 'Practitioner/p2'));
    expect([tab.status, tab.code, tab.expression]).toEqual([400, 'invalid', ['Observation.subject.reference']]);
    // A reference into this very endpoint, spelled out in full, is stored.
    const own = await tenant.fetch('Observation', { method: 'POST', body: JSON.stringify(observation(`${tenant.baseUrl}/Patient/p1`, 'Practitioner/p2')) });
    expect(own.status).toBe(201);
  });

  test('a bad If-Match is 412, not 500', async () => {
    const o = await outcome(await tenant.fetch('Patient/x', { method: 'PUT', headers: { 'if-match': 'banana' }, body: JSON.stringify({ resourceType: 'Patient', id: 'x' }) }));
    expect(o.status).toBe(412);
  });
});

describe('only the owning customer reaches its endpoint', () => {
  test('no token is 401 with WWW-Authenticate', async () => {
    const res = await fetch(`${tenant.baseUrl}/Patient`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  test('a forged token is 401', async () => {
    const res = await fetch(`${tenant.baseUrl}/Patient`, { headers: { authorization: 'Bearer abc.def.ghi' } });
    expect(res.status).toBe(401);
  });

  test("another customer's endpoint answers 404, exactly like a missing one", async () => {
    const other = await server.provision();
    const res = await fetch(`${tenant.baseUrl}/Patient`, { headers: { authorization: `Bearer ${other.token}` } });
    const missing = await fetch(`${server.url}/fhir/customer/ep_doesnotexist/Patient`, { headers: { authorization: `Bearer ${other.token}` } });
    expect(res.status).toBe(404);
    expect(missing.status).toBe(404);
  });

  test('a legacy-family token is refused on a customer endpoint', async () => {
    const client = await server.admin<{ client_id: string; client_secret: string }>('POST', '/admin/clients', { customerId: tenant.customerId, family: 'legacy' });
    const legacy = await server.token(client.client_id, client.client_secret, 'legacy');
    const res = await fetch(`${tenant.baseUrl}/Patient`, { headers: { authorization: `Bearer ${legacy}` } });
    expect(res.status).toBe(401);
  });
});
