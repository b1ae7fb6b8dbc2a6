import { RevokedClients } from '../../src/access/revokedClients';
import type { OperationOutcomeError } from '../../src/fhir/outcome';
import { Authorization, type AuthorizationDeps } from '../../src/service/authorization';
import { TenancyRepository } from '../../src/store/tenancyRepository';
import { startTestServer, type TestServer } from '../support/testServer';

/**
 * The legacy family names the caller's organisation in X-Org-Public-Id, checked against the client's
 * (issue 13 item 6). Its endpoints come later, so this drives the authorisation point itself, over the real
 * server's store and token service: 401 without a token, 400 without a well-formed header, 403 for another
 * organisation's public id.
 */
type Json = Record<string, any>;
let server: TestServer;
let revoked: RevokedClients;
let authorization: Authorization;

beforeAll(async () => {
  server = await startTestServer();
  revoked = new RevokedClients(server.database.db);
  await revoked.start();
  const tenancy = new TenancyRepository(server.database.db.prisma);
  authorization = new Authorization({
    tokens: server.tokens,
    revoked,
    organizationPublicId: async (id) => (await tenancy.organizations.getOrganization(id))?.publicId ?? null,
    endpoint: async () => null,
    publicUrl: () => server.url,
  } as Partial<AuthorizationDeps> as AuthorizationDeps);
}, 120_000);
afterAll(async () => {
  await revoked.stop();
  await server.close();
});

async function refusal(attempt: Promise<unknown>): Promise<{ status: number; diagnostics: string }> {
  const err = (await attempt.then(
    () => undefined,
    (e: unknown) => e,
  )) as OperationOutcomeError | undefined;
  if (!err) throw new Error('expected a refusal');
  return { status: err.status, diagnostics: err.outcome.issue[0].diagnostics as string };
}

async function legacyClient(): Promise<{ organization: Json; token: string; client: Json }> {
  const customer = await server.admin<Json>('POST', '/admin/customers', { name: 'Legacy Trust' });
  const organization = await server.admin<Json>('GET', `/admin/organizations/${customer.defaultOrganizationId}`);
  const client = await server.admin<Json>('POST', '/admin/clients', { customerId: customer.id, family: 'legacy' });
  return { organization, client, token: await server.token(client.client_id, client.client_secret, 'legacy') };
}

test("the client's organisation's public id lets the caller in, acting for that organisation", async () => {
  const { organization, token, client } = await legacyClient();
  const caller = await authorization.authenticateLegacy(`Bearer ${token}`, organization.publicId);
  expect(caller).toMatchObject({ family: 'legacy', clientId: client.client_id, organizationId: organization.id });
  // A UUID is case-insensitive (RFC 9562 §4).
  expect((await authorization.authenticateLegacy(`Bearer ${token}`, organization.publicId.toUpperCase())).organizationId).toBe(organization.id);
});

test('no token is 401; a missing or malformed header is 400; another organisation is 403', async () => {
  const { organization, token } = await legacyClient();
  const other = await legacyClient();
  expect((await refusal(authorization.authenticateLegacy(undefined, organization.publicId))).status).toBe(401);
  const missing = await refusal(authorization.authenticateLegacy(`Bearer ${token}`, undefined));
  expect(missing).toEqual({ status: 400, diagnostics: expect.stringContaining('X-Org-Public-Id header is required') });
  expect((await refusal(authorization.authenticateLegacy(`Bearer ${token}`, 'org-123'))).status).toBe(400);
  expect((await refusal(authorization.authenticateLegacy(`Bearer ${token}`, [organization.publicId, organization.publicId]))).status).toBe(400);
  const foreign = await refusal(authorization.authenticateLegacy(`Bearer ${token}`, other.organization.publicId));
  expect(foreign).toEqual({ status: 403, diagnostics: "X-Org-Public-Id is not the public id of this client's organisation" });
  // Nor is the organisation's id itself its public id.
  expect((await refusal(authorization.authenticateLegacy(`Bearer ${token}`, organization.id))).status).toBe(400);
});

test('a fhir-family token is not a legacy one', async () => {
  const tenant = await server.provision();
  const customer = (await server.admin<Json>('GET', '/admin/customers')).customers.find((c: Json) => c.id === tenant.customerId);
  const organization = await server.admin<Json>('GET', `/admin/organizations/${customer.defaultOrganizationId}`);
  expect((await refusal(authorization.authenticateLegacy(`Bearer ${tenant.token}`, organization.publicId))).status).toBe(401);
});

test("a disabled organisation's legacy tokens are refused on the next request", async () => {
  const { organization, token } = await legacyClient();
  await server.admin('POST', `/admin/organizations/${organization.id}/disable`);
  // This set hears of it as another server process would: through NOTIFY.
  for (let i = 0; i < 50 && !revoked.refusal({ family: 'legacy', clientId: 'x', scopes: [], admin: false, organizationId: organization.id }); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const refused = await refusal(authorization.authenticateLegacy(`Bearer ${token}`, organization.publicId));
  expect(refused).toEqual({ status: 401, diagnostics: 'The organisation this access token acts for is disabled' });
});
