// A real, widely used FHIR client against the real server: what an integration engineer's code would do.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Client = require('fhir-kit-client');
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

let server: TestServer;
let tenant: Tenant;
let client: any;

beforeAll(async () => {
  server = await startTestServer();
  tenant = await server.provision();
  client = new Client({ baseUrl: tenant.baseUrl, bearerToken: tenant.token });
});
afterAll(() => server.close());

async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (e: any) {
    return e.response?.status ?? -1;
  }
}

test('fhir-kit-client runs create, read, update, vread, history, patch, 412 and delete on a Patient', async () => {
  const created = await client.create({ resourceType: 'Patient', body: { resourceType: 'Patient', name: [{ family: 'Kit', given: ['Fhir'] }] } });
  expect(created.meta.versionId).toBe('1');
  const id = created.id;

  expect((await client.read({ resourceType: 'Patient', id })).name[0].family).toBe('Kit');

  const updated = await client.update({ resourceType: 'Patient', id, body: { ...created, gender: 'female' } });
  expect(updated.meta.versionId).toBe('2');

  expect((await client.vread({ resourceType: 'Patient', id, version: '1' })).gender).toBeUndefined();

  const patched = await client.patch({ resourceType: 'Patient', id, JSONPatch: [{ op: 'add', path: '/birthDate', value: '1980-02-03' }] });
  expect(patched).toMatchObject({ birthDate: '1980-02-03', meta: { versionId: '3' } });

  const history = await client.history({ resourceType: 'Patient', id });
  expect(history.entry.map((e: any) => e.resource.meta.versionId)).toEqual(['3', '2', '1']);

  const stale = client.update({ resourceType: 'Patient', id, body: { ...created }, options: { headers: { 'If-Match': 'W/"1"' } } });
  expect(await statusOf(stale)).toBe(412);

  await client.delete({ resourceType: 'Patient', id });
  expect(await statusOf(client.read({ resourceType: 'Patient', id }))).toBe(410);
});

test('fhir-kit-client reads the CapabilityStatement', async () => {
  const cs = await client.capabilityStatement();
  expect(cs.resourceType).toBe('CapabilityStatement');
  expect(cs.rest[0].resource.length).toBeGreaterThan(140);
});
