import { TokenService } from '../../src/access/tokens';
import { buildApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import { TenancyRepository } from '../../src/store/tenancyRepository';
import { forgeToken } from '../support/forgeToken';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Token lifetime and revocation (issue 12, items 4 and 7): a token must carry `exp` (RFC 9068 §2.2), revoking
 * a client refuses its tokens on the next request, in this server and in another one over the same database,
 * and `GET …/metadata` answers without a token while everything else needs one.
 */
type Json = Record<string, any>;

let server: TestServer;
let t: Tenant;
beforeAll(async () => {
  server = await startTestServer();
  t = await server.provision();
});
afterAll(() => server.close());

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function newClient(): Promise<{ id: string; token: string }> {
  const client = await server.admin<{ client_id: string; client_secret: string }>('POST', '/admin/clients', { customerId: t.customerId, family: 'fhir' });
  return { id: client.client_id, token: await server.token(client.client_id, client.client_secret) };
}

test('a token without exp is refused with 401 invalid_token, though correctly signed', async () => {
  const claims = { sub: t.clientId, client_id: t.clientId, customer_id: t.customerId, scope: 'system/*.cruds', jti: 'no-exp', iat: Math.floor(Date.now() / 1000) };
  const sign = (extra: Record<string, unknown>) => forgeToken(server.dataDir, 'fhir', { ...claims, iss: 'http://127.0.0.1/oauth2', aud: 'http://127.0.0.1/fhir', ...extra });
  // The same claims with an exp are accepted: the refusal is about exp alone.
  expect((await fetch(`${t.baseUrl}/Patient`, { headers: bearer(await sign({ exp: claims.iat + 60 })) })).status).toBe(200);
  const res = await fetch(`${t.baseUrl}/Patient`, { headers: bearer(await sign({})) });
  expect(res.status).toBe(401);
  expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
  expect(((await res.json()) as Json).resourceType).toBe('OperationOutcome');
});

test("a revoked client's token is refused on the next request, over REST and GraphQL", async () => {
  const client = await newClient();
  expect((await fetch(`${t.baseUrl}/Patient`, { headers: bearer(client.token) })).status).toBe(200);
  await server.admin('DELETE', `/admin/clients/${client.id}`);
  const res = await fetch(`${t.baseUrl}/Patient`, { headers: bearer(client.token) });
  expect(res.status).toBe(401);
  expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
  const gql = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { ...bearer(client.token), 'content-type': 'application/json' },
    body: JSON.stringify({ query: `{ PatientList(_endpoint: "${t.endpointId}") { id } }` }),
  });
  expect(gql.status).toBe(401);
  // Other clients of the same customer are unaffected.
  expect((await fetch(`${t.baseUrl}/Patient`, { headers: bearer(t.token) })).status).toBe(200);
});

test('checking for revocation costs no SQL statement per request', async () => {
  const client = await newClient();
  const read = async () => expect((await fetch(`${t.baseUrl}/Patient?_count=1`, { headers: bearer(client.token) })).status).toBe(200);
  await read();
  // Everything but the aggregation worker's own polling of its outbox, which runs whatever the requests do,
  // and the audit log's write of each read (src/audit/), which is not about the token.
  const statements: string[] = [];
  server.database.db.sql.onQuery((sql) => void (/agg_outbox|"audit_event"/.test(sql) || statements.push(sql)));
  await read();
  const perRead = statements.length;
  statements.length = 0;
  for (let i = 0; i < 5; i++) await read();
  expect(perRead).toBe(1);
  expect(statements).toHaveLength(5);
});

test('a client revoked through one server is refused promptly by another server over the same database', async () => {
  const dataDir = server.dataDir;
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', DATA_DIR: dataDir, AGGREGATION_WORKER: 'off' });
  const tokens = await TokenService.create({ dataDir, publicUrl: 'http://127.0.0.1', env: {} });
  const other = await buildApp({ config, db: server.database.db, tenancy: new TenancyRepository(server.database.db.prisma), tokens, adminToken: 'other-admin' });
  try {
    await other.listen({ port: 0, host: '127.0.0.1' });
    const address = other.server.address();
    const otherUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const client = await newClient();
    const read = async () => (await fetch(`${otherUrl}/fhir/customer/${t.endpointId}/Patient`, { headers: bearer(client.token) })).status;
    expect(await read()).toBe(200);
    await server.admin('DELETE', `/admin/clients/${client.id}`);
    const deadline = Date.now() + 5_000;
    let status = await read();
    while (status === 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      status = await read();
    }
    expect(status).toBe(401);
  } finally {
    await other.close();
  }
});

describe('/metadata', () => {
  test('answers without a token on a customer endpoint and on the aggregated endpoint', async () => {
    const customer = await fetch(`${t.baseUrl}/metadata`);
    expect(customer.status).toBe(200);
    const statement = (await customer.json()) as Json;
    expect(statement.resourceType).toBe('CapabilityStatement');
    expect(statement.fhirVersion).toBe('4.0.1');
    const aggregated = await fetch(`${server.url}/fhir/aggregated/metadata`);
    expect(aggregated.status).toBe(200);
    expect(((await aggregated.json()) as Json).resourceType).toBe('CapabilityStatement');
  });

  test('an unknown endpoint has no metadata, and everything else still needs a token', async () => {
    expect((await fetch(`${server.url}/fhir/customer/ep_doesnotexist/metadata`)).status).toBe(404);
    for (const path of [`${t.baseUrl}/Patient`, `${t.baseUrl}/$graphql?query={PatientList{id}}`, `${server.url}/fhir/aggregated/Patient`, `${t.baseUrl}/metadata/x`]) {
      const res = await fetch(path);
      expect([path, res.status]).toEqual([path, 401]);
    }
  });
});
