import { postgresAvailable, type PrivatePostgres, startPrivatePostgres } from '../../bench/lib/privatePostgres';
import { isDatabaseUnavailable } from '../../src/store/databaseUnavailable';
import { postgresSql } from '../../src/store/sql';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Issue 16 item 4 (and the short form of item 8): with PostgreSQL stopped under a running server, every door
 * answers 503 with Retry-After — an OperationOutcome on REST and admin, an HTTP 503 GraphQL error, OAuth's
 * `temporarily_unavailable` on the token endpoint — `/healthz` stays 200 while `/readyz` says not ready, and
 * once PostgreSQL is back the same process serves and aggregates again. Runs on a PostgreSQL of its own
 * (initdb on a free port), never the shared one; skipped only where initdb is not installed.
 */
const maybe = postgresAvailable() ? describe : describe.skip;

maybe('database outage', () => {
  let pg: PrivatePostgres;
  let server: TestServer;
  let tenant: Tenant;
  const saved = process.env.DATABASE_URL;

  beforeAll(async () => {
    pg = await startPrivatePostgres();
    process.env.DATABASE_URL = pg.url;
    server = await startTestServer();
    tenant = await server.provision({ defaultSourceOrg: 'Organization/outage' });
  }, 120_000);
  afterAll(async () => {
    pg.start();
    await server?.close();
    process.env.DATABASE_URL = saved;
    pg?.destroy();
  }, 60_000);

  const patient = (nhs: string) =>
    JSON.stringify({ resourceType: 'Patient', identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: nhs }], name: [{ family: 'Outage' }] });
  const expectOutage = async (res: Response) => {
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    return res.json() as Promise<Record<string, unknown>>;
  };

  test('while PostgreSQL is down every door answers 503 with Retry-After; once it is back the same server serves and aggregates again', async () => {
    const before = await tenant.fetch('Patient', { method: 'POST', body: patient('9000000001') });
    expect(before.status).toBe(201);
    const { id } = (await before.json()) as { id: string };
    await server.waitForAggregation();

    pg.stop('fast');

    const read = await expectOutage(await tenant.fetch(`Patient/${id}`));
    expect(read).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'transient' }] });
    const write = await expectOutage(await tenant.fetch('Patient', { method: 'POST', body: patient('9000000002') }));
    expect(write.resourceType).toBe('OperationOutcome');
    const bundle = await expectOutage(
      await tenant.fetch('', {
        method: 'POST',
        body: JSON.stringify({
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [{ request: { method: 'POST', url: 'Patient' }, resource: JSON.parse(patient('9000000003')) }],
        }),
      }),
    );
    expect(bundle.resourceType).toBe('OperationOutcome');
    const search = await expectOutage(await server.aggregated(tenant, 'Patient?identifier=9000000001'));
    expect(search.resourceType).toBe('OperationOutcome');

    const graphql = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenant.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ PatientList(identifier: "9000000001") { id } }` }),
    });
    const gq = (await expectOutage(graphql)) as { errors: { extensions: { code: string; resource: { resourceType: string } } }[] };
    expect(gq.errors[0].extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', resource: { resourceType: 'OperationOutcome' } });
    // $graphql is a FHIR operation: answered as the REST door answers an outage, not 200 with errors inside.
    const operation = await expectOutage(await tenant.fetch(`$graphql?query=${encodeURIComponent('{ PatientList(identifier: "9000000001") { id } }')}`));
    expect(operation).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'transient' }] });

    const token = await fetch(`${server.url}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: tenant.clientId, client_secret: tenant.clientSecret }).toString(),
    });
    expect(await expectOutage(token)).toMatchObject({ error: 'temporarily_unavailable' });

    const admin = await fetch(`${server.url}/admin/customers`, { headers: { authorization: `Bearer ${server.adminToken}` } });
    expect((await expectOutage(admin)).resourceType).toBe('OperationOutcome');

    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { ready: boolean }).ready).toBe(false);

    pg.start();

    // The pool drops the connections the restart broke; within a few tries the same process answers again.
    let after: Response | undefined;
    for (let i = 0; i < 50; i++) {
      after = await tenant.fetch('Patient', { method: 'POST', body: patient('9000000004') });
      if (after.status !== 503) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(after?.status).toBe(201);
    expect((await tenant.fetch(`Patient/${id}`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    await server.waitForAggregation();
    const aggregated = (await (await server.aggregated(tenant, 'Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9000000004')).json()) as { entry?: unknown[] };
    expect(aggregated.entry).toHaveLength(1);
  }, 120_000);

  test('a transaction open when PostgreSQL stops fails with the outage error instead of taking the process down', async () => {
    const sql = await postgresSql(server.database.url as string, 2);
    let stopped!: () => void;
    const whenStopped = new Promise<void>((r) => (stopped = r));
    let began!: () => void;
    const whenBegun = new Promise<void>((r) => (began = r));
    const open = sql.transaction(async (tx) => {
      await tx.query('SELECT 1');
      began();
      // Idle in transaction while the server shuts down: its FATAL arrives between statements.
      await whenStopped;
      await new Promise((r) => setTimeout(r, 200));
      await tx.query('SELECT 1');
    });
    const failure = open.catch((err: unknown) => err);
    await whenBegun;
    pg.stop('fast');
    stopped();
    expect(isDatabaseUnavailable(await failure)).toBe(true);
    pg.start();
    await sql.close();
  }, 60_000);
});
