/**
 * What one ingested resource costs in CPU (issue 19 item 1), measured rather than timed: on a machine shared
 * with other work, wall-clock throughput says little, but the CPU the server process and the database spend
 * for a fixed load does not depend on who else runs. Starts the server on a fresh database, posts patients
 * `0..N` (scaled Synthea transaction Bundles, 4 in flight), waits for the aggregation queue to drain, and
 * prints the CPU of the server process (all its threads) and of the PostgreSQL cluster (the postmaster, its
 * live children and the children it reaped), per resource; with `pg_stat_statements` in the cluster, the
 * statements that took most of its time.
 *
 *   DATABASE_URL=postgresql://postgres@127.0.0.1:55442/postgres node scripts/run-ts.js bench/ingestCost.ts [patients] [on|off]
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
import { runPostStream } from './lib/load';
import { clusterTicks, statTicks, TICK_US } from './lib/processCpu';
import { startServer } from './lib/server';

async function main(): Promise<void> {
  const patients = Number(process.argv[2] ?? 60);
  const aggregation = (process.argv[3] ?? 'on') !== 'off';
  const adminUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const dataDir = (await admin.query(`SHOW data_directory`)).rows[0].data_directory as string;
  const postmaster = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
  const statements = (await admin.query(`SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'`)).rowCount === 1;
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
      4,
    );
    await drain(server.admin.bind(server), aggregation);
    // The validators compile in the background after the first answer (server.ts, warmValidation): seconds of CPU
    // that belong to start, not to the load. Wait for the server to go quiet before counting.
    await quiet(server.pid);
    if (statements) await admin.query(`SELECT pg_stat_statements_reset()`);
    const list = [...bundles(0, patients)];
    const resources = list.reduce((n, b) => n + entryCount(b), 0);
    server.resetPeak();
    const server0 = statTicks(server.pid, true);
    const pg0 = clusterTicks(postmaster);
    const started = Date.now();
    const load = await runPostStream(
      list.map((body) => ({ method: 'POST', url: t.base, headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/fhir+json' }, body })),
      4,
    );
    const ingested = Date.now();
    await drain(server.admin.bind(server), aggregation);
    const drained = Date.now();
    const serverUs = (statTicks(server.pid, true) - server0) * TICK_US;
    const pgUs = (clusterTicks(postmaster) - pg0) * TICK_US;
    const load1 = os.loadavg()[0].toFixed(1);
    console.log(
      `${patients} patients, ${resources} resources, aggregation ${aggregation ? 'on' : 'off'}; failed Bundles ${load.errors + load.statusErrors}; ` +
        `ingest ${((ingested - started) / 1000).toFixed(1)} s (${Math.round(resources / ((ingested - started) / 1000))} res/s), drained after ${((drained - started) / 1000).toFixed(1)} s; load average ${load1}`,
    );
    console.log(
      `CPU per resource: server ${Math.round(serverUs / resources)} µs, PostgreSQL ${Math.round(pgUs / resources)} µs, together ${Math.round((serverUs + pgUs) / resources)} µs`,
    );
    console.log(`server RSS: peak ${server.peakRssMb()} MB during the load, ${server.rssMb()} MB after it`);
    if (statements) {
      const dbName = new URL(db.url).pathname.slice(1);
      // Buffer hits do not depend on the machine's load, where times do: `INGEST_COST_ORDER=hits` ranks by them.
      const order = process.env.INGEST_COST_ORDER === 'hits' ? 'shared_blks_hit + shared_blks_read' : 'total_exec_time';
      const all = await admin.query(
        `SELECT calls, round(total_exec_time::numeric, 0) AS ms, rows, shared_blks_hit + shared_blks_read AS hits, round((wal_bytes / 1e6)::numeric, 1) AS wal_mb,
                regexp_replace(query, '\\s+', ' ', 'g') AS query
           FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1) ORDER BY ${order} DESC`,
        [dbName],
      );
      const total = await admin.query(
        `SELECT round(sum(total_exec_time)::numeric, 0) AS ms, round(sum(total_plan_time)::numeric, 0) AS plan_ms, sum(calls) AS calls,
                sum(shared_blks_hit + shared_blks_read) AS hits, round((sum(wal_bytes) / 1e6)::numeric, 1) AS wal_mb
           FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)`,
        [dbName],
      );
      const perResource = (n: unknown) => (Number(n) / resources).toFixed(2);
      console.log(
        `statements: ${total.rows[0].calls} calls, ${total.rows[0].ms} ms executing, ${total.rows[0].plan_ms} ms planning, ` +
          `${perResource(total.rows[0].hits)} buffer hits/resource, ${total.rows[0].wal_mb} MB WAL (${Math.round((Number(total.rows[0].wal_mb) * 1e6) / resources)} B/resource)`,
      );
      for (const r of all.rows.slice(0, Number(process.env.INGEST_COST_TOP ?? 25)))
        console.log(
          `${String(r.ms).padStart(7)} ms ${String(r.calls).padStart(7)} calls ${String(r.rows).padStart(8)} rows ${perResource(r.hits).padStart(7)} hits/res ${String(r.wal_mb).padStart(6)} MB  ${String(r.query).slice(0, 150)}`,
        );
      // INGEST_COST_JSON=file: every statement with its full text, for comparing two runs statement by statement.
      if (process.env.INGEST_COST_JSON) writeFileSync(process.env.INGEST_COST_JSON, JSON.stringify({ resources, total: total.rows[0], statements: all.rows }, null, 1));
    }
  } finally {
    await server.stop({ removeData: true });
    // INGEST_COST_KEEP=1: the database stays, for EXPLAIN of what the run's statements met.
    if (process.env.INGEST_COST_KEEP === '1') console.log(`database kept: ${db.url}`);
    else await db.drop();
    await admin.end();
  }
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
