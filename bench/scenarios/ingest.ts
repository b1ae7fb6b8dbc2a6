import { ingestFloor } from '../lib/floors';
import { ratio, round } from '../lib/stats';
import { type Availability, type BenchContext, type IngestRun, aggregationLag, analyze, loadPatients, notAvailable, report, transactions } from './context';
import { AggregationObserver } from './aggregate';

/**
 * ingest: scaled Synthea patients posted as transaction Bundles, several in flight, from a separate
 * process → resources/s (only accepted Bundles count). Floor: the same resource bodies inserted as rows of
 * one jsonb table with batched INSERTs over the same driver, as many in flight.
 */
export async function measuredIngest(ctx: BenchContext): Promise<(IngestRun & { available: true }) | Extract<Availability, { available: false }>> {
  if (ctx.ingest) return { ...ctx.ingest, available: true };
  const tx = await transactions(ctx);
  if (!tx.available) return tx;
  const observer = await AggregationObserver.start(ctx);
  const from = ctx.dataset.patients;
  ctx.log(`ingest: posting patients ${from}…${from + ctx.settings.patients}`);
  const load = await loadPatients(ctx, from, from + ctx.settings.patients);
  if (observer instanceof AggregationObserver) observer.ingestEnded((await aggregationLag(ctx).catch(() => null))?.queueDepth);
  await analyze(ctx);
  ctx.ingest = {
    from,
    to: from + ctx.settings.patients,
    resources: load.resources,
    seconds: load.seconds,
    rate: load.resources / load.seconds,
    failed: load.failed,
    failures: load.failures,
  };
  if (observer instanceof AggregationObserver) {
    ctx.log('ingest: waiting for the aggregation to catch up');
    ctx.aggregation = await observer.finish(ctx.settings.drainTimeoutMs, ctx.settings.quick ? 5 : 20);
  } else {
    ctx.aggregation = undefined;
    ctx.aggregationUnavailable = observer.reason;
  }
  return { ...ctx.ingest, available: true };
}

export async function ingestScenario(ctx: BenchContext): Promise<void> {
  const run = await measuredIngest(ctx);
  if (!run.available) {
    notAvailable(ctx, 'ingest.rate', 'ingest', 'resources/s', run.reason);
    return;
  }
  const patients = run.to - run.from;
  const floor = await ingestFloor(ctx.store, ctx.databaseUrl, run.from, run.to, ctx.settings.ingestConcurrency);
  ctx.ingestFloor = floor.rate;
  const first = run.failures[0];
  report(ctx, {
    id: 'ingest.rate',
    scenario: 'ingest',
    metric: `resources/s (${run.resources} resources, ${patients} patients, ${ctx.settings.ingestConcurrency} Bundles in flight)`,
    value: round(run.rate),
    unit: 'res/s',
    floor: round(floor.rate),
    ratio: ratio(run.rate, floor.rate),
    target: '≥ 2,500 and ≥ 50% of floor',
    ...(run.failed ? { note: `${run.failed} Bundles refused, e.g. #${first?.index}: HTTP ${first?.status} ${first?.body.slice(0, 150)}` } : {}),
  });
}
