/**
 * What one ingested resource costs in CPU (issue 19 item 1), measured rather than timed: on a machine shared
 * with other work, wall-clock throughput says little, but the CPU the server process and the database spend
 * for a fixed load does not depend on who else runs. Starts the server on a fresh database, posts patients
 * `0..N` (scaled Synthea transaction Bundles, 4 in flight), waits for the aggregation queue to drain, and
 * prints the CPU of the server process (all its threads) and of the PostgreSQL cluster (the postmaster, its
 * live children and the children it reaped), per resource; with `pg_stat_statements` in the cluster, the
 * statements that took most of its time.
 *
 *   DATABASE_URL=postgresql://postgres@127.0.0.1:55442/postgres node scripts/run-ts.js bench/ingestCost.ts [patients] [on|off|floor]
 *
 * `floor` measures the indexed floor instead (bench/lib/indexedFloor.ts: the rows the server writes, one statement per
 * Bundle from a bare script) with the same figures, so the two sides' statements can be set side by side.
 * `INGEST_COST_CONCURRENCY` sets the Bundles in flight (default 4). Every figure is per resource: the CPU of the
 * server and of the cluster, the machine's idle share over the load (/proc/stat: whether the cores were the limit),
 * and per statement its calls, rows, execution and planning time and shared buffers hit.
 *
 * `INGEST_COST_ORDER=hits` ranks the statements by buffer hits instead of time, `INGEST_COST_TOP` says how many to print
 * and `INGEST_COST_JSON=file` saves them all; `INGEST_COST_KEEP=1` keeps the database. `INGEST_COST_SQL` runs one statement on the fresh, migrated database before the load (an experiment: an
 * index dropped, a storage parameter changed).
 *
 * The cluster's CPU is read from /proc, so the database must run on this machine and should serve nothing
 * else during the run (start one of your own: initdb, pg_ctl); a shared one gives an upper bound.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import pg from 'pg';
import { freshDatabase } from './lib/database';
import { bundles, entryCount } from './lib/dataset';
import { bundleParams, open as openFloor, statementSql } from './lib/indexedFloor';
import { runPostStream } from './lib/load';
import { clusterTicks, statTicks, TICK_US } from './lib/processCpu';
import { startServer } from './lib/server';

/** The machine's idle and total jiffies so far (all cores), from /proc/stat. */
function machineTicks(): { idle: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { idle: f[3] + f[4], total: f.reduce((a, b) => a + b, 0) };
}

async function main(): Promise<void> {
  const patients = Number(process.argv[2] ?? 60);
  const mode = process.argv[3] ?? 'on';
  const aggregation = mode === 'on';
  const concurrency = Number(process.env.INGEST_COST_CONCURRENCY ?? 4);
  const adminUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const dataDir = (await admin.query(`SHOW data_directory`)).rows[0].data_directory as string;
  const postmaster = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
  const statements = (await admin.query(`SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'`)).rowCount === 1;
  if (mode === 'floor') {
    await floor(admin, adminUrl, patients, concurrency, postmaster, statements);
    await admin.end();
    return;
  }
  const db = await freshDatabase(adminUrl);
  const server = await startServer({ env: { DATABASE_URL: db.url, ...(aggregation ? {} : { AGGREGATION_WORKER: 'off' }) } });
  try {
    // The first seconds after start belong to the server's own warm-up (a loaded machine can make a first
    // transaction miss Prisma's wait for a connection): retry the tenant for a while.
    const t = await retry(() => server.tenant('bench ingest cost'));
    // INGEST_COST_SQL: an experiment on the fresh schema before the load (e.g. 'DROP INDEX agg_member_depends_idx').
    if (process.env.INGEST_COST_SQL) {
      const experiment = new pg.Client({ connectionString: db.url });
      await experiment.connect();
      await experiment.query(process.env.INGEST_COST_SQL);
      await experiment.end();
    }
    // Warm-up: a few patients first, so code compilation and first plans are not counted.
    const warm = [...bundles(patients, patients + 3)];
    await runPostStream(
      warm.map((body) => ({ method: 'POST', url: t.base, headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/fhir+json' }, body })),
      concurrency,
    );
    await drain(server.admin.bind(server), aggregation);
    // The validators compile in the background after the first answer (server.ts, warmValidation): seconds of CPU
    // that belong to start, not to the load. Wait for the server to go quiet before counting.
    await quiet(server.pid);
    if (statements) await admin.query(`SELECT pg_stat_statements_reset()`);
    // The bench's ingest scenario makes these Bundles while it posts them (bench/scenarios/context.ts): what that
    // costs is CPU the machine spends beside the server during its timed load, so it is measured here too.
    const made0 = process.cpuUsage();
    const list = [...bundles(0, patients)];
    const made = process.cpuUsage(made0);
    const resources = list.reduce((n, b) => n + entryCount(b), 0);
    server.resetPeak();
    const loader0 = statTicks(process.pid, true);
    const server0 = statTicks(server.pid, true);
    const pg0 = clusterTicks(postmaster);
    const machine0 = machineTicks();
    const started = Date.now();
    const load = await runPostStream(
      list.map((body) => ({ method: 'POST', url: t.base, headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/fhir+json' }, body })),
      concurrency,
    );
    const ingested = Date.now();
    const machine1 = machineTicks();
    // This process (writing the requests to the poster) and the poster process (reaped when it exited).
    const loaderUs = (statTicks(process.pid, true) - loader0) * TICK_US;
    await drain(server.admin.bind(server), aggregation);
    const drained = Date.now();
    const serverUs = (statTicks(server.pid, true) - server0) * TICK_US;
    const pgUs = (clusterTicks(postmaster) - pg0) * TICK_US;
    const load1 = os.loadavg()[0].toFixed(1);
    console.log(
      `${patients} patients, ${resources} resources, aggregation ${aggregation ? 'on' : 'off'}, ${concurrency} in flight; failed Bundles ${load.errors + load.statusErrors}; ` +
        `ingest ${((ingested - started) / 1000).toFixed(1)} s (${Math.round(resources / ((ingested - started) / 1000))} res/s), drained after ${((drained - started) / 1000).toFixed(1)} s; ` +
        `machine idle ${idleShare(machine0, machine1)} % during the load; load average ${load1}`,
    );
    console.log(
      `CPU per resource: server ${Math.round(serverUs / resources)} µs, PostgreSQL ${Math.round(pgUs / resources)} µs, together ${Math.round((serverUs + pgUs) / resources)} µs`,
    );
    console.log(
      `load generation per resource: posting ${Math.round(loaderUs / resources)} µs (this process and the poster); ` +
        `making the scaled Bundles ${Math.round((made.user + made.system) / resources)} µs (the bench's ingest does that during its load)`,
    );
    console.log(`server RSS: peak ${server.peakRssMb()} MB during the load, ${server.rssMb()} MB after it`);
    if (statements) await statementReport(admin, new URL(db.url).pathname.slice(1), resources);
  } finally {
    await server.stop({ removeData: true });
    // INGEST_COST_KEEP=1: the database stays, for EXPLAIN of what the run's statements met.
    if (process.env.INGEST_COST_KEEP === '1') console.log(`database kept: ${db.url}`);
    else await db.drop();
    await admin.end();
  }
}

const idleShare = (a: { idle: number; total: number }, b: { idle: number; total: number }) => Math.round((100 * (b.idle - a.idle)) / Math.max(1, b.total - a.total));

/**
 * The indexed floor's statements for patients 0..N (built untimed, as the bench does), `concurrency` in flight,
 * into a fresh migrated database, with the same figures as the server's run.
 */
async function floor(admin: pg.Client, adminUrl: string, patients: number, concurrency: number, postmaster: number, statements: boolean): Promise<void> {
  const db = await openFloor('postgres', adminUrl, concurrency);
  try {
    const now = new Date();
    const store = '00000000-0000-4000-8000-000000000001';
    const sql = statementSql();
    // Warm-up as the server's: 3 patients, then the measured ones.
    for (const text of bundles(patients, patients + 3)) await db.query(sql, bundleParams(text, store, now).params);
    const batches = [...bundles(0, patients)].map((text) => bundleParams(text, store, now));
    const resources = batches.reduce((n, b) => n + b.resources, 0);
    if (statements) await admin.query(`SELECT pg_stat_statements_reset()`);
    const pg0 = clusterTicks(postmaster);
    const machine0 = machineTicks();
    const started = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < batches.length) await db.query(sql, batches[next++].params);
      }),
    );
    const ended = Date.now();
    const machine1 = machineTicks();
    const pgUs = (clusterTicks(postmaster) - pg0) * TICK_US;
    console.log(
      `indexed floor: ${patients} patients, ${resources} resources, ${concurrency} in flight; ${((ended - started) / 1000).toFixed(1)} s (${Math.round(resources / ((ended - started) / 1000))} res/s); ` +
        `machine idle ${idleShare(machine0, machine1)} %; load average ${os.loadavg()[0].toFixed(1)}`,
    );
    console.log(`CPU per resource: PostgreSQL ${Math.round(pgUs / resources)} µs`);
    if (statements) await statementReport(admin, new URL(db.url as string).pathname.slice(1), resources);
  } finally {
    await db.close();
  }
}

/** pg_stat_statements for one database since the reset: totals and the top statements, per resource. */
async function statementReport(admin: pg.Client, database: string, resources: number): Promise<void> {
  const dbid = `(SELECT oid FROM pg_database WHERE datname = $1)`;
  const per = (v: unknown, digits = 1) => (Number(v) / resources).toFixed(digits);
  const total = (
    await admin.query(
      `SELECT sum(calls) AS calls, sum(total_exec_time) AS exec_ms, sum(total_plan_time) AS plan_ms, sum(shared_blks_hit) AS hit,
              sum(shared_blks_read) AS read, sum(shared_blks_dirtied) AS dirtied, sum(wal_bytes) AS wal
         FROM pg_stat_statements WHERE dbid = ${dbid}`,
      [database],
    )
  ).rows[0];
  console.log(
    `statements per resource: ${per(total.calls, 3)} calls, ${per(Number(total.exec_ms) * 1000)} µs executing, ${per(Number(total.plan_ms) * 1000)} µs planning, ` +
      `${per(total.hit)} buffers hit, ${per(total.read, 2)} read, ${per(total.dirtied, 2)} dirtied, ${per(total.wal, 0)} B WAL`,
  );
  // Buffer hits do not depend on the machine's load, where times do: `INGEST_COST_ORDER=hits` ranks by them.
  const order = process.env.INGEST_COST_ORDER === 'hits' ? 'shared_blks_hit + shared_blks_read' : 'total_exec_time + total_plan_time';
  const all = await admin.query(
    `SELECT calls, rows, total_exec_time AS exec_ms, total_plan_time AS plan_ms, shared_blks_hit AS hit, wal_bytes AS wal,
            regexp_replace(query, '\\s+', ' ', 'g') AS query
       FROM pg_stat_statements WHERE dbid = ${dbid} ORDER BY ${order} DESC`,
    [database],
  );
  // INGEST_COST_JSON=file: every statement with its full text, for comparing two runs statement by statement.
  if (process.env.INGEST_COST_JSON) writeFileSync(process.env.INGEST_COST_JSON, JSON.stringify({ resources, total, statements: all.rows }, null, 1));
  const top = { rows: all.rows.slice(0, Number(process.env.INGEST_COST_TOP ?? 25)).map((r) => ({ ...r, query: String(r.query).slice(0, 140) })) };
  console.log('  µs exec/res  µs plan/res  hits/res   calls/res  rows/res  WAL B/res  statement');
  for (const r of top.rows)
    console.log(
      `${per(Number(r.exec_ms) * 1000).padStart(12)} ${per(Number(r.plan_ms) * 1000).padStart(12)} ${per(r.hit).padStart(9)} ${per(r.calls, 4).padStart(11)} ${per(r.rows, 2).padStart(9)} ${per(r.wal, 0).padStart(10)}  ${r.query}`,
    );
}

async function retry<T>(step: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await step();
    } catch (err) {
      if (i >= 10) throw err;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

/** Until the process spends under 5 % of a core over a second (at most 60 s). */
async function quiet(pid: number): Promise<void> {
  for (let i = 0; i < 60; i++) {
    const before = statTicks(pid, true);
    await new Promise((r) => setTimeout(r, 1000));
    if (statTicks(pid, true) - before < 5) return;
  }
}

async function drain(adminCall: <T>(method: string, p: string) => Promise<T>, aggregation: boolean): Promise<void> {
  if (!aggregation) return;
  for (;;) {
    const lag = await adminCall<{ queueDepth: number }>('GET', '/admin/aggregation');
    if (lag.queueDepth === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
