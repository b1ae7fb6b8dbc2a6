import { runAdminCli } from '../support/runCli';
import { startTestServer, type TestServer } from '../support/testServer';

const admin = runAdminCli;

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.close());

test('customer, endpoint and client created by the CLI give a working token and endpoint', async () => {
  const customer = await admin(server, 'customer', 'create', '--name', 'St Elsewhere');
  expect(customer.code).toBe(0);
  const { id: customerId, name } = JSON.parse(customer.stdout);
  expect(name).toBe('St Elsewhere');

  const endpoint = await admin(server, 'endpoint', 'create', '--customer', customerId, '--fhir-version', 'R4');
  expect(endpoint.code).toBe(0);
  const { id: endpointId, fhirVersion } = JSON.parse(endpoint.stdout);
  expect(fhirVersion).toBe('R4');

  const client = await admin(server, 'client', 'create', '--customer', customerId, '--family', 'fhir');
  expect(client.code).toBe(0);
  const { client_id, client_secret } = JSON.parse(client.stdout);
  expect(client_secret).toEqual(expect.any(String));

  const token = await server.token(client_id, client_secret);
  const res = await fetch(`${server.url}/fhir/customer/${endpointId}/Patient`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Patient', gender: 'female' }),
  });
  expect(res.status).toBe(201);

  // The secret is shown once: listing clients never reveals it.
  const list = await admin(server, 'client', 'list', '--customer', customerId);
  expect(list.code).toBe(0);
  expect(list.stdout).not.toContain(client_secret);
}, 120_000);

test('--help lists the commands; a usage mistake exits 2; a refused request exits 1 with the reason', async () => {
  const help = await admin(server, '--help');
  expect(help.code).toBe(0);
  expect(help.stdout).toMatch(/customer create/);
  expect(help.stdout).toMatch(/client create/);

  const usage = await admin(server, 'endpoint', 'create', '--customer', 'x');
  expect(usage.code).toBe(2);
  expect(usage.stderr).toMatch(/fhir-version/);

  const refused = await admin(server, 'endpoint', 'create', '--customer', 'cus-nope', '--fhir-version', 'R4');
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(/cus-nope/);
}, 120_000);

test('consent grants and aggregation status through the CLI', async () => {
  const grant = await admin(server, 'consent', 'grant', '--patient', 'pat-1', '--grantee', 'cus-x', '--label', 'MENTAL_HEALTH');
  expect(grant.code).toBe(0);
  const list = JSON.parse((await admin(server, 'consent', 'list', '--patient', 'pat-1')).stdout);
  expect(list.consents).toEqual([{ patientId: 'pat-1', grantee: 'cus-x', label: 'MENTAL_HEALTH' }]);
  const bad = await admin(server, 'consent', 'grant', '--patient', 'pat-1', '--grantee', 'cus-x', '--label', 'EVERYTHING');
  expect(bad.code).toBe(1);
  expect(bad.stderr).toContain('label');
  expect((await admin(server, 'consent', 'revoke', '--patient', 'pat-1', '--grantee', 'cus-x', '--label', 'MENTAL_HEALTH')).code).toBe(0);
  const status = JSON.parse((await admin(server, 'aggregation', 'wait')).stdout);
  expect(status).toMatchObject({ queueDepth: 0, parked: 0 });
}, 120_000);
