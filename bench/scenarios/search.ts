import { runCannon } from '../lib/load';
import { ms, ratio, round } from '../lib/stats';
import {
  type BenchContext,
  analyze,
  backlogNote,
  bearer,
  durationMs,
  ensureDataset,
  getJson,
  loadPatients,
  notAvailable,
  report,
  sampleIds,
  search,
  settle,
  tenant,
  why,
} from './context';

/**
 * search: token, string, date range, reference, chain and _include searches (one page of 20) at each
 * dataset size → p50/p95, and the p95 growth from the first size to the last — the figure that matters.
 * Floor at each size: `GET Patient/{id}` on the same server at the same concurrency, so the ratio says what
 * a search costs beyond any authenticated request. Loads for the larger sizes run with the aggregation
 * worker off (restarting the server), so its backlog does not share the CPU with the searches.
 */
const CONNECTIONS = 4;

function shapes(patientId: string, family: string): Record<string, string> {
  const name = encodeURIComponent(family);
  return {
    token: 'Observation?code=http://loinc.org|8302-2&_count=20',
    string: `Patient?name=${name}&_count=20`,
    'date range': 'Observation?date=ge2015-01-01&date=lt2016-01-01&_count=20',
    reference: `Observation?subject=Patient/${patientId}&_count=20`,
    chain: `Observation?subject:Patient.name=${name}&_count=20`,
    _include: `Observation?subject=Patient/${patientId}&_include=Observation:subject&_count=20`,
  };
}

export const SEARCH_SHAPES = Object.keys(shapes('x', 'x'));

type Result = { p50: number | null; p95: number | null };

async function measureAt(ctx: BenchContext, patients: number, queries: Record<string, string>, queued: number): Promise<Record<string, Result | undefined>> {
  const t = await tenant(ctx);
  const duration = durationMs(ctx, 2_000, 5_000);
  const ids = await sampleIds(ctx, 'Patient', 20);
  const floorRequests = ids.map((id) => ({ url: `${t.base}/Patient/${id}`, headers: bearer(t) }));
  // Warm up (a restarted server has a cold JIT and cold caches) before the floor is timed.
  await runCannon({
    requests: [...floorRequests, ...Object.values(queries).map((q) => ({ url: `${t.base}/${q}`, headers: bearer(t) }))],
    connections: CONNECTIONS,
    durationMs: Math.max(500, duration / 2),
  });
  const floor = await runCannon({ requests: floorRequests, connections: CONNECTIONS, durationMs: duration });
  const out: Record<string, Result | undefined> = {};
  for (const [shape, query] of Object.entries(queries)) {
    const url = `${t.base}/${query}`;
    const first = await getJson(url, bearer(t));
    if (first.status !== 200) {
      notAvailable(ctx, `search.${shape}@${patients}`, 'search', `${shape} @ ${patients} patients`, `${query.split('&_count')[0]} → ${why(first.status, first.json)}`);
      continue;
    }
    // Warm the plan and the JIT before timing.
    for (let i = 0; i < 5; i++) await getJson(url, bearer(t));
    const r = await runCannon({ requests: [{ url, headers: bearer(t) }], connections: CONNECTIONS, durationMs: duration });
    out[shape] = { p50: r.p50, p95: r.p95 };
    const failures = r.errors + r.statusErrors;
    const note = [failures ? `${failures} failed requests` : '', backlogNote(queued).note ?? ''].filter(Boolean).join('; ');
    report(ctx, {
      id: `search.${shape}@${patients}`,
      scenario: 'search',
      metric: `${shape} @ ${patients} patients (floor: GET Patient/{id})`,
      value: round(r.p95, 2),
      unit: `ms p95 (p50 ${ms(r.p50)})`,
      floor: round(floor.p95, 2),
      ratio: ratio(r.p95, floor.p95),
      target: 'p95 < 50 ms',
      ...(note ? { note } : {}),
    });
  }
  return out;
}

export async function searchScenario(ctx: BenchContext): Promise<void> {
  const queued = await settle(ctx);
  const data = await ensureDataset(ctx, ctx.settings.patients);
  const available = data.available ? await search(ctx) : data;
  if (!available.available) {
    for (const shape of SEARCH_SHAPES) notAvailable(ctx, `search.${shape}@${ctx.settings.patients}`, 'search', `${shape} @ ${ctx.settings.patients} patients`, available.reason);
    return;
  }
  // One patient of the dataset (with Observations) and a 3-letter prefix of its family name, kept for
  // every size so the figures compare the same queries.
  const t = await tenant(ctx);
  const probe = await getJson(`${t.base}/Observation?_count=1&_include=Observation:subject`, bearer(t));
  const patient = ((probe.json?.entry ?? []) as { resource: { resourceType: string; id: string; name?: { family?: string }[] } }[]).find(
    (e) => e.resource.resourceType === 'Patient',
  )?.resource;
  const patientId = patient?.id ?? (await sampleIds(ctx, 'Patient', 1))[0];
  const family = (patient?.name?.[0]?.family ?? 'Smi').slice(0, 3);
  const queries = shapes(patientId, family);

  const sizes = [ctx.dataset.patients, ...ctx.settings.sizes.filter((s) => s > ctx.dataset.patients)];
  const results: Record<number, Record<string, Result | undefined>> = {};
  let workerOff = false;
  for (const size of sizes) {
    if (size > ctx.dataset.patients) {
      if (ctx.settings.aggregation && ctx.server.env.AGGREGATION_WORKER !== 'off') {
        ctx.log('search: restarting the server with the aggregation worker off for the growth loads');
        await ctx.server.restart({ AGGREGATION_WORKER: 'off' });
        workerOff = true;
      }
      ctx.log(`search: loading patients ${ctx.dataset.patients}…${size}`);
      const load = await loadPatients(ctx, ctx.dataset.patients, size);
      await analyze(ctx);
      if (load.failed) ctx.log(`search: ${load.failed} Bundles refused while growing the dataset`);
      // The growth load is an ingest too: with the worker off it measures storing with search indexing alone.
      const rate = load.seconds > 0 ? load.resources / load.seconds : null;
      report(ctx, {
        id: `ingest.rate.${size}`,
        scenario: 'ingest',
        metric: `resources/s growing the dataset to ${size} patients (${load.resources} resources; aggregation worker ${workerOff || ctx.server.env.AGGREGATION_WORKER === 'off' ? 'off: search indexing only' : 'on'}; floor: the measured ingest's)`,
        value: round(rate),
        unit: 'res/s',
        floor: round(ctx.ingestFloor ?? null),
        ratio: ratio(rate, ctx.ingestFloor ?? null),
        target: '≥ 2,500 and ≥ 50% of floor',
      });
    }
    results[size] = await measureAt(ctx, size, queries, size === sizes[0] ? queued : 0);
  }
  if (sizes.length > 1) {
    const [first, last] = [sizes[0], sizes[sizes.length - 1]];
    for (const shape of SEARCH_SHAPES) {
      const a = results[first][shape]?.p95;
      const b = results[last][shape]?.p95;
      report(ctx, {
        id: `search.${shape}.growth`,
        scenario: 'search',
        metric: `${shape} p95 growth ${first} → ${last} patients`,
        value: ratio(b, a),
        unit: '×',
        target: '< 1.5×',
        ...(a === undefined || b === undefined ? { note: 'not available at both sizes' } : workerOff ? { note: 'larger sizes loaded with the aggregation worker off' } : {}),
      });
    }
  }
}
