import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { DEFAULT_POSTGRES, freshDatabase } from './lib/database';
import { patientBundle } from './lib/dataset';
import { inFlightWrite } from './lib/inFlightWrite';
import { ROOT, startServer, type RunningServer, type Tenant } from './lib/server';
import { afterGcLows, memoryLows, trend, type Point } from './lib/trend';

/**
 * `npm run soak [-- --quick] [--minutes N]`: issue 16 item 11. The built server on a fresh PostgreSQL
 * database takes a mixed load for 30 minutes (10 with --quick): reads, searches, small transaction writes
 * (each with an Idempotency-Key), GraphQL, and searches of the aggregated view the writes feed. Every 10 s
 * it samples the server's RSS, its V8 heap and its pool use (from /metrics) and the p99 latency of the
 * last 10 s, and reports each series' slope after the first third of the run (warm-up, see WARMUP_FRACTION).
 *
 * Checked series: memory by its lows — the used heap and the RSS the server reads just after each major GC
 * (one point per collection; a saw-tooth of garbage between collections is not a leak, a rising low is), see
 * lib/trend.ts for the rule and its fallback — and pool use and p99 latency by every sample. Flat means the
 * least-squares slope extrapolated over an hour raises the series by less than a quarter of its mean (a
 * falling series is flat); for pool use, p99 and RSS after GC, which scatter from sample to sample, by more
 * than that plus two standard errors of the slope. The slopes of every sample of RSS and heap are printed beside them as clues.
 *
 * At the end it sends SIGTERM with writes in flight — each on its own new connection, SIGTERM only once every
 * one is fully sent and the server has begun it (its `tributary_http_requests_in_flight` gauge) — and every one
 * must be answered 200 and the process exit 0 within the bound. Fails (exit 1) on any 5xx, any request error, a rising series, or an unclean shutdown.
 */
interface Sample {
  t: number;
  rssMb: number | null;
  heapMb: number | null;
  /** V8 heap the main isolate has committed (used + free pages it keeps). */
  heapTotalMb: number | null;
  /** Used V8 heap and RSS just after the server's last major GC (its live data), and how many major GCs it has had. */
  heapAfterGcMb: number | null;
  rssAfterGcMb: number | null;
  majorGcs: number | null;
  /** Memory outside the V8 heap that V8 knows of (Buffers, ArrayBuffers). */
  externalMb: number | null;
  poolInUse: number | null;
  poolWaiting: number | null;
  p99Ms: number | null;
  /** p99 of each kind of request, to tell data growth (a search over more rows) from a leak (everything slower). */
  p99ByKind: Record<string, number | null>;
  requests: number;
  /** The host's one-minute load average (latency on a shared machine is an upper bound). */
  load1: number;
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const minutesArg = args.indexOf('--minutes');
const MINUTES = minutesArg >= 0 ? Number(args[minutesArg + 1]) : quick ? 10 : 30;
const SAMPLE_MS = 10_000;
/**
 * The share of the run left out of the slopes. The server's memory grows to its working size first (the 30-min
 * run of 2026-12-05: the committed V8 heap 139 → 265 MB over the first ~10 minutes, flat after), so a slope from
 * minute 1 measures warm-up, not a leak. A third: 10 min of 30, ~3.3 of 10 (--quick, which is shorter than that
 * warm-up, so its memory slopes are an upper bound).
 */
const WARMUP_FRACTION = 1 / 3;
const CONCURRENCY = 4;
/** Writes in flight at SIGTERM; how long they may take to be sent, and then to be begun by the server. */
const IN_FLIGHT = 8;
const SEND_BOUND_MS = 30_000;

const metric = (text: string, name: string, labels = ''): number | null => {
  const m = new RegExp(`^${name}${labels ? `\\{[^}]*${labels}[^}]*\\}` : '(?:\\{[^}]*\\})?'} ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
};

const percentile = (values: number[], p: number): number | null => {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};

function smallBundle(n: number) {
  const nhs = `97${String(n).padStart(8, '0')}`;
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: 'urn:uuid:p',
        request: { method: 'POST', url: 'Patient' },
        resource: { resourceType: 'Patient', identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: nhs }], name: [{ family: `Soak${n}` }], birthDate: '1980-01-01' },
      },
      ...[0, 1, 2].map((k) => ({
        request: { method: 'POST', url: 'Observation' },
        resource: {
          resourceType: 'Observation',
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
          subject: { reference: 'urn:uuid:p' },
          effectiveDateTime: `2026-0${1 + k}-01T00:00:00Z`,
          valueQuantity: { value: 60 + k, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
        },
      })),
    ],
  };
}

async function setting(url: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(`SELECT current_setting($1) AS v`, [name])).rows[0].v as string;
  } finally {
    await client.end();
  }
}

async function main(): Promise<void> {
  const database = await freshDatabase(process.env.DATABASE_URL ?? DEFAULT_POSTGRES);
  let server: RunningServer | undefined;
  let started = Date.now();
  try {
    server = await startServer({ env: { DATABASE_URL: database.url, SHUTDOWN_TIMEOUT_MS: '30000' } });
    let tenant: Tenant = await server.tenant('soak');
    const live = server;
    // Latency over time depends on how the database cleans up after itself: say which it was.
    const autovacuum = await setting(database.url, 'autovacuum');
    console.error(`soak: ${MINUTES} min on ${database.url.replace(/\/\/[^@]*@/, '//')} (PostgreSQL ${database.version}, autovacuum ${autovacuum})`);

    // A starting record: a few Synthea patients, whose ids the reads and searches use.
    const patients: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await fetch(tenant.base, {
        method: 'POST',
        headers: { authorization: `Bearer ${tenant.token}`, 'content-type': 'application/fhir+json' },
        body: patientBundle(i),
      });
      if (res.status !== 200) throw new Error(`preload → ${res.status} ${(await res.text()).slice(0, 300)}`);
      const body = (await res.json()) as { entry: { response: { location: string } }[] };
      patients.push(
        ...body.entry
          .map((e) => e.response.location)
          .filter((l) => l.startsWith('Patient/'))
          .map((l) => l.split('/')[1]),
      );
    }

    // The clock of the run starts with the load, after the preload.
    started = Date.now();
    const statuses: Record<string, number> = {};
    let errors = 0;
    let fiveXx = 0;
    let window: number[] = [];
    let windowByKind: Record<string, number[]> = {};
    let total = 0;
    let written = 0;
    const end = started + MINUTES * 60_000;
    const call = async (kind: string, url: string, init: RequestInit = {}): Promise<number> => {
      const t0 = performance.now();
      try {
        const res = await fetch(url, {
          ...init,
          headers: { authorization: `Bearer ${tenant.token}`, 'content-type': 'application/fhir+json', ...(init.headers as Record<string, string>) },
        });
        await res.arrayBuffer();
        const ms = performance.now() - t0;
        window.push(ms);
        (windowByKind[kind] ??= []).push(ms);
        total++;
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        if (res.status >= 500) fiveXx++;
        return res.status;
      } catch {
        errors++;
        return 0;
      }
    };
    const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)];
    const ops: [number, () => Promise<unknown>][] = [
      [30, () => call('read', `${tenant.base}/Patient/${pick(patients)}`)],
      [20, () => call('search', `${tenant.base}/Observation?subject=Patient/${pick(patients)}&_count=20&_sort=-date`)],
      [10, () => call('include', `${tenant.base}/Condition?patient=Patient/${pick(patients)}&_include=Condition:encounter`)],
      [15, () => call('transaction', `${tenant.base}`, { method: 'POST', headers: { 'idempotency-key': randomUUID() }, body: JSON.stringify(smallBundle(written++)) })],
      [
        10,
        () =>
          call('graphql', `${live.url}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ query: `{ PatientList(_count: 10) { id name { family } } }` }),
          }),
      ],
      [15, () => call('aggregated', `${live.url}/fhir/aggregated/Observation?code=http://loinc.org|8867-4&_count=20`)],
    ];
    const weight = ops.reduce((n, [w]) => n + w, 0);
    const loop = async () => {
      while (Date.now() < end) {
        let r = Math.random() * weight;
        const op = ops.find(([w]) => (r -= w) < 0) ?? ops[0];
        await op[1]();
      }
    };

    const samples: Sample[] = [];
    const sample = async () => {
      let text = '';
      try {
        text = await (await fetch(`${live.url}/metrics`, { headers: { authorization: `Bearer ${live.adminToken}` } })).text();
      } catch {
        // counted as a missing sample value
      }
      const heap = metric(text, 'nodejs_heap_size_used_bytes');
      const heapTotal = metric(text, 'nodejs_heap_size_total_bytes');
      const external = metric(text, 'nodejs_external_memory_bytes');
      const poolTotal = metric(text, 'tributary_db_pool_connections', 'state="total"');
      const poolIdle = metric(text, 'tributary_db_pool_connections', 'state="idle"');
      const mb = (bytes: number | null) => (bytes === null ? null : Math.round(bytes / 1048576));
      samples.push({
        t: (Date.now() - started) / 1000,
        heapAfterGcMb: mb(metric(text, 'tributary_heap_used_after_major_gc_bytes')),
        rssAfterGcMb: mb(metric(text, 'tributary_rss_after_major_gc_bytes')),
        majorGcs: metric(text, 'nodejs_gc_duration_seconds_count', 'kind="major"'),
        rssMb: live.rssMb(),
        heapMb: heap === null ? null : Math.round(heap / 1048576),
        heapTotalMb: heapTotal === null ? null : Math.round(heapTotal / 1048576),
        externalMb: external === null ? null : Math.round(external / 1048576),
        poolInUse: poolTotal === null || poolIdle === null ? null : poolTotal - poolIdle,
        poolWaiting: metric(text, 'tributary_db_pool_connections', 'state="waiting"'),
        p99Ms: percentile(window, 99),
        p99ByKind: Object.fromEntries(Object.entries(windowByKind).map(([k, v]) => [k, percentile(v, 99)])),
        requests: window.length,
        load1: Number(loadavg()[0].toFixed(1)),
      });
      window = [];
      windowByKind = {};
      const s = samples[samples.length - 1];
      console.error(
        `t=${Math.round(s.t)}s rss=${s.rssMb}MB heap=${s.heapMb}/${s.heapTotalMb}MB afterGC=${s.heapAfterGcMb}/${s.rssAfterGcMb}MB gcs=${s.majorGcs} ext=${s.externalMb}MB pool=${s.poolInUse}/${s.poolWaiting} p99=${s.p99Ms?.toFixed(0)}ms n=${s.requests} load=${s.load1} 5xx=${fiveXx} errors=${errors}`,
      );
    };
    const sampler = setInterval(() => void sample(), SAMPLE_MS);
    // Tokens live minutes: re-mint well before they expire.
    const reminter = setInterval(() => void live.remint(tenant).then((t) => (tenant = t)), 120_000);
    await Promise.all(Array.from({ length: CONCURRENCY }, loop));
    clearInterval(sampler);
    clearInterval(reminter);
    await sample();

    // Graceful shutdown: SIGTERM with writes in flight; they finish, the process exits 0 in bounded time.
    // SIGTERM goes only when every write is sent and begun by the server (below): a write still queued on the
    // client side, or in the server's accept queue, when the listener closes was never the server's, and on a
    // loaded host no fixed delay can promise that. Every write must then be answered 200 — a write the server
    // had and cut (no answer) or turned away (503) fails the check. One not sent or begun within SEND_BOUND_MS
    // fails it too: the check must not pass by having nothing in flight.
    const body = patientBundle(5);
    const writes = Array.from({ length: IN_FLIGHT }, () => inFlightWrite(tenant.base, tenant.token, body));
    const sentBound = new Promise<false>((r) => setTimeout(() => r(false), SEND_BOUND_MS).unref());
    const sent = await Promise.all(writes.map((w) => Promise.race([w.sent, sentBound])));
    // Sent is not yet received: on a loaded host the server may take seconds to accept a connection and read
    // its headers, and what it has not begun when it stops listening it never had (reset in the accept queue,
    // or 503 for a request read after the drain began). So SIGTERM waits until the server's in-flight gauge
    // (the scrape itself is one) plus the writes already answered account for every write.
    let answered = 0;
    for (const w of writes) void w.outcome.then(() => answered++);
    let begun = false;
    for (const bound = Date.now() + SEND_BOUND_MS; !begun && Date.now() < bound;) {
      const text = await fetch(`${live.url}/metrics`, { headers: { authorization: `Bearer ${live.adminToken}` } }).then(
        (r) => r.text(),
        () => '',
      );
      const inFlight = metric(text, 'tributary_http_requests_in_flight');
      begun = inFlight !== null && inFlight - 1 + answered >= IN_FLIGHT;
      if (!begun) await new Promise((r) => setTimeout(r, 100));
    }
    const termAt = Date.now();
    await live.kill('SIGTERM');
    const shutdownMs = Date.now() - termAt;
    const outcomes = await Promise.all(writes.map((w) => w.outcome));
    const inFlightStatuses = outcomes.map((o) => o.status);
    const shutdownCheck = {
      sent: sent.filter((x) => x).length,
      /** The server had begun every write (or answered it) before SIGTERM. */
      begun,
      /** Answered only after SIGTERM: the writes the drain had to finish (the rest were done before it). */
      inFlightAtSigterm: outcomes.filter((o) => o.at >= termAt).length,
      errors: outcomes.filter((o) => o.error).map((o) => o.error as string),
    };

    const warmFrom = MINUTES * 60 * WARMUP_FRACTION;
    const warm = samples.filter((s) => s.t >= warmFrom);
    const points = (value: (s: Sample) => number | null | undefined, from = samples): Point[] =>
      from.map((s) => ({ t: s.t / 60, y: value(s) })).filter((p): p is Point => typeof p.y === 'number');
    const warmPoints = (ps: Point[]) => ps.filter((p) => p.t * 60 >= warmFrom);
    const series = (value: (s: Sample) => number | null | undefined, noisy = true) => trend(points(value, warm), { noisy });
    // Memory by its lows: the figures after each major GC (points taken on the whole run, then warm-up cut).
    const lows = (afterGc: (s: Sample) => number | null, raw: (s: Sample) => number | null) =>
      memoryLows(warmPoints(afterGcLows(samples.map((s) => ({ t: s.t / 60, afterGc: afterGc(s), majorGcs: s.majorGcs })))), points(raw, warm));
    const heapLows = lows(
      (s) => s.heapAfterGcMb,
      (s) => s.heapMb,
    );
    const rssLows = lows(
      (s) => s.rssAfterGcMb,
      (s) => s.rssMb,
    );
    const slopes = {
      // RSS read just after a GC scatters (V8's sweeper threads return pages concurrently): judged with the noise allowance.
      'rssMb after GC': { ...trend(rssLows.points, { noisy: true }), from: rssLows.from },
      'heapMb after GC': { ...trend(heapLows.points), from: heapLows.from },
      poolInUse: series((s) => s.poolInUse),
      p99Ms: series((s) => s.p99Ms),
    };
    // Not checks, clues: where the memory is (committed V8 heap, Buffers) and which requests slow down.
    const kinds = [...new Set(samples.flatMap((s) => Object.keys(s.p99ByKind)))];
    const details = {
      'rssMb every sample': series((s) => s.rssMb, false),
      'heapMb every sample': series((s) => s.heapMb, false),
      heapTotalMb: series((s) => s.heapTotalMb),
      externalMb: series((s) => s.externalMb),
      // Resident memory outside the main isolate's committed heap: malloc arenas, the aggregation thread's isolate, code.
      'rssMb − heapTotalMb': series((s) => (s.rssMb === null || s.heapTotalMb === null ? null : s.rssMb - s.heapTotalMb)),
      ...Object.fromEntries(kinds.map((k) => [`p99Ms ${k}`, series((s) => s.p99ByKind[k])])),
    };
    const result = {
      minutes: MINUTES,
      postgres: database.version,
      autovacuum,
      requests: total + errors,
      statuses,
      fiveXx,
      errors,
      bundlesWritten: written,
      slopes,
      details,
      warmupSeconds: Math.round(warmFrom),
      shutdown: { ms: shutdownMs, exitCode: live.exitCode, inFlight: inFlightStatuses, ...shutdownCheck },
      samples,
    };
    const stamp = new Date(started).toISOString().replace(/[:.]/g, '-');
    const dir = path.join(ROOT, 'bench/results');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${stamp}-postgres-soak${quick ? '-quick' : ''}.json`);
    writeFileSync(file, JSON.stringify(result, null, 2));
    const lines = [
      `# Soak ${MINUTES} min — ${new Date(started).toISOString()}`,
      '',
      `PostgreSQL ${database.version}, autovacuum ${autovacuum}; host load average (1 min) mean ${(samples.reduce((a, x) => a + x.load1, 0) / Math.max(1, samples.length)).toFixed(1)}; requests ${result.requests}, 5xx ${fiveXx}, request errors ${errors}, statuses ${JSON.stringify(statuses)}`,
      '',
      `slopes over minutes ${(warmFrom / 60).toFixed(1)}–${MINUTES} (the first third is warm-up)`,
      '',
      `memory is judged on its lows (lib/trend.ts): heap ${heapLows.from} (${heapLows.points.length} points), RSS ${rssLows.from} (${rssLows.points.length} points); major GCs in the run: ${samples[samples.length - 1]?.majorGcs ?? '?'}`,
      '',
      '| series | mean | slope per minute (± standard error) | points | flat |',
      '|---|---|---|---|---|',
      ...Object.entries(slopes).map(([k, v]) => `| ${k} | ${v.mean} | ${v.perMinute} ± ${v.standardError} | ${v.points} | ${v.flat ? 'yes' : 'NO'} |`),
      ...Object.entries(details).map(([k, v]) => `| (${k}) | ${v.mean} | ${v.perMinute} ± ${v.standardError} | ${v.points} | ${v.flat ? 'yes' : 'no'} |`),
      '',
      `graceful shutdown: exit ${live.exitCode} after ${shutdownMs} ms; ${shutdownCheck.sent} of ${IN_FLIGHT} writes connected and sent before SIGTERM, ${begun ? 'all' : 'NOT all'} begun by the server, ${shutdownCheck.inFlightAtSigterm} still unanswered at SIGTERM; answered ${inFlightStatuses.join(', ')}${shutdownCheck.errors.length ? `; errors: ${shutdownCheck.errors.join('; ')}` : ''}`,
    ];
    writeFileSync(file.replace(/\.json$/, '.md'), `${lines.join('\n')}\n`);
    console.log(lines.join('\n'));
    const cleanShutdown =
      live.exitCode === 0 && shutdownCheck.sent === IN_FLIGHT && begun && shutdownCheck.inFlightAtSigterm > 0 && inFlightStatuses.every((s) => s === 200) && shutdownMs < 30_000;
    const ok = fiveXx === 0 && errors === 0 && Object.values(slopes).every((s) => s.flat) && cleanShutdown;
    if (!ok) process.exitCode = 1;
  } finally {
    await server?.stop().catch(() => undefined);
    await database.drop().catch(() => undefined);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
