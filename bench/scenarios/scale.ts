import { type ChildProcess, spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freshDatabase } from '../lib/database';
import { bundles, entryCount } from '../lib/dataset';
import { runPostStream } from '../lib/load';
import { npmNodeCommand } from '../lib/npmScript';
import { type PrivatePostgres, replicaAvailable, startPrivatePostgres } from '../lib/privatePostgres';
import { freePort, ROOT, type RunningServer, startServer, type Tenant } from '../lib/server';
import { round, summarize } from '../lib/stats';
import { type BenchContext, notAvailable, report } from './context';

/**
 * scale (issue 19 item 6): API servers are stateless and workers share the outbox, shown on a PostgreSQL
 * primary and a streaming replica of its own (initdb, `pg_basebackup -R`, free ports; never the shared
 * instance). The same patients are ingested, each time into a fresh database, by
 * - one process (the server with its in-process worker): the reference aggregate;
 * - 1 server + 1 `npm run worker` process, 2 servers + 1 worker, 2 servers + 2 workers, the servers behind a
 *   round-robin load client, the last with DATABASE_REPLICA_URL set;
 * and reports, per layout, the ingest rate (resources/s accepted), the pipeline rate (resources/s from the
 * first Bundle to an empty aggregation queue), whether the aggregate equals the reference (same aggregated
 * resources per type, same merge keys, same group sizes, no merge key in two groups), the replica's replay
 * lag during the ingest, and read-your-writes across servers: a write on one server, then an aggregated read
 * by the same client on the other, which waits for the replica to replay the write.
 */
interface Layout {
  id: string;
  label: string;
  servers: number;
  /** `npm run worker` processes; 0: the server's in-process worker. */
  workers: number;
  replica: boolean;
}

const LAYOUTS: Layout[] = [
  { id: 'single', label: '1 process (server + in-process worker)', servers: 1, workers: 0, replica: false },
  { id: '1s1w', label: '1 server + 1 worker process', servers: 1, workers: 1, replica: false },
  { id: '2s1w', label: '2 servers + 1 worker process', servers: 2, workers: 1, replica: false },
  { id: '2s2w', label: '2 servers + 2 worker processes + replica', servers: 2, workers: 2, replica: true },
];

/** What the aggregate holds, in terms that do not depend on generated ids (so two runs compare). */
interface Fingerprint {
  /** Current aggregated resources per type. */
  resources: Record<string, number>;
  /** Upstream members per type and status (included, excluded). */
  members: Record<string, number>;
  /** Distinct merge keys per type. */
  keys: Record<string, number>;
  /** Live groups per type by size: `Patient:2` → how many Patient groups have 2 members. */
  groupSizes: Record<string, number>;
  /** Merge keys that point at more than one group (duplicates; must be 0). */
  duplicateKeys: number;
}

export async function scaleScenario(ctx: BenchContext): Promise<void> {
  if (ctx.store !== 'postgres') return notAvailable(ctx, 'scale', 'scale', 'several processes', 'runs on PostgreSQL only (the embedded store is one process)');
  if (!replicaAvailable()) return notAvailable(ctx, 'scale', 'scale', 'several processes', 'initdb, pg_ctl and pg_basebackup are needed for the private primary and replica');
  const patients = Math.min(ctx.settings.patients, ctx.settings.quick ? 6 : 60);
  ctx.log('scale: starting a private primary and its streaming replica');
  const primary = await startPrivatePostgres();
  let replica: PrivatePostgres | undefined;
  try {
    replica = await startPrivatePostgres({ replicaOf: primary });
    const layouts = ctx.settings.quick ? LAYOUTS.filter((l) => l.id !== '2s1w') : LAYOUTS;
    let reference: Fingerprint | undefined;
    for (const layout of layouts) {
      ctx.log(`scale: ${layout.label}, ${patients} patients`);
      const run = await runLayout(ctx, layout, patients, primary, replica);
      const load = `load average ${loadavg()[0].toFixed(1)}`;
      report(ctx, {
        id: `scale.${layout.id}.ingest`,
        scenario: 'scale',
        metric: `ingest, ${layout.label} (${run.resources} resources, round-robin over the servers)`,
        value: round(run.ingestRate),
        unit: 'res/s',
        note: `${run.failed ? `${run.failed} Bundles refused; ` : ''}${load}`,
      });
      report(ctx, {
        id: `scale.${layout.id}.pipeline`,
        scenario: 'scale',
        metric: `ingest + aggregation, ${layout.label} (first Bundle to an empty queue)`,
        value: run.pipelineRate === null ? null : round(run.pipelineRate),
        unit: 'res/s',
        ...(run.pipelineRate === null ? { note: 'the queue did not drain in time' } : {}),
      });
      if (!reference) reference = run.fingerprint;
      const differences = compare(reference, run.fingerprint);
      report(ctx, {
        id: `scale.${layout.id}.equal`,
        scenario: 'scale',
        metric: `aggregate equals the single process's (resources per type, members, merge keys, group sizes); duplicate merge keys: ${run.fingerprint.duplicateKeys}`,
        value: differences.length === 0 && run.fingerprint.duplicateKeys === 0 ? 1 : 0,
        unit: 'yes=1',
        target: '1',
        note: differences.length ? `differs: ${differences.slice(0, 6).join('; ')}` : `${Object.values(run.fingerprint.resources).reduce((a, b) => a + b, 0)} aggregated resources`,
      });
      if (run.lag) {
        report(ctx, {
          id: 'scale.replica.lag',
          scenario: 'scale',
          metric: `replica replay lag during the ingest (pg_stat_replication.replay_lag, ${run.lag.count} samples; p50 ${round(run.lag.p50)} ms, max ${round(run.lag.max)} ms)`,
          value: round(run.lag.p95),
          unit: 'ms p95',
          note: `WAL bytes behind: max ${run.lagBytesMax}`,
        });
      }
      if (run.readYourWrites) {
        const ryw = run.readYourWrites;
        report(ctx, {
          id: 'scale.replica.readYourWrites',
          scenario: 'scale',
          metric: `a write on server 1, then the same client's aggregated search on server 2 (${ryw.probes} probes): the search's time, any wait for the replica to replay the write included; server 2 served ${ryw.servedBy}`,
          value: ryw.p95,
          unit: 'ms p95',
          target: `≤ REPLICA_MAX_WAIT_MS (${ryw.maxWaitMs} ms)`,
          note: `p50 ${ryw.p50} ms; the same search with no write pending: p50 ${ryw.plainP50} ms`,
        });
      }
    }
  } finally {
    replica?.destroy();
    primary.destroy();
  }
}

interface LayoutRun {
  resources: number;
  failed: number;
  ingestRate: number;
  pipelineRate: number | null;
  fingerprint: Fingerprint;
  lag?: ReturnType<typeof summarize>;
  lagBytesMax?: number;
  readYourWrites?: { probes: number; p50: number | null; p95: number | null; plainP50: number | null; servedBy: string; maxWaitMs: number };
}

const REPLICA_MAX_WAIT_MS = 2000;

async function runLayout(ctx: BenchContext, layout: Layout, patients: number, primary: PrivatePostgres, replica: PrivatePostgres): Promise<LayoutRun> {
  const db = await freshDatabase(primary.url);
  const servers: RunningServer[] = [];
  const workers: ChildProcess[] = [];
  try {
    const name = new URL(db.url).pathname.slice(1);
    const env: Record<string, string> = { DATABASE_URL: db.url, AGGREGATION_WORKER: layout.workers ? 'off' : 'on' };
    if (layout.replica) {
      await replicated(replica.url, name);
      const url = new URL(replica.url);
      url.pathname = `/${name}`;
      Object.assign(env, { DATABASE_REPLICA_URL: url.toString(), REPLICA_MAX_WAIT_MS: String(REPLICA_MAX_WAIT_MS) });
    }
    // As behind a balancer, every server has the one public URL (tokens name it as their issuer): the first's.
    const port = await freePort();
    env.PUBLIC_URL = `http://127.0.0.1:${port}`;
    // One after the other: the first applies the migrations.
    for (let i = 0; i < layout.servers; i++) servers.push(await startServer({ env, ...(i === 0 ? { port } : {}) }));
    for (let i = 0; i < layout.workers; i++) workers.push(startWorker(db.url));
    const tenant = await servers[0].tenant('scale');
    const bases = servers.map((s) => `${s.url}/fhir/customer/${tenant.endpointId}`);

    const sampler = layout.replica ? lagSampler(primary.url) : undefined;
    const entries: number[] = [];
    let t = tenant;
    async function* requests() {
      let i = 0;
      for (const body of bundles(0, patients)) {
        if (Date.now() - t.mintedAt > 120_000) t = await servers[0].remint(t);
        entries[i] = entryCount(body);
        // Round-robin: Bundle i goes to server i mod n.
        yield { method: 'POST', url: bases[i++ % bases.length], headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/fhir+json' }, body };
      }
    }
    const started = Date.now();
    const result = await runPostStream(requests(), ctx.settings.ingestConcurrency);
    const failed = new Set(result.failedIndices ?? []);
    const resources = entries.reduce((n, count, i) => n + (failed.has(i) ? 0 : count), 0);
    const drained = await drain(servers[0], ctx.settings.drainTimeoutMs);
    const pipelineSeconds = (Date.now() - started) / 1000;
    const lagSamples = await sampler?.stop();
    const fingerprint = await fingerprintOf(db.url);
    const run: LayoutRun = {
      resources,
      failed: failed.size,
      ingestRate: resources / result.seconds,
      pipelineRate: drained ? resources / pipelineSeconds : null,
      fingerprint,
    };
    if (lagSamples) {
      run.lag = summarize(lagSamples.ms.sort((a, b) => a - b));
      run.lagBytesMax = Math.max(0, ...lagSamples.bytes);
    }
    if (layout.replica && servers.length > 1) run.readYourWrites = await readYourWrites(servers, await servers[0].remint(tenant));
    return run;
  } finally {
    for (const w of workers) await stopProcess(w);
    for (const s of servers) await s.stop();
    await db.drop();
  }
}

/** `npm run worker`'s process (dist/src/aggregator/workerMain.js, built by the bench). */
function startWorker(databaseUrl: string): ChildProcess {
  const worker = npmNodeCommand(ROOT, 'worker', 'dist/src/aggregator/workerMain.js');
  const child = spawn(process.execPath, [...worker.nodeArgs, path.join(ROOT, 'dist/src/aggregator/workerMain.js')], {
    cwd: ROOT,
    env: { ...process.env, ...worker.env, NODE_ENV: 'production', NODE_OPTIONS: '', DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

/** Waits until the replica has replayed the creation of database `name`. */
async function replicated(replicaUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: replicaUrl });
  await client.connect();
  try {
    for (let i = 0; !(await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount; i++) {
      if (i > 600) throw new Error(`the replica never showed database ${name}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await client.end();
  }
}

/** Until the aggregation queue is empty (true), or `timeoutMs` passed (false). */
async function drain(server: RunningServer, timeoutMs: number): Promise<boolean> {
  const started = Date.now();
  for (;;) {
    const lag = await server.admin<{ queueDepth: number }>('GET', '/admin/aggregation');
    if (lag.queueDepth === 0) return true;
    if (Date.now() - started > timeoutMs) return false;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Samples the primary's view of its replica every 250 ms until stopped. */
function lagSampler(primaryUrl: string): { stop(): Promise<{ ms: number[]; bytes: number[] }> } {
  const ms: number[] = [];
  const bytes: number[] = [];
  let stopped = false;
  const client = new pg.Client({ connectionString: primaryUrl });
  const loop = (async () => {
    await client.connect();
    while (!stopped) {
      const { rows } = await client.query(
        `SELECT (extract(epoch FROM replay_lag) * 1000)::float8 AS ms, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 AS bytes FROM pg_stat_replication`,
      );
      for (const r of rows as { ms: number | null; bytes: number | null }[]) {
        // No replay_lag while the replica is idle and caught up: 0 then.
        ms.push(r.ms ?? 0);
        bytes.push(r.bytes ?? 0);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    await client.end();
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { ms, bytes };
    },
  };
}

/**
 * Read-your-writes across servers: the client writes a Patient on server 1 and at once searches the
 * aggregated record on server 2 (which learnt the write's WAL position by NOTIFY): that read's time, beside
 * the same read with nothing pending; and where the reads were served (server 2's /metrics).
 */
async function readYourWrites(servers: RunningServer[], tenant: Tenant): Promise<NonNullable<LayoutRun['readYourWrites']>> {
  const [one, two] = servers;
  const headers = { authorization: `Bearer ${tenant.token}`, 'content-type': 'application/fhir+json' };
  const read = async () => {
    const t0 = performance.now();
    const res = await fetch(`${two.url}/fhir/aggregated/Patient?_count=1`, { headers });
    await res.text();
    if (!res.ok) throw new Error(`aggregated search on server 2 → ${res.status}`);
    return performance.now() - t0;
  };
  const after: number[] = [];
  const plain: number[] = [];
  for (let i = 0; i < 20; i++) {
    plain.push(await read());
    const res = await fetch(`${one.url}/fhir/customer/${tenant.endpointId}/Patient`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ resourceType: 'Patient', name: [{ family: `Probe${i}` }] }),
    });
    if (res.status !== 201) throw new Error(`POST Patient on server 1 → ${res.status}`);
    after.push(await read());
  }
  const metrics = await (await fetch(`${two.url}/metrics`, { headers: { authorization: `Bearer ${two.adminToken}` } })).text();
  const served = [...metrics.matchAll(/^tributary_aggregated_reads_total\{served_by="(\w+)",reason="([\w-]+)"\} (\d+)/gm)].map((m) => `${m[3]} reads from the ${m[1]} (${m[2]})`);
  const a = summarize(after.sort((x, y) => x - y));
  return {
    probes: after.length,
    p50: round(a.p50),
    p95: round(a.p95),
    plainP50: round(summarize(plain.sort((x, y) => x - y)).p50),
    servedBy: served.join(', ') || 'unknown',
    maxWaitMs: REPLICA_MAX_WAIT_MS,
  };
}

async function fingerprintOf(url: string): Promise<Fingerprint> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const tally = async (sql: string): Promise<Record<string, number>> => {
    const out: Record<string, number> = {};
    for (const r of (await client.query(sql)).rows as { k: string; n: string }[]) out[r.k] = Number(r.n);
    return out;
  };
  try {
    return {
      resources: await tally(`SELECT type AS k, count(*) AS n FROM resource WHERE store = 'aggregated' AND NOT deleted GROUP BY type`),
      members: await tally(`SELECT type || ' ' || status AS k, count(*) AS n FROM agg_member GROUP BY type, status`),
      keys: await tally(`SELECT type AS k, count(DISTINCT key) AS n FROM agg_key GROUP BY type`),
      groupSizes: await tally(
        `SELECT type || ':' || size AS k, count(*) AS n FROM (SELECT type, agg_id, count(*) AS size FROM agg_member WHERE status = 'included' AND agg_id IS NOT NULL GROUP BY type, agg_id) g GROUP BY type, size`,
      ),
      duplicateKeys: Number((await client.query(`SELECT count(*) AS n FROM (SELECT type, key FROM agg_key GROUP BY type, key HAVING count(DISTINCT agg_id) > 1) d`)).rows[0].n),
    };
  } finally {
    await client.end();
  }
}

/** What differs between two fingerprints, as `field key: a ≠ b`. */
function compare(a: Fingerprint, b: Fingerprint): string[] {
  const out: string[] = [];
  for (const field of ['resources', 'members', 'keys', 'groupSizes'] as const) {
    for (const key of new Set([...Object.keys(a[field]), ...Object.keys(b[field])])) {
      if ((a[field][key] ?? 0) !== (b[field][key] ?? 0)) out.push(`${field} ${key}: ${a[field][key] ?? 0} ≠ ${b[field][key] ?? 0}`);
    }
  }
  return out;
}
