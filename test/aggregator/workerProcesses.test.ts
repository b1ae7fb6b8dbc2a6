import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../support/runCli';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * The pipeline across real processes (PostgreSQL only: `npm run worker` needs it): a worker process killed
 * with SIGKILL in the middle of the queue loses nothing, and two worker processes then finish it side by
 * side without aggregating anything twice.
 */
const SYNTHEA = path.resolve(ROOT, '../shared/data/synthea-r4');
const onPostgres = /^postgres(ql)?:\/\//.test(process.env.DATABASE_URL ?? '') && readdirSync(SYNTHEA).length > 0;

let server: TestServer;
let tenant: Tenant;

beforeAll(async () => {
  if (!onPostgres) return;
  server = await startTestServer({ AGGREGATION_WORKER: 'off' });
  tenant = await server.provision({ defaultSourceOrg: 'Organization/default' });
  // The default source organisation must itself be aggregated (with an identifier) for the copies to come in.
  const org = { resourceType: 'Organization', id: 'default', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'WORKERS' }] };
  expect((await tenant.fetch('Organization/default', { method: 'PUT', body: JSON.stringify(org) })).status).toBe(201);
}, 60_000);
afterAll(() => server?.close());

/** `npm run worker`'s entry point as one process (no wrapper that a SIGKILL would not reach through). */
function startWorker(): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'src/aggregator/workerMain.ts'], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: server.database.url, AGGREGATION_BATCH_SIZE: '20', AGGREGATION_CONCURRENCY: '2', NODE_OPTIONS: '' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

async function queued(): Promise<number> {
  const [row] = await server.database.db.sql.query<{ n: bigint }[]>(`SELECT count(*) AS n FROM agg_outbox`);
  return Number(row.n);
}

async function until(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}

(onPostgres ? test : test.skip)(
  'a killed worker process loses no item; two workers finish the queue without doubles',
  async () => {
    for (const file of readdirSync(SYNTHEA)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .slice(0, 4)) {
      const res = await tenant.fetch('', { method: 'POST', body: readFileSync(path.join(SYNTHEA, file), 'utf8') });
      expect(res.status).toBe(200);
    }
    const total = await queued();
    expect(total).toBeGreaterThan(500);

    const doomed = startWorker();
    await until(async () => (await queued()) < total - 100, 60_000);
    doomed.kill('SIGKILL');
    await new Promise((r) => doomed.once('exit', r));
    expect(await queued()).toBeGreaterThan(0);

    const workers = [startWorker(), startWorker()];
    try {
      await until(async () => (await queued()) === 0, 120_000);
    } finally {
      for (const w of workers) w.kill('SIGTERM');
      await Promise.all(workers.map((w) => new Promise((r) => w.once('exit', r))));
    }

    const sql = server.database.db.sql;
    const [members] = await sql.query<{ included: bigint; distinct_ids: bigint; upstream: bigint }[]>(
      `SELECT count(*) FILTER (WHERE status = 'included') AS included, count(DISTINCT agg_id) FILTER (WHERE status = 'included') AS distinct_ids,
            (SELECT count(*) FROM resource WHERE store = $1) AS upstream
       FROM agg_member WHERE store = $1 AND type NOT IN ('Patient', 'Practitioner', 'Organization')`,
      tenant.endpointId,
    );
    // Every upstream resource was seen; each included copy has its own aggregated id…
    const [seen] = await sql.query<{ n: bigint }[]>(`SELECT count(*) AS n FROM agg_member WHERE store = $1`, tenant.endpointId);
    expect(Number(seen.n)).toBe(Number(members.upstream));
    expect(Number(members.distinct_ids)).toBe(Number(members.included));
    // …and exactly one aggregated resource: none doubled, none orphaned.
    const [copies] = await sql.query<{ n: bigint }[]>(
      `SELECT count(*) AS n FROM resource WHERE store = 'aggregated' AND NOT deleted AND type NOT IN ('Patient', 'Practitioner', 'Organization')`,
    );
    expect(Number(copies.n)).toBe(Number(members.included));
    const [groups] = await sql.query<{ resources: bigint; groups: bigint }[]>(
      `SELECT (SELECT count(*) FROM resource WHERE store = 'aggregated' AND NOT deleted AND type IN ('Patient', 'Practitioner', 'Organization')) AS resources,
            (SELECT count(DISTINCT (type, agg_id)) FROM agg_member WHERE status = 'included' AND type IN ('Patient', 'Practitioner', 'Organization')) AS groups`,
    );
    expect(Number(groups.resources)).toBe(Number(groups.groups));
    const [parked] = await sql.query<{ n: bigint }[]>(`SELECT count(*) AS n FROM agg_outbox WHERE parked`);
    expect(Number(parked.n)).toBe(0);
  },
  240_000,
);
