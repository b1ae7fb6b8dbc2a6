import { DEFAULT_POSTGRES } from '../lib/database';
import { ingestFloor } from '../lib/floors';
import { indexedIngestFloor, serverRows } from '../lib/indexedFloor';
import { statTicks, TICK_US } from '../lib/processCpu';
import { ratio, round } from '../lib/stats';
import { type Availability, type BenchContext, type IngestRun, aggregationLag, analyze, loadPatients, notAvailable, report, tenant, transactions } from './context';
import { AggregationObserver } from './aggregate';

/**
 * ingest: scaled Synthea patients posted as transaction Bundles, several in flight, from a separate
 * process → resources/s (only accepted Bundles count). Two floors, each in the same run: the same resource
 * bodies inserted as rows of one jsonb table with batched INSERTs over the same driver, as many in flight;
 * and the indexed floor (bench/lib/indexedFloor.ts): the rows the server writes per resource (current row,
 * search-index rows, outbox item), one multi-row statement per Bundle into a fresh migrated database.
 */
export async function measuredIngest(ctx: BenchContext): Promise<(IngestRun & { available: true }) | Extract<Availability, { available: false }>> {
  if (ctx.ingest) return { ...ctx.ingest, available: true };
  const tx = await transactions(ctx);
  if (!tx.available) return tx;
  const observer = await AggregationObserver.start(ctx);
  const from = ctx.dataset.patients;
  ctx.log(`ingest: posting patients ${from}…${from + ctx.settings.patients}`);
  const cpu0 = statTicks(ctx.server.pid, true);
  const load = await loadPatients(ctx, from, from + ctx.settings.patients);
  if (observer instanceof AggregationObserver) observer.ingestEnded((await aggregationLag(ctx).catch(() => null))?.queueDepth);
  await analyze(ctx);
  ctx.ingest = {
    from,
    to: from + ctx.settings.patients,
    resources: load.resources,
    seconds: load.seconds,
    rate: load.resources / load.seconds,
    serverCpuUs: 0,
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
  ctx.ingest.serverCpuUs = (statTicks(ctx.server.pid, true) - cpu0) * TICK_US;
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
    target: ctx.settings.aggregation ? '≥ 4,000 with the aggregation on' : '≥ 6,000 with the aggregation off',
    ...(run.failed ? { note: `${run.failed} Bundles refused, e.g. #${first?.index}: HTTP ${first?.status} ${first?.body.slice(0, 150)}` } : {}),
  });
  // CPU per resource does not depend on what else runs on the machine (bench/ingestCost.ts adds PostgreSQL's and the top statements).
  report(ctx, {
    id: 'ingest.serverCpu',
    scenario: 'ingest',
    metric: `server CPU per resource, all threads, first Bundle to the aggregation caught up (aggregation ${ctx.settings.aggregation ? 'on' : 'off'})`,
    value: run.resources ? round(run.serverCpuUs / run.resources) : null,
    unit: 'µs',
  });
  ctx.log('ingest: the indexed floor');
  const indexed = await indexedIngestFloor(ctx.store, process.env.DATABASE_URL || DEFAULT_POSTGRES, run.from, run.to, ctx.settings.ingestConcurrency);
  const perResource = (rows: number, resources: number) => (resources ? round(rows / resources, 2) : 0);
  // The floor is only a floor if it writes what the server wrote: the index rows per resource side by side.
  let check = '';
  if (ctx.store === 'postgres' && ctx.databaseUrl && run.from === 0) {
    const server = await serverRows(ctx.databaseUrl, (await tenant(ctx)).endpointId);
    check = `; index rows per resource: server ${perResource(server.indexRows, server.resources)}, floor ${perResource(indexed.indexRows, indexed.resources)}`;
  }
  report(ctx, {
    id: 'ingest.indexedFloor',
    scenario: 'ingest',
    metric: `resources/s against the indexed floor (the server's rows per resource: current row, ${perResource(indexed.indexRows, indexed.resources)} search-index rows, outbox item; one unnest INSERT per Bundle${check})`,
    value: round(run.rate),
    unit: 'res/s',
    floor: round(indexed.rate),
    ratio: ratio(run.rate, indexed.rate),
    target: '≥ 50% of the indexed floor',
  });
  report(ctx, {
    id: 'ingest.indexedFloor.rate',
    scenario: 'ingest',
    metric: 'indexed floor: resources/s the database takes for those rows (floor: the jsonb-insert floor)',
    value: round(indexed.rate),
    unit: 'res/s',
    floor: round(floor.rate),
    ratio: ratio(indexed.rate, floor.rate),
  });
}
