import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Issue 16 item 6: client secrets cannot be guessed at full speed. After AUTH_MAX_FAILURES_PER_CLIENT wrong
 * secrets the client id is locked out (429 with Retry-After, even for the right secret, which would otherwise
 * tell the guesser it had won); after AUTH_MAX_FAILURES_PER_ADDRESS failures from one address, that address is.
 * Every refusal is in the audit log. The counts are in the database, so they hold across every server on it
 * and across a restart.
 */
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ AUTH_MAX_FAILURES_PER_CLIENT: '5', AUTH_MAX_FAILURES_PER_ADDRESS: '12' });
});
afterAll(() => server.close());

function tokenRequest(clientId: string, secret: string, on: TestServer = server): Promise<Response> {
  return fetch(`${on.url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret }).toString(),
  });
}

/** Audited token refusals of `clientId` for being locked out (AuditEvent.outcomeDesc carries the reason). */
async function auditedLockouts(clientId: string, on: TestServer = server): Promise<number> {
  const rows = await on.database.db.sql.query<{ n: number }[]>(
    `SELECT count(*)::int AS n FROM audit_event WHERE subtype = 'token-issue' AND client = $1 AND outcome = '4' AND activity->>'detail' LIKE '%Too many failed client authentications%'`,
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
    // 5 + 6 failures from this address so far (the tests above; neither the refused attempt nor the successes
    // count); one more reaches 12.
    for (let i = 0; i < 4; i++) await tokenRequest(`made-up-${i}`, 'x');
    const res = await tokenRequest('made-up-last', 'x');
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error_description: string }).error_description).toMatch(/address/);
  });
});

describe('two servers on one database', () => {
  let first: TestServer;
  let second: TestServer;
  const limits = { AUTH_MAX_FAILURES_PER_CLIENT: '5', AUTH_MAX_FAILURES_PER_ADDRESS: '1000' };
  beforeAll(async () => {
    first = await startTestServer(limits);
    second = await startTestServer(limits, { sharedDatabase: first.database });
  });
  afterAll(async () => {
    await second?.close();
    await first?.close();
  });

  test('failures spread over both servers lock the client out on both, audited by each', async () => {
    const tenant = await first.provision();
    for (let i = 0; i < 5; i++) expect((await tokenRequest(tenant.clientId, `wrong-${i}`, i % 2 ? second : first)).status).toBe(400);
    for (const on of [first, second]) {
      const locked = await tokenRequest(tenant.clientId, tenant.clientSecret, on);
      expect(locked.status).toBe(429);
      // Within the window (15 min) and one slice of it (90 s) the oldest failure leaves.
      expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(Number(locked.headers.get('retry-after'))).toBeLessThanOrEqual(15 * 60 + 90);
    }
    expect(await auditedLockouts(tenant.clientId, first)).toBe(2);
  });

  test('the lockout survives a restart of a server', async () => {
    const tenant = await first.provision({ name: 'Restarted' });
    for (let i = 0; i < 5; i++) expect((await tokenRequest(tenant.clientId, `wrong-${i}`, second)).status).toBe(400);
    await second.close();
    second = await startTestServer(limits, { sharedDatabase: first.database });
    expect((await tokenRequest(tenant.clientId, tenant.clientSecret, second)).status).toBe(429);
  });

  test('a burst of parallel guesses over both servers gets exactly the limit of guesses', async () => {
    const tenant = await first.provision({ name: 'Burst' });
    const answers = await Promise.all(Array.from({ length: 24 }, (_, i) => tokenRequest(tenant.clientId, `guess-${i}`, i % 2 ? second : first)));
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 400)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(19);
  });

  test('a client id too long for an index or holding a NUL is counted, not a 500', async () => {
    for (const clientId of ['x'.repeat(100_000), 'nul\u0000id']) {
      for (let i = 0; i < 5; i++) expect((await tokenRequest(clientId, 'x', first)).status).toBe(400);
      expect((await tokenRequest(clientId, 'x', second)).status).toBe(429);
    }
  });

  test('expired slices are pruned by the statement that counts a failure', async () => {
    const sql = first.database.db.sql;
    await sql.execute(`INSERT INTO auth_failure (kind, key, bucket, failures) VALUES ('client', 'long-gone', now() - interval '1 day', 3)`);
    expect((await tokenRequest('made-up', 'x', second)).status).toBe(400);
    expect(await sql.query<unknown[]>(`SELECT 1 FROM auth_failure WHERE key = 'long-gone'`)).toHaveLength(0);
  });
});

describe('addresses named in X-Forwarded-For', () => {
  let direct: TestServer;
  beforeAll(async () => {
    // As a server reached straight from the internet is: its peers are no proxies it trusts.
    direct = await startTestServer({ AUTH_MAX_FAILURES_PER_CLIENT: '100', AUTH_MAX_FAILURES_PER_ADDRESS: '4', TRUST_PROXY: 'off' });
  });
  afterAll(() => direct?.close());

  const spoofed = (i: number) =>
    fetch(`${direct.url}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': `203.0.113.${i}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: `guess-${i}`, client_secret: 'x' }).toString(),
    });

  test('from a peer that is no trusted proxy do not give a guesser a fresh address per guess', async () => {
    for (let i = 0; i < 4; i++) expect((await spoofed(i)).status).toBe(400);
    const locked = await spoofed(99);
    expect(locked.status).toBe(429);
    expect(((await locked.json()) as { error_description: string }).error_description).toMatch(/address/);
  });
});
