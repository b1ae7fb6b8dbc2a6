import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { bundles, entryCount } from '../lib/dataset';
import type { StoreKind } from '../lib/floors';
import { type LoadResult, runPostFile, runPostStream } from '../lib/load';
import type { RunningServer, Tenant } from '../lib/server';

/**
 * What every scenario shares: the running server, the dataset loaded so far, the figures reported, and
 * helpers that talk to the server only through its public HTTP API (FHIR REST, OAuth, admin).
 */
export interface Figure {
  /** Stable key for machines (tests, comparisons across runs), e.g. `read.Patient.rps`. */
  id: string;
  scenario: string;
  metric: string;
  value: number | null;
  unit: string;
  floor?: number | null;
  ratio?: number | null;
  target?: string;
  note?: string;
  /** The raw samples behind the figure, for the JSON only (e.g. each lag probe's [ms after ingest start, lag ms]). */
  samples?: [number, number][];
}

export interface BenchSettings {
  quick: boolean;
  /** Patients loaded by the measured ingest (and the first search size). */
  patients: number;
  /** Further dataset sizes in patients for the search growth figures. */
  sizes: number[];
  /** Overrides every timed load's duration (the test suite's tiny run). */
  durationMs?: number;
  /** Whether the server runs its in-process aggregation worker. */
  aggregation: boolean;
  /** Connections for the read scenario. */
  concurrency: number;
  /** Transaction Bundles in flight during ingest. */
  ingestConcurrency: number;
  /** The timed ingest's Bundles made before its load (prebuildBundles) rather than on the fly (loadPatients). */
  ingestPrebuilt?: boolean;
  /** Longest wait for the aggregation queue to drain after a load. */
  drainTimeoutMs: number;
}

export interface IngestRun {
  /** Patients `from`..`to` of the scaled dataset. */
  from: number;
  to: number;
  resources: number;
  seconds: number;
  rate: number;
  /** CPU of the server process (every thread: HTTP, validation, indexing, the aggregation worker) from the first Bundle until the aggregation caught up, µs. */
  serverCpuUs: number;
  /** CPU of the PostgreSQL cluster over the same span, µs (other work on the cluster counts too: an upper bound); null where unreadable. */
  clusterCpuUs?: number | null;
  /** Bundles refused, and the first reasons. */
  failed: number;
  failures: { index: number; status: number; body: string }[];
}

export interface BenchContext {
  store: StoreKind;
  server: RunningServer;
  /** The fresh PostgreSQL database of this run (PostgreSQL store only). */
  databaseUrl?: string;
  settings: BenchSettings;
  figures: Figure[];
  dataset: { patients: number; resources: number };
  /** Server RSS after start, before any load (MB): the memory floor. */
  idleRssMb: number | null;
  tenant?: Tenant;
  /** The measured ingest, once it has run (the aggregate scenario observes it). */
  ingest?: IngestRun;
  /** The ingest floor (resources/s) measured after it. */
  ingestFloor?: number;
  /** Observations of the aggregation while the measured ingest ran. */
  aggregation?: import('./aggregate').AggregationObservation;
  /** Why the aggregation could not be observed, when it could not. */
  aggregationUnavailable?: string;
  /** Feature probes, each asked once. */
  features: Map<string, Promise<Availability>>;
  log(message: string): void;
}

export type Availability = { available: true } | { available: false; reason: string };

export function report(ctx: BenchContext, figure: Figure): void {
  ctx.figures.push(figure);
}

/** A figure the server cannot produce yet: reported, never a failure, so the harness is usable early. */
export function notAvailable(ctx: BenchContext, id: string, scenario: string, metric: string, reason: string): void {
  report(ctx, { id, scenario, metric, value: null, unit: '', note: `not available yet: ${reason}` });
}

export function durationMs(ctx: BenchContext, quick: number, full: number): number {
  return ctx.settings.durationMs ?? (ctx.settings.quick ? quick : full);
}

/** The tenant whose endpoint holds the dataset; its token is re-minted before it can expire. */
export async function tenant(ctx: BenchContext): Promise<Tenant> {
  ctx.tenant ??= await ctx.server.tenant('bench data');
  if (Date.now() - ctx.tenant.mintedAt > 120_000) ctx.tenant = await ctx.server.remint(ctx.tenant);
  return ctx.tenant;
}

export function bearer(t: Tenant): Record<string, string> {
  return { authorization: `Bearer ${t.token}` };
}

export async function getJson(url: string, headers: Record<string, string>): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { headers: { accept: 'application/fhir+json', ...headers } });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  return { status: res.status, json };
}

/** The first diagnostics of an OperationOutcome, or the status alone. */
export function why(status: number, json: any): string {
  const diagnostics = json?.issue?.[0]?.diagnostics;
  return `HTTP ${status}${diagnostics ? ` (${String(diagnostics).slice(0, 120)})` : ''}`;
}

export function feature(ctx: BenchContext, name: string, probe: () => Promise<Availability>): Promise<Availability> {
  let known = ctx.features.get(name);
  if (!known) {
    known = probe().catch((err: Error) => ({ available: false as const, reason: err.message }));
    ctx.features.set(name, known);
  }
  return known;
}

/** Transaction Bundles: one small transaction must come back as a transaction-response. */
export function transactions(ctx: BenchContext): Promise<Availability> {
  return feature(ctx, 'transaction', async () => {
    const t = await tenant(ctx);
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:6b0e1c5e-0000-4000-8000-000000000001', resource: { resourceType: 'Basic', code: { text: 'bench probe' } }, request: { method: 'POST', url: 'Basic' } },
      ],
    };
    const res = await fetch(t.base, { method: 'POST', headers: { ...bearer(t), 'content-type': 'application/fhir+json' }, body: JSON.stringify(bundle) });
    const json = (await res.json().catch(() => undefined)) as { resourceType?: string; type?: string } | undefined;
    if (res.ok && json?.type === 'transaction-response') return { available: true };
    return { available: false, reason: `POST transaction Bundle → ${why(res.status, json)}` };
  });
}

/** Search: a plain search must come back as a searchset Bundle. */
export function search(ctx: BenchContext): Promise<Availability> {
  return feature(ctx, 'search', async () => {
    const t = await tenant(ctx);
    const { status, json } = await getJson(`${t.base}/Patient?_count=1`, bearer(t));
    if (status === 200 && json?.type === 'searchset') return { available: true };
    return { available: false, reason: `GET Patient?_count=1 → ${why(status, json)}` };
  });
}

export interface LoadOutcome {
  resources: number;
  seconds: number;
  /** Bundles refused, and the first reasons. */
  failed: number;
  failures: IngestRun['failures'];
}

/**
 * Posts patients `from`..`to` (scaled Synthea transaction Bundles), `ingestConcurrency` in flight, from a
 * separate process, made on the fly as the load client sends them (a load that never holds them all); only
 * resources of accepted Bundles count. The ingest scenario's timed load uses `prebuildBundles` and
 * `postPrebuilt` instead.
 */
export async function loadPatients(ctx: BenchContext, from: number, to: number): Promise<LoadOutcome> {
  // One poster for the whole load, fed bundle by bundle as it sends them (made up on the fly, as a loader
  // reading files would): no pause and no parsing burst every few thousand resources to disturb the server.
  const entries: number[] = [];
  const ctxTenant = () => tenant(ctx);
  async function* requests() {
    let i = 0;
    for (const body of bundles(from, to)) {
      const t = await ctxTenant();
      entries[i++] = entryCount(body);
      yield { method: 'POST', url: t.base, headers: { ...bearer(t), 'content-type': 'application/fhir+json' }, body };
    }
  }
  return loaded(ctx, await runPostStream(requests(), ctx.settings.ingestConcurrency), entries, from, to);
}

/** A load's outcome (only resources of accepted Bundles count), added to the dataset's size. */
function loaded(ctx: BenchContext, result: LoadResult, entries: number[], from: number, to: number): LoadOutcome {
  const failed = new Set(result.failedIndices ?? []);
  const out: LoadOutcome = {
    resources: entries.reduce((n, count, i) => n + (failed.has(i) ? 0 : count), 0),
    seconds: result.seconds,
    failed: failed.size,
    failures: (result.failures ?? []).map((f) => ({ ...f, index: f.index + from })),
  };
  ctx.dataset.patients = Math.max(ctx.dataset.patients, to);
  ctx.dataset.resources += out.resources;
  return out;
}

/** Patients' transaction Bundles written to a file before a load, one a line, with their entry counts. */
export interface PrebuiltBundles {
  from: number;
  to: number;
  file: string;
  entries: number[];
  /** Removes the file. */
  dispose(): void;
}

/**
 * Makes patients `from`..`to`'s Bundles into a file before the timed load, so the load costs the machine only
 * the posting, as the floors it is set beside build their rows untimed (made on the fly, making, counting and
 * re-encoding them took 45–60 µs of CPU per resource beside the server's, measured by bench/ingestCost.ts).
 */
export async function prebuildBundles(from: number, to: number): Promise<PrebuiltBundles> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-bundles-'));
  const file = path.join(dir, 'bundles.ndjson');
  const dispose = () => rmSync(dir, { recursive: true, force: true });
  try {
    const entries: number[] = [];
    const sink = createWriteStream(file);
    for (const body of bundles(from, to)) {
      entries.push(entryCount(body));
      // JSON text holds line breaks only as whitespace (never inside a string), so one Bundle per line is safe.
      if (!sink.write(`${body.includes('\n') ? body.replace(/\n/g, ' ') : body}\n`)) await once(sink, 'drain');
    }
    sink.end();
    await once(sink, 'close');
    return { from, to, file, entries, dispose };
  } catch (err) {
    dispose();
    throw err;
  }
}

/** Posts prebuilt Bundles once each, `ingestConcurrency` in flight; the load client mints its own tokens. */
export async function postPrebuilt(ctx: BenchContext, prebuilt: PrebuiltBundles): Promise<LoadOutcome> {
  const t = await tenant(ctx);
  const result = await runPostFile({
    file: prebuilt.file,
    url: t.base,
    concurrency: ctx.settings.ingestConcurrency,
    token: { url: `${ctx.server.url}/oauth2/token`, clientId: t.clientId, clientSecret: t.clientSecret },
  });
  return loaded(ctx, result, prebuilt.entries, prebuilt.from, prebuilt.to);
}

/** Fresh planner statistics after a bulk load, as `admin import` does. */
export async function analyze(ctx: BenchContext): Promise<void> {
  try {
    await ctx.server.admin('POST', '/admin/analyze');
  } catch {
    // A server without the analyze operation: autovacuum catches up eventually.
  }
}

/** Makes sure at least `patients` patients are loaded (unmeasured), for scenarios run on their own. */
export async function ensureDataset(ctx: BenchContext, patients: number): Promise<Availability> {
  const tx = await transactions(ctx);
  if (!tx.available) return tx;
  if (ctx.dataset.patients < patients) {
    ctx.log(`loading patients ${ctx.dataset.patients}…${patients}`);
    await loadPatients(ctx, ctx.dataset.patients, patients);
    await analyze(ctx);
  }
  return { available: true };
}

export interface Lag {
  queueDepth: number;
  parked?: number;
  oldestAgeMs: number;
}

/** The aggregation queue as the server reports it (admin API, else /healthz); null when it has none. */
export async function aggregationLag(ctx: BenchContext): Promise<Lag | null> {
  try {
    return await ctx.server.admin<Lag>('GET', '/admin/aggregation');
  } catch (err) {
    if ((err as { status?: number }).status !== 404) throw err;
  }
  const health = (await (await fetch(`${ctx.server.url}/healthz`)).json()) as { aggregation?: Lag };
  return health.aggregation ?? null;
}

/**
 * Waits until the aggregation queue is empty (bounded), so figures taken next do not share the CPU with
 * the drain; returns the items still queued (0 when drained).
 */
export async function settle(ctx: BenchContext): Promise<number> {
  if (!ctx.settings.aggregation || ctx.server.env.AGGREGATION_WORKER === 'off') return 0;
  const started = Date.now();
  for (;;) {
    const lag = await aggregationLag(ctx).catch(() => null);
    if (!lag || lag.queueDepth === 0) return 0;
    if (Date.now() - started > ctx.settings.drainTimeoutMs) return lag.queueDepth;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A note for figures measured while the aggregation queue still had work. */
export function backlogNote(queued: number): { note?: string } {
  return queued ? { note: `measured while ${queued} aggregation items were still queued` } : {};
}

/**
 * Up to `n` ids of `type` on the data endpoint: from a search when search works, else created one by one
 * (a server with only the basic interactions still gets its read figures).
 */
export async function sampleIds(ctx: BenchContext, type: 'Patient' | 'Observation', n: number): Promise<string[]> {
  const t = await tenant(ctx);
  if ((await search(ctx)).available) {
    const { json } = await getJson(`${t.base}/${type}?_count=${n}`, bearer(t));
    const ids = ((json?.entry ?? []) as { resource?: { resourceType?: string; id?: string } }[])
      .filter((e) => e.resource?.resourceType === type)
      .map((e) => e.resource?.id as string);
    if (ids.length) return ids;
  }
  const ids: string[] = [];
  for (let i = 0; i < Math.min(n, 20); i++) {
    const body =
      type === 'Patient'
        ? { resourceType: 'Patient', name: [{ family: `Bench${i}`, given: ['Read'] }], birthDate: '1970-01-01' }
        : { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8302-2' }] }, valueQuantity: { value: 170 + i, unit: 'cm' } };
    const res = await fetch(`${t.base}/${type}`, { method: 'POST', headers: { ...bearer(t), 'content-type': 'application/fhir+json' }, body: JSON.stringify(body) });
    const id = (res.headers.get('location') ?? '').split(`/${type}/`)[1]?.split('/')[0];
    if (res.status === 201 && id) ids.push(id);
  }
  if (!ids.length) throw new Error(`could neither search nor create ${type}`);
  return ids;
}
