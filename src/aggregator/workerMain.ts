import { ConfigError, loadConfig } from '../config';
import { createLogger, logFailedItem } from '../ops/logger';
import { createSearchIndexer } from '../search/indexer';
import { openDatabase } from '../store/db';
import { migrate } from '../store/migrator';
import { ResourceRepository } from '../store/resourceRepository';
import { Aggregator } from './aggregator';
import { createOutboxHook } from './outbox';
import { createRecordChangeHook } from './recordChanges';
import { recordedAggregatedTypes, recordedTypesNote } from './recordedAggregatedTypes';
import { AggregationWorker } from './worker';

/**
 * `npm run worker`: the aggregation worker as its own process, so several can share the queue (run the
 * servers with AGGREGATION_WORKER=off). Needs PostgreSQL: the embedded store belongs to the server process.
 * Logs the server's way (JSON lines, LOG_LEVEL), with the work item's id on each failure.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, { component: 'aggregation-worker' });
  if (!config.databaseUrl) throw new Error('npm run worker needs DATABASE_URL (PostgreSQL); the embedded store runs its worker inside the server');
  const db = await openDatabase({ databaseUrl: config.databaseUrl, poolSize: config.poolSize });
  const { applied } = await migrate(db, undefined, { citus: config.citus });
  if (applied.length) log.info({ applied }, 'applied migrations');
  // The aggregated types are the database's: a worker with another list than the servers' is refused here.
  const recorded = await recordedAggregatedTypes(db.sql, config.aggregatedTypes, { applyChange: config.applyAggregatedTypesChange });
  const note = recordedTypesNote(recorded, config.aggregatedTypes);
  if (note) log[note.level](note.message);
  const repo = new ResourceRepository(db.sql, [createSearchIndexer({ shardedIndex: config.citus }), createOutboxHook(), createRecordChangeHook()]);
  const worker = new AggregationWorker(db.sql, new Aggregator(repo, config.aggregatedTypes), {
    concurrency: config.aggregationConcurrency ?? 2,
    batchSize: config.aggregationBatchSize,
    onBatchError: (err) => log.warn({ err }, 'aggregation batch failed; it will be retried'),
    onBatchDone: (items) => log.debug({ items }, 'aggregation batch committed'),
    onItemFailed: (failure) => logFailedItem(log, failure),
  });
  const report = setInterval(async () => {
    try {
      log.info({ lag: await worker.lag() }, 'aggregation lag');
    } catch (err) {
      log.warn({ err }, 'cannot read the aggregation lag');
    }
  }, 10_000);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'aggregation worker stopping');
    clearInterval(report);
    await worker.stop();
    await db.close();
    process.exit(0);
  };
  // Before the line that says it started: a supervisor (or a test) that stops it on reading that line must
  // find the handler in place, not SIGTERM's default action, which ends the process without the stop.
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  worker.start();
  log.info({ store: db.kind }, 'aggregation worker started');
}

main().catch((err) => {
  // A bad configuration is the operator's to fix: its messages, without a stack trace.
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
