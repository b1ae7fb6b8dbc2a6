import { spawn } from 'node:child_process';
import pg from 'pg';
import { bundles, resourceBodies } from './lib/dataset';
import { runLoad } from './lib/load';
import { freePort, type RunningServer } from './lib/server';

/**
 * The benchmark scenarios. Each measures the server and, in the same run, its floor — the same work done
 * as plainly as the database and driver allow — and reports the ratio, so a noisy machine cannot fake a
 * result. Figures are rows of { scenario, metric, value, unit, floor?, target? }.
 */
export interface Figure {
  scenario: string;
  metric: string;
  value: number | null;
  unit: string;
  floor?: number | null;
  ratio?: number | null;
  target?: string;
  note?: string;
}

export interface BenchContext {
  server: RunningServer;
  databaseUrl: string;
  quick: boolean;
  /** Patients to load for ingest and the smallest search size. */
  patients: number;
  /** Further dataset sizes (patients) for the search growth figures. */
  searchSizes: number[];
  figures: Figure[];
  tenant?: { endpointId: string; base: string; token: string; mintedAt?: number };
  /** Overrides every timed load's duration (the test suite's tiny run). */
  durationMs?: number;
  loadedPatients: number;
}

const auth = (ctx: BenchContext) => ({ authorization: `Bearer ${ctx.tenant!.token}` });

async function ensureTenant(ctx: BenchContext) {
  ctx.tenant ??= { ...(await ctx.server.tenant()), mintedAt: Date.now() };
  // Access tokens live five minutes and a full ingest (with its aggregation drain) takes longer: re-mint.
  if (Date.now() - (ctx.tenant.mintedAt ?? 0) > 120_000) {
    const issued = await ctx.server.admin<{ access_token: string }>('POST', `/admin/endpoints/${ctx.tenant.endpointId}/token`);
    ctx.tenant = { ...ctx.tenant, token: issued.access_token, mintedAt: Date.now() };
  }
  return ctx.tenant;
}

/** Loads patients `from`..`to` (scaled Synthea bundles) as transactions, 4 in flight; returns resources/s. */
async function load(ctx: BenchContext, from: number, to: number, onTick?: () => Promise<void>) {
  let sampling = true;
  const sampler = (async () => {
    while (sampling && onTick) {
      await onTick();
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  let resources = 0;
  let seconds = 0;
  let errors = 0;
  // In chunks: a load spec holds its bodies, and hundreds of bundles exceed a JavaScript string.
  const CHUNK = 100;
  for (let start = from; start < to; start += CHUNK) {
    const tenant = await ensureTenant(ctx);
    const chunk = [...bundles(Math.min(to, start + CHUNK))].slice(start);
    resources += chunk.reduce((n, b) => n + (JSON.parse(b) as { entry: unknown[] }).entry.length, 0);
    const result = await runLoad({
      requests: chunk.map((body) => ({ method: 'POST', url: tenant.base, headers: { ...auth(ctx), 'content-type': 'application/fhir+json' }, body })),
      concurrency: 4,
      total: chunk.length,
    });
    seconds += result.seconds;
    errors += result.errors + result.statusErrors;
  }
  sampling = false;
  await sampler;
  ctx.loadedPatients = to;
  // As `admin import` does after a bulk load: fresh planner statistics.
  await ctx.server.admin('POST', '/admin/analyze');
  return { resources, seconds, rate: resources / seconds, errors };
}

/** The floor: the same bodies as rows of one jsonb table, batched INSERTs, 4 connections, same driver. */
async function ingestFloor(ctx: BenchContext, patients: number): Promise<number> {
  const bodies = resourceBodies(patients);
  const pool = new pg.Pool({ connectionString: ctx.databaseUrl, max: 4 });
  try {
    await pool.query('DROP TABLE IF EXISTS bench_floor; CREATE TABLE bench_floor (id BIGSERIAL PRIMARY KEY, content JSONB NOT NULL)');
    const batch = 250;
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < bodies.length) {
          const slice = bodies.slice(next, next + batch);
          next += batch;
          await pool.query('INSERT INTO bench_floor (content) SELECT unnest($1::text[])::jsonb', [slice]);
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    await pool.query('DROP TABLE bench_floor');
    return bodies.length / seconds;
  } finally {
    await pool.end();
  }
}

export async function ingestScenario(ctx: BenchContext): Promise<void> {
  const depths: number[] = [];
  const ages: number[] = [];
  const tick = async () => {
    try {
      const health = (await (await fetch(`${ctx.server.url}/healthz`)).json()) as { aggregation?: { queueDepth: number; oldestAgeMs: number } };
      if (health.aggregation) {
        depths.push(health.aggregation.queueDepth);
        ages.push(health.aggregation.oldestAgeMs);
      }
    } catch {
      // a missed sample
    }
  };
  const run = await load(ctx, 0, ctx.patients, tick);
  const floor = await ingestFloor(ctx, ctx.patients);
  ctx.figures.push({
    scenario: 'ingest',
    metric: `resources/s (${run.resources} resources, ${ctx.patients} patients)`,
    value: round(run.rate),
    unit: 'res/s',
    floor: round(floor),
    ratio: ratio(run.rate, floor),
    target: '≥ 2,500 and ≥ 50% of floor',
    ...(run.errors ? { note: `${run.errors} failed requests` } : {}),
  });
  // Aggregation: keep sampling until the view has caught up.
  const drainStart = Date.now();
  for (;;) {
    await tick();
    if ((depths[depths.length - 1] ?? 0) === 0 || Date.now() - drainStart > (ctx.quick ? 60_000 : 600_000)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const sorted = [...ages].sort((a, b) => a - b);
  ctx.figures.push(
    { scenario: 'aggregate', metric: 'max queue depth during and after ingest', value: Math.max(0, ...depths), unit: 'items', target: 'bounded' },
    { scenario: 'aggregate', metric: 'oldest unprocessed item age, p50 of samples', value: pct(sorted, 50), unit: 'ms' },
    { scenario: 'aggregate', metric: 'oldest unprocessed item age, p99 of samples (≈ p99 write→visible lag)', value: pct(sorted, 99), unit: 'ms', target: '< 1,000 ms' },
    { scenario: 'aggregate', metric: 'time to drain after ingest', value: Date.now() - drainStart, unit: 'ms' },
  );
  ctx.figures.push({ scenario: 'memory', metric: 'server peak RSS after ingest', value: ctx.server.peakRssMb(), unit: 'MB' });
}

async function firstId(ctx: BenchContext, query: string): Promise<string> {
  const res = await fetch(`${ctx.tenant!.base}/${query}`, { headers: auth(ctx) });
  const bundle = (await res.json()) as { entry?: { resource: { id: string } }[] };
  const id = bundle.entry?.[0]?.resource.id;
  if (!id) throw new Error(`no result for ${query}`);
  return id;
}

function startFloorServer(databaseUrl: string, port: number): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`${__dirname}/client/floorServer.mjs`, databaseUrl, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.once('data', () => resolve(() => child.kill()));
    child.once('exit', (code) => reject(new Error(`floor server exited ${code}`)));
  });
}

export async function readScenario(ctx: BenchContext): Promise<void> {
  const tenant = await ensureTenant(ctx);
  if (!ctx.loadedPatients) await load(ctx, 0, Math.min(ctx.patients, 10));
  const durationMs = ctx.durationMs ?? (ctx.quick ? 4_000 : 15_000);
  const floorPort = await freePort();
  const stopFloor = await startFloorServer(ctx.databaseUrl, floorPort);
  try {
    for (const [label, query] of [
      ['Patient', 'Patient?_count=1'],
      ['Observation', 'Observation?_count=1'],
    ] as const) {
      const type = label;
      const id = await firstId(ctx, query);
      const server = await runLoad({ requests: [{ url: `${tenant.base}/${type}/${id}`, headers: auth(ctx) }], concurrency: 32, durationMs });
      const floor = await runLoad({ requests: [{ url: `http://127.0.0.1:${floorPort}/${tenant.endpointId}/${type}/${id}` }], concurrency: 32, durationMs });
      ctx.figures.push(
        { scenario: 'read', metric: `GET ${type}/{id} throughput`, value: round(server.rps), unit: 'req/s', floor: round(floor.rps), ratio: ratio(server.rps, floor.rps), target: '≥ 5,000 and ≥ 50% of floor', ...errorsNote(server) },
        { scenario: 'read', metric: `GET ${type}/{id} latency p50/p95/p99`, value: round(server.p99, 1), unit: `ms p99 (p50 ${round(server.p50, 1)}, p95 ${round(server.p95, 1)})`, floor: round(floor.p99, 1), target: 'p99 < 20 ms' },
      );
    }
  } finally {
    stopFloor();
  }
  ctx.figures.push({ scenario: 'memory', metric: 'server peak RSS after read', value: ctx.server.peakRssMb(), unit: 'MB' });
}

async function searchAtSize(ctx: BenchContext, patients: number): Promise<Record<string, { p50: number; p95: number }>> {
  await ensureTenant(ctx);
  const patientId = await firstId(ctx, 'Patient?_count=1');
  const patient = (await (await fetch(`${ctx.tenant!.base}/Patient/${patientId}`, { headers: auth(ctx) })).json()) as { name?: { family?: string }[] };
  const family = (patient.name?.[0]?.family ?? 'a').slice(0, 3);
  const queries: Record<string, string> = {
    token: 'Observation?code=http://loinc.org|8302-2',
    string: `Patient?name=${encodeURIComponent(family)}`,
    'date range': 'Observation?date=ge2015-01-01&date=lt2016-01-01',
    reference: `Observation?subject=Patient/${patientId}`,
    chain: `Observation?subject:Patient.name=${encodeURIComponent(family)}`,
    _include: `Observation?subject=Patient/${patientId}&_include=Observation:subject`,
  };
  const out: Record<string, { p50: number; p95: number }> = {};
  for (const [name, q] of Object.entries(queries)) {
    const r = await runLoad({ requests: [{ url: `${ctx.tenant!.base}/${q}`, headers: auth(ctx) }], concurrency: 4, durationMs: ctx.durationMs ?? (ctx.quick ? 2_000 : 5_000) });
    out[name] = { p50: round(r.p50, 2), p95: round(r.p95, 2) };
    ctx.figures.push({ scenario: 'search', metric: `${name} @ ${patients} patients p50/p95`, value: round(r.p95, 2), unit: `ms p95 (p50 ${round(r.p50, 2)})`, target: 'p95 < 50 ms', ...errorsNote(r) });
  }
  return out;
}

export async function searchScenario(ctx: BenchContext): Promise<void> {
  await ensureTenant(ctx);
  if (!ctx.loadedPatients) await load(ctx, 0, ctx.patients);
  const sizes = [ctx.loadedPatients, ...ctx.searchSizes.filter((s) => s > ctx.loadedPatients)];
  const results: Record<number, Record<string, { p50: number; p95: number }>> = {};
  for (const size of sizes) {
    if (size > ctx.loadedPatients) await load(ctx, ctx.loadedPatients, size);
    results[size] = await searchAtSize(ctx, size);
  }
  if (sizes.length > 1) {
    const first = results[sizes[0]];
    const last = results[sizes[sizes.length - 1]];
    for (const name of Object.keys(first)) {
      ctx.figures.push({ scenario: 'search', metric: `${name} p95 growth ${sizes[0]} → ${sizes[sizes.length - 1]} patients`, value: round(last[name].p95 / first[name].p95, 2), unit: '×', target: '< 1.5×' });
    }
  }
  ctx.figures.push({ scenario: 'memory', metric: 'server peak RSS after search', value: ctx.server.peakRssMb(), unit: 'MB' });
}

/**
 * The patient-record query (a patient, its Observations with their encounters and its MedicationRequests
 * with their requesters) through /graphql, against the one REST request that returns the same resources
 * with _revinclude/_include:iterate. Both on the customer endpoint, so the figure does not wait on
 * aggregation. Statement counts per request are fixed by test/graphql/batching.test.ts.
 */
export async function graphqlScenario(ctx: BenchContext): Promise<void> {
  const tenant = await ensureTenant(ctx);
  if (!ctx.loadedPatients) await load(ctx, 0, Math.min(ctx.patients, 10));
  const probe = await fetch(`${ctx.server.url}/graphql`, { method: 'POST', headers: { ...auth(ctx), 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ __typename }' }) }).catch(() => undefined);
  if (!probe || probe.status === 404) {
    ctx.figures.push({ scenario: 'graphql', metric: 'patient-record query vs REST', value: null, unit: '', note: 'not available: the server has no /graphql' });
    return;
  }
  const patientId = await firstId(ctx, 'Observation?_count=1&_include=Observation:subject').then(async () => {
    const bundle = (await (await fetch(`${tenant.base}/Observation?_count=1&_include=Observation:subject`, { headers: auth(ctx) })).json()) as { entry: { resource: { resourceType: string; id: string } }[] };
    return bundle.entry.find((e) => e.resource.resourceType === 'Patient')!.resource.id;
  });
  const query = `query ($ep: ID, $id: ID!) { Patient(id: $id, _endpoint: $ep) { id name { family given } birthDate
    ObservationList(_reference: "subject", _count: 1000) { id status code { text coding { system code } } valueQuantity { value unit } effectiveDateTime encounter { resource { ... on Encounter { id status period { start end } } } } }
    MedicationRequestList(_reference: "subject", _count: 1000) { id status medicationCodeableConcept { text } authoredOn requester { resource { ... on Practitioner { id name { family } } } } } } }`;
  const graphqlBody = JSON.stringify({ query, variables: { ep: tenant.endpointId, id: patientId } });
  const rest = `${tenant.base}/Patient?_id=${patientId}&_revinclude=Observation:subject&_revinclude=MedicationRequest:subject&_include:iterate=Observation:encounter&_include:iterate=MedicationRequest:requester`;
  const durationMs = ctx.durationMs ?? (ctx.quick ? 3_000 : 10_000);
  const g = await runLoad({ requests: [{ method: 'POST', url: `${ctx.server.url}/graphql`, headers: { ...auth(ctx), 'content-type': 'application/json' }, body: graphqlBody }], concurrency: 4, durationMs });
  const r = await runLoad({ requests: [{ url: rest, headers: auth(ctx) }], concurrency: 4, durationMs });
  ctx.figures.push(
    { scenario: 'graphql', metric: 'patient-record query p50 (REST _include/_revinclude as floor)', value: round(g.p50, 2), unit: `ms (p95 ${round(g.p95, 2)})`, floor: round(r.p50, 2), ratio: round(g.p50 / r.p50, 2), target: '≤ 1.5× REST', ...errorsNote(g) },
    { scenario: 'graphql', metric: 'REST equivalent p50', value: round(r.p50, 2), unit: `ms (p95 ${round(r.p95, 2)})`, ...errorsNote(r) },
  );
  ctx.figures.push({ scenario: 'memory', metric: 'server peak RSS after graphql', value: ctx.server.peakRssMb(), unit: 'MB' });
}

export const SCENARIOS: Record<string, (ctx: BenchContext) => Promise<void>> = {
  ingest: ingestScenario,
  read: readScenario,
  search: searchScenario,
  graphql: graphqlScenario,
};

function round(n: number | null | undefined, digits = 0): number {
  if (n === null || n === undefined || Number.isNaN(n)) return NaN;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
function ratio(value: number, floor: number): number {
  return round(value / floor, 2);
}
function pct(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : 0;
}
function errorsNote(r: { errors: number; statusErrors: number }): { note?: string } {
  return r.errors + r.statusErrors ? { note: `${r.errors + r.statusErrors} failed requests` } : {};
}
