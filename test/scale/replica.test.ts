import pg from 'pg';
import { type PrivatePostgres, replicaAvailable, startPrivatePostgres } from '../../bench/lib/privatePostgres';
import { actingAs, addTeam } from '../support/accessModel';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Issue 19 item 6: with DATABASE_REPLICA_URL set, aggregated reads (REST and GraphQL) are served by the
 * streaming replica, and a client that wrote reads its own write. The test pauses the replica's replay, so
 * what the replica serves is visibly older than the primary: a client with no writes sees the old state there,
 * the writing client's reads wait REPLICA_MAX_WAIT_MS and go to the primary, and a consent revoked meanwhile
 * counts at once for its grantee (whose reads then go to the primary too). Runs on a primary and a replica
 * of its own (initdb + pg_basebackup on free ports), never the shared instance; skipped where those are missing.
 */
const maybe = replicaAvailable() ? describe : describe.skip;

maybe('aggregated reads on a streaming replica', () => {
  let primary: PrivatePostgres;
  let replica: PrivatePostgres;
  let server: TestServer;
  let writer: Tenant;
  let reader: Tenant;
  const saved = process.env.DATABASE_URL;

  beforeAll(async () => {
    primary = await startPrivatePostgres();
    replica = await startPrivatePostgres({ replicaOf: primary });
    process.env.DATABASE_URL = primary.url;
    server = await startTestServer({ REPLICA_MAX_WAIT_MS: '300' }, { replicaUrl: replica.url });
    writer = await server.provision({ defaultSourceOrg: 'Organization/replica' });
    // A second client of the same customer: it sees the same source view and writes nothing.
    const client = await server.admin<{ client_id: string; client_secret: string }>('POST', '/admin/clients', { customerId: writer.customerId, family: 'fhir' });
    const token = await server.token(client.client_id, client.client_secret);
    reader = { ...writer, clientId: client.client_id, clientSecret: client.client_secret, token, fetch: () => Promise.reject(new Error('the reader writes nothing')) };
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    process.env.DATABASE_URL = saved;
    replica?.destroy();
    primary?.destroy();
  }, 60_000);

  const onReplica = async (statement: string) => {
    const client = new pg.Client({ connectionString: replica.url });
    await client.connect();
    try {
      return (await client.query(statement)).rows;
    } finally {
      await client.end();
    }
  };
  const patient = (nhs: string) =>
    JSON.stringify({ resourceType: 'Patient', identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: nhs }], name: [{ family: 'Replica' }] });
  const found = async (tenant: Tenant, nhs: string) => {
    const res = await server.aggregated(tenant, `Patient?identifier=${nhs}`);
    expect(res.status).toBe(200);
    return ((await res.json()) as { total?: number; entry?: unknown[] }).entry?.length ?? 0;
  };
  const graphqlFound = async (tenant: Tenant, nhs: string) => {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenant.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ PatientList(identifier: "${nhs}") { id } }` }),
    });
    const json = (await res.json()) as { data?: { PatientList: unknown[] }; errors?: unknown };
    expect(json.errors).toBeUndefined();
    return json.data?.PatientList.length ?? 0;
  };
  /** `tributary_aggregated_reads_total` by `served_by/reason`. */
  const routed = async (): Promise<Record<string, number>> => {
    const text = await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${server.adminToken}` } })).text();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(/^tributary_aggregated_reads_total\{served_by="(\w+)",reason="([\w-]+)"\} (\d+)/gm)) out[`${m[1]}/${m[2]}`] = Number(m[3]);
    return out;
  };

  test('a client with nothing pending reads the replica (older while its replay is paused); the writing client reads its own write from the primary', async () => {
    const first = await writer.fetch('Patient', { method: 'POST', body: patient('9000000011') });
    expect(first.status).toBe(201);
    await server.waitForAggregation();
    // Both see the first patient once the replica has replayed its aggregation.
    for (let i = 0; (await found(reader, '9000000011')) === 0; i++) {
      if (i > 100) throw new Error('the replica never showed the first patient');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await found(writer, '9000000011')).toBe(1);
    expect((await routed())['replica/replica']).toBeGreaterThan(0);

    await onReplica('SELECT pg_wal_replay_pause()');
    const second = await writer.fetch('Patient', { method: 'POST', body: patient('9000000012') });
    expect(second.status).toBe(201);
    await server.waitForAggregation();

    const before = await routed();
    // The writer's read waits for the replica to pass its write, gives up after 300 ms, and reads the primary.
    expect(await found(writer, '9000000012')).toBe(1);
    expect(await graphqlFound(writer, '9000000012')).toBe(1);
    // The reader wrote nothing: it is served by the paused replica, on REST and GraphQL alike.
    expect(await found(reader, '9000000012')).toBe(0);
    expect(await graphqlFound(reader, '9000000012')).toBe(0);
    expect(await found(reader, '9000000011')).toBe(1);
    const after = await routed();
    expect((after['primary/replica-behind'] ?? 0) - (before['primary/replica-behind'] ?? 0)).toBe(2);
    expect(after['replica/replica'] - before['replica/replica']).toBe(3);

    // /readyz reports the replica behind, and stays ready: reads go to the primary meanwhile.
    const ready = (await (await fetch(`${server.url}/readyz`)).json()) as { ready: boolean; checks: { replica?: { ok: boolean; bytes: number } } };
    expect(ready.ready).toBe(true);
    expect(ready.checks.replica).toMatchObject({ ok: true });
    expect(ready.checks.replica?.bytes).toBeGreaterThan(0);

    await onReplica('SELECT pg_wal_replay_resume()');
    for (let i = 0; (await found(reader, '9000000012')) === 0; i++) {
      if (i > 100) throw new Error('the replica never caught up after its replay resumed');
      await new Promise((r) => setTimeout(r, 100));
    }
    // Caught up: the writer is back on the replica too.
    const resumed = await routed();
    expect(await found(writer, '9000000012')).toBe(1);
    expect((await routed())['replica/replica'] - resumed['replica/replica']).toBe(1);
  }, 60_000);

  test('a consent revoked while the replica is behind counts on the grantee’s next read', async () => {
    const LABEL = 'http://fhir.patientsknowbest.com/codesystem/privacy-label';
    const entries = [
      // The writer's default source organisation: the aggregator attributes the Observation to it.
      { resourceType: 'Organization', id: 'replica', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'RPL' }] },
      { resourceType: 'Patient', id: 'p', identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: '9000000021' }] },
      {
        resourceType: 'Observation',
        id: 'mh',
        meta: { security: [{ system: LABEL, code: 'MENTAL_HEALTH' }] },
        status: 'final',
        code: { text: 'replica-mh' },
        subject: { reference: 'Patient/p' },
      },
    ];
    const bundle = { resourceType: 'Bundle', type: 'transaction', entry: entries.map((r) => ({ resource: r, request: { method: 'PUT', url: `${r.resourceType}/${r.id}` } })) };
    expect((await writer.fetch(writer.baseUrl, { method: 'POST', body: JSON.stringify(bundle) })).status).toBe(200);
    await server.waitForAggregation();
    const status = (await (await writer.fetch('Patient/p/$aggregation-status')).json()) as { issue: { diagnostics: string }[] };
    const patientId = /is aggregated as Patient\/([^ .,;]+)/.exec(status.issue[0].diagnostics)?.[1] as string;
    // Another customer's team, granted MENTAL_HEALTH by the patient.
    const other = await server.provision({ name: 'Clinic', defaultSourceOrg: 'Organization/clinic' });
    await addTeam(server, { id: 'team-rpl', organizationId: 'org-rpl', customerId: other.customerId });
    const team = actingAs(server, other, { organizationId: 'org-rpl', teamId: 'team-rpl' });
    const sees = async () => {
      const res = await server.aggregated(team, 'Observation?_count=100');
      expect(res.status).toBe(200);
      return (((await res.json()) as { entry?: { resource: { code?: { text?: string } } }[] }).entry ?? []).filter((e) => e.resource.code?.text === 'replica-mh').length;
    };
    await server.admin('POST', '/admin/consents', { patientId, grantee: 'team-rpl', label: 'MENTAL_HEALTH' });
    for (let i = 0; (await sees()) === 0; i++) {
      if (i > 100) throw new Error('the team never saw the granted Observation');
      await new Promise((r) => setTimeout(r, 100));
    }

    await onReplica('SELECT pg_wal_replay_pause()');
    try {
      await server.admin('DELETE', '/admin/consents', { patientId, grantee: 'team-rpl', label: 'MENTAL_HEALTH' });
      const before = await routed();
      // The paused replica still holds the grant; the team's read waits for it, then reads the primary.
      expect(await sees()).toBe(0);
      expect(((await routed())['primary/replica-behind'] ?? 0) - (before['primary/replica-behind'] ?? 0)).toBe(1);
    } finally {
      await onReplica('SELECT pg_wal_replay_resume()');
    }
  }, 60_000);
});
