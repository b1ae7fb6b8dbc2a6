import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Issue 16 item 6: client secrets cannot be guessed at full speed. After AUTH_MAX_FAILURES_PER_CLIENT wrong
 * secrets the client id is locked out (429 with Retry-After, even for the right secret, which would otherwise
 * tell the guesser it had won); after AUTH_MAX_FAILURES_PER_ADDRESS failures from one address, that address is.
 * Every refusal is in the audit log.
 */
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ AUTH_MAX_FAILURES_PER_CLIENT: '5', AUTH_MAX_FAILURES_PER_ADDRESS: '12' });
});
afterAll(() => server.close());

function tokenRequest(clientId: string, secret: string): Promise<Response> {
  return fetch(`${server.url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret }).toString(),
  });
}

/** Audited token refusals of `clientId` for being locked out (AuditEvent.outcomeDesc carries the reason). */
async function auditedLockouts(clientId: string): Promise<number> {
  const rows = await server.database.db.sql.query<{ n: number }[]>(
    `SELECT count(*)::int AS n FROM audit_event WHERE subtype = 'token-issue' AND client = $1 AND outcome = '4' AND body->>'outcomeDesc' LIKE '%Too many failed client authentications%'`,
    clientId,
  );
  return rows[0].n;
}

describe('failed client authentications at the token endpoint', () => {
  let tenant: Tenant;
  beforeAll(async () => {
    tenant = await server.provision();
  });

  test('after 5 wrong secrets the client gets 429 with Retry-After, even with the right secret', async () => {
    for (let i = 0; i < 5; i++) expect((await tokenRequest(tenant.clientId, `wrong-${i}`)).status).toBe(400);
    const locked = await tokenRequest(tenant.clientId, tenant.clientSecret);
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    const body = (await locked.json()) as { error: string };
    expect(body.error).toBe('temporarily_unavailable');
    expect(await auditedLockouts(tenant.clientId)).toBe(1);
  });

  test("another client's tokens are not affected by one client's lockout", async () => {
    const other = await server.provision({ name: 'Other' });
    expect((await tokenRequest(other.clientId, other.clientSecret)).status).toBe(200);
  });

  test('a success clears the count: fewer failures than the limit never lock a client out', async () => {
    const tenant2 = await server.provision({ name: 'Third' });
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 3; i++) expect((await tokenRequest(tenant2.clientId, 'nope')).status).toBe(400);
      expect((await tokenRequest(tenant2.clientId, tenant2.clientSecret)).status).toBe(200);
    }
  });

  test('guessing across many client ids from one address locks the address out', async () => {
    // 5 + 6 failures from this address so far (the tests above); one more reaches 12.
    for (let i = 0; i < 4; i++) await tokenRequest(`made-up-${i}`, 'x');
    const res = await tokenRequest('made-up-last', 'x');
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error_description: string }).error_description).toMatch(/address/);
  });
});
