import { aggregatedIngestFloor, aggregationRows, postmasterOf, type TableRows } from '../lib/aggregatedFloor';
import { DEFAULT_POSTGRES } from '../lib/database';
import { ingestFloor } from '../lib/floors';
import { indexedIngestFloor, serverRows } from '../lib/indexedFloor';
import { clusterTicks, statTicks, TICK_US } from '../lib/processCpu';
import { ratio, round } from '../lib/stats';
import {
  type Availability,
  type BenchContext,
  type IngestRun,
  aggregationLag,
  analyze,
  type LoadOutcome,
  loadPatients,
  notAvailable,
  postPrebuilt,
  prebuildBundles,
  report,
  tenant,
  transactions,
} from './context';
import { AggregationObserver } from './aggregate';

/**
 * ingest: scaled Synthea patients posted as transaction Bundles, several in flight, from a separate
 * process → resources/s (only accepted Bundles count). Two floors, each in the same run: the same resource
 * bodies inserted as rows of one jsonb table with batched INSERTs over the same driver, as many in flight;
 * and the indexed floor (bench/lib/indexedFloor.ts): the rows the server writes per resource (current row,
 * search-index rows, outbox item), one multi-row statement per Bundle into a fresh migrated database. With the
 * aggregation on, a third: the aggregation floor (bench/lib/aggregatedFloor.ts), those rows and the rows the
 * aggregation writes for them (the aggregated copy, its index rows, member, access, change log, outbox delete).
 */
export async function measuredIngest(ctx: BenchContext): Promise<(IngestRun & { available: true }) | Extract<Availability, { available: false }>> {
  if (ctx.ingest) return { ...ctx.ingest, available: true };
  const tx = await transactions(ctx);
  if (!tx.available) return tx;
  const from = ctx.dataset.patients;
  const to = from + ctx.settings.patients;
  if (ctx.settings.ingestPrebuilt) ctx.log(`ingest: making patients ${from}…${to}'s Bundles`);
  const prebuilt = ctx.settings.ingestPrebuilt ? await prebuildBundles(from, to) : undefined;
  const observer = await AggregationObserver.start(ctx);
  ctx.log(`ingest: posting patients ${from}…${from + ctx.settings.patients}`);
  const postmaster = ctx.store === 'postgres' && ctx.databaseUrl ? await postmasterOf(ctx.databaseUrl) : null;
  const cpu0 = statTicks(ctx.server.pid, true);
  const cluster0 = postmaster ? clusterTicks(postmaster) : 0;
  let load: LoadOutcome;
  try {
    load = prebuilt ? await postPrebuilt(ctx, prebuilt) : await loadPatients(ctx, from, to);
  } finally {
    prebuilt?.dispose();
  }
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
  ctx.ingest.clusterCpuUs = postmaster ? (clusterTicks(postmaster) - cluster0) * TICK_US : null;
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
    metric: `resources/s (${run.resources} resources, ${patients} patients, ${ctx.settings.ingestConcurrency} Bundles in flight, ${ctx.settings.ingestPrebuilt ? 'made before the load' : 'made during it'})`,
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
  if (ctx.settings.aggregation && ctx.aggregation) await aggregatedFloorFigures(ctx, run, indexed.rate);
}

/**
 * The aggregation floor beside the ingest with the aggregation on: the rate, the rows per resource per table on
 * both sides (the floor means something only where they match), and the database CPU per resource of each.
 */
async function aggregatedFloorFigures(ctx: BenchContext, run: IngestRun, indexedRate: number): Promise<void> {
  ctx.log('ingest: the aggregation floor');
  const floor = await aggregatedIngestFloor(ctx.store, process.env.DATABASE_URL || DEFAULT_POSTGRES, run.from, run.to, ctx.settings.ingestConcurrency);
  const perResource = (rows: TableRows, table: string) => {
    const resources = rows['resource (upstream)'];
    return resources ? round((rows[table] ?? 0) / resources, 2) : 0;
  };
  let check = '';
  if (ctx.store === 'postgres' && ctx.databaseUrl && run.from === 0) {
    const server = await aggregationRows(ctx.databaseUrl, (await tenant(ctx)).endpointId);
    check = `; rows per resource, server/floor: ${Object.keys(server)
      .map((t) => `${t} ${perResource(server, t)}/${perResource(floor.rows, t)}`)
      .join(', ')}`;
  }
  const o = ctx.aggregation;
  const caughtUp = o?.drainedAt ? run.resources / ((o.drainedAt - o.ingestStartedAt) / 1000) : undefined;
  report(ctx, {
    id: 'ingest.aggregatedFloor',
    scenario: 'ingest',
    metric:
      `resources/s against the aggregation floor (the upstream rows and the aggregation's per resource, one statement per Bundle each side` +
      `${caughtUp ? `; first Bundle to the aggregation caught up: ${round(caughtUp)} res/s` : ''}${check})`,
    value: round(run.rate),
    unit: 'res/s',
    floor: round(floor.rate),
    ratio: ratio(run.rate, floor.rate),
    target: '≥ 50% of the aggregation floor',
  });
  report(ctx, {
    id: 'ingest.aggregatedFloor.rate',
    scenario: 'ingest',
    metric: 'aggregation floor: resources/s the database takes for those rows (floor: the indexed floor)',
    value: round(floor.rate),
    unit: 'res/s',
    floor: round(indexedRate),
    ratio: ratio(floor.rate, indexedRate),
  });
  // What the database alone spends per resource with the aggregation on: whether a rate fits the cores at all.
  report(ctx, {
    id: 'ingest.aggregatedFloor.dbCpu',
    scenario: 'ingest',
    metric:
      'PostgreSQL CPU per resource writing the aggregation floor (cluster: postmaster and children; other work on it counts too, an upper bound)' +
      (run.clusterCpuUs != null && run.resources ? `; the server's run: ${round(run.clusterCpuUs / run.resources)} µs from the first Bundle to the aggregation caught up` : ''),
    value: floor.clusterCpuUs != null && floor.resources ? round(floor.clusterCpuUs / floor.resources) : null,
    unit: 'µs',
  });
}
