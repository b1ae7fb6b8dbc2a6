import { request as httpRequest, type ClientRequest } from 'node:http';
import pg from 'pg';
import { OperationOutcomeError } from '../../src/fhir/outcome';
import { postgresSql } from '../../src/store/sql';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Issue 16 item 2, "no runaway work", on PostgreSQL: a search that cannot finish (the name index is locked by this
 * test) is cancelled at its deadline, or when its client disconnects, and one client cannot hold more than
 * its share of requests. The lock stands in for any slow query without making the test depend on speed.
 */
const onPostgres = /^postgres(ql)?:\/\//.test(process.env.DATABASE_URL ?? '');
const describeOnPostgres = onPostgres ? describe : describe.skip;

async function lockNameIndex(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('BEGIN');
  await client.query('LOCK TABLE search_string IN ACCESS EXCLUSIVE MODE');
  return client;
}

async function release(lock: pg.Client): Promise<void> {
  await lock.query('ROLLBACK');
  await lock.end();
}

/**
 * Statements of the server's database waiting for the test's lock. Not filtered on state: a statement sent
 * with the extended protocol waits for its locks while it is parsed, when pg_stat_activity still says idle.
 */
async function waitingStatements(lock: pg.Client): Promise<number> {
  const { rows } = await lock.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'`);
  return rows[0].n as number;
}

/** Polls until `predicate` holds (at most ~30 s): waiting for the server, not measuring it. */
async function eventually(predicate: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 300; i++) {
    if (await predicate()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

function send(
  url: string,
  token: string,
  headers: Record<string, string> = {},
): { req: ClientRequest; response: Promise<{ status: number; headers: Record<string, unknown>; text: string }> } {
  let req!: ClientRequest;
  const response = new Promise<{ status: number; headers: Record<string, unknown>; text: string }>((resolve, reject) => {
    req = httpRequest(url, { headers: { authorization: `Bearer ${token}`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
  return { req, response };
}

describeOnPostgres('a search that cannot finish', () => {
  let server: TestServer;
  let tenant: Tenant;
  beforeAll(async () => {
    server = await startTestServer({ SEARCH_TIMEOUT_MS: '1500', CLIENT_MAX_CONCURRENT: '1' });
    tenant = await server.provision();
    await tenant.fetch('Patient', { method: 'POST', body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Runaway' }] }) });
  }, 300_000);
  afterAll(() => server.close());

  test('is cancelled at SEARCH_TIMEOUT_MS and answered 503 with Retry-After', async () => {
    const lock = await lockNameIndex(server.database.url as string);
    try {
      const res = await tenant.fetch('Patient?name=Runaway');
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBeTruthy();
      const body = (await res.json()) as { resourceType: string; issue: { code: string; diagnostics: string }[] };
      expect(body.resourceType).toBe('OperationOutcome');
      expect(body.issue[0].diagnostics).toMatch(/SEARCH_TIMEOUT_MS/);
      // Nothing of it is left running on the server.
      expect(await eventually(async () => (await waitingStatements(lock)) === 0)).toBe(true);
    } finally {
      await release(lock);
    }
    expect((await tenant.fetch('Patient?name=Runaway')).status).toBe(200);
  });

  test("a second request of the same client meanwhile gets 429 with Retry-After; another client's does not", async () => {
    const other = await server.provision({ name: 'Other customer' });
    const lock = await lockNameIndex(server.database.url as string);
    let first: ReturnType<typeof send> | undefined;
    let otherStatus: Promise<number> | undefined;
    try {
      first = send(`${tenant.baseUrl}/Patient?name=Runaway`, tenant.token);
      expect(await eventually(async () => (await waitingStatements(lock)) >= 1)).toBe(true);
      const second = await tenant.fetch('Patient?name=Runaway');
      expect(second.status).toBe(429);
      expect(second.headers.get('retry-after')).toBeTruthy();
      expect(((await second.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
      otherStatus = other.fetch('Patient?name=Runaway').then((r) => r.status);
    } finally {
      await release(lock);
    }
    expect([200, 503]).toContain((await first.response).status);
    expect(await otherStatus).not.toBe(429);
    // Once answered, the client may search again.
    expect((await tenant.fetch('Patient?name=Runaway')).status).toBe(200);
  });

  test('a legacy client (the facade) is under the same limit', async () => {
    const customer = (await server.admin<Record<string, any>>('GET', '/admin/customers')).customers.find((c: Record<string, any>) => c.id === tenant.customerId);
    const organization = await server.admin<Record<string, any>>('GET', `/admin/organizations/${customer.defaultOrganizationId}`);
    const legacy = await server.admin<Record<string, any>>('POST', '/admin/clients', { customerId: tenant.customerId, family: 'legacy' });
    const token = await server.token(legacy.client_id, legacy.client_secret, 'legacy');
    const headers = { 'x-org-public-id': organization.publicId };
    const url = `${server.url}/fhir/facade/Patient?name=Runaway`;
    const lock = await lockNameIndex(server.database.url as string);
    let first: ReturnType<typeof send> | undefined;
    try {
      first = send(url, token, headers);
      expect(await eventually(async () => (await waitingStatements(lock)) >= 1)).toBe(true);
      const second = await fetch(url, { headers: { authorization: `Bearer ${token}`, ...headers } });
      expect({ status: second.status, retryAfter: second.headers.get('retry-after') !== null }).toEqual({ status: 429, retryAfter: true });
    } finally {
      await release(lock);
    }
    expect([200, 503]).toContain((await first.response).status);
    expect((await fetch(url, { headers: { authorization: `Bearer ${token}`, ...headers } })).status).toBe(200);
  });
});

// With a search deadline (the default) the request's scope is the deadline's parent, which must pass the disconnect on.
describeOnPostgres.each([
  ['no search deadline', '0'],
  ['a search deadline far off', '60000'],
])('a client that disconnects, with %s', (_label, searchTimeoutMs) => {
  let server: TestServer;
  let tenant: Tenant;
  beforeAll(async () => {
    server = await startTestServer({ SEARCH_TIMEOUT_MS: searchTimeoutMs });
    tenant = await server.provision();
  }, 300_000);
  afterAll(() => server.close());

  test('has its query cancelled: it is gone from pg_stat_activity while the lock is still held', async () => {
    const lock = await lockNameIndex(server.database.url as string);
    try {
      const { req, response } = send(`${tenant.baseUrl}/Patient?name:contains=a&birthdate=ge1900`, tenant.token);
      response.catch(() => undefined);
      expect(await eventually(async () => (await waitingStatements(lock)) >= 1)).toBe(true);
      req.destroy();
      expect(await eventually(async () => (await waitingStatements(lock)) === 0)).toBe(true);
    } finally {
      await release(lock);
    }
    // The server is unharmed: the next search answers.
    expect((await tenant.fetch('Patient?name=x')).status).toBe(200);
  });
});

describeOnPostgres('the connection pool', () => {
  test('a request waiting longer than POOL_WAIT_TIMEOUT_MS for a connection gets 503 with Retry-After', async () => {
    const sql = await postgresSql(process.env.DATABASE_URL as string, 1, { poolWaitMs: 2000 });
    // The pool's one connection is opened first, then held by a transaction that waits for this test.
    await sql.query('SELECT 1');
    let finish: () => void = () => undefined;
    let started!: () => void;
    const holding = new Promise<void>((r) => (started = r));
    const held = sql.transaction(
      () =>
        new Promise<void>((r) => {
          finish = r;
          started();
        }),
    );
    await holding;
    try {
      const refused = await sql.query('SELECT 1').catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(OperationOutcomeError);
      expect((refused as OperationOutcomeError).status).toBe(503);
      expect((refused as OperationOutcomeError).headers['Retry-After']).toBeTruthy();
      expect((refused as OperationOutcomeError).message).toMatch(/POOL_WAIT_TIMEOUT_MS/);
    } finally {
      finish();
      await held;
      await sql.close();
    }
  });

  test('a statement running longer than STATEMENT_TIMEOUT_MS is cancelled by PostgreSQL and answered 503', async () => {
    const sql = await postgresSql(process.env.DATABASE_URL as string, 1, { statementTimeoutMs: 200 });
    try {
      const refused = await sql.query('SELECT pg_sleep(30)').catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(OperationOutcomeError);
      expect((refused as OperationOutcomeError).status).toBe(503);
      // The connection is fine afterwards.
      expect(await sql.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    } finally {
      await sql.close();
    }
  });
});
