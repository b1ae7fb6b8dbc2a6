import { ConfigError, loadConfig } from '../config';
import { createSearchIndexer } from '../search/indexer';
import { openDatabase } from '../store/db';
import { migrate } from '../store/migrator';
import { ResourceRepository } from '../store/resourceRepository';
import { Aggregator } from './aggregator';
import { createOutboxHook } from './outbox';
import { AggregationWorker } from './worker';

/**
 * `npm run worker`: the aggregation worker as its own process, so several can share the queue (run the
 * servers with AGGREGATION_WORKER=off). Needs PostgreSQL: the embedded store belongs to the server process.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.databaseUrl) throw new Error('npm run worker needs DATABASE_URL (PostgreSQL); the embedded store runs its worker inside the server');
  const db = await openDatabase({ databaseUrl: config.databaseUrl, poolSize: config.poolSize });
  await migrate(db);
  const repo = new ResourceRepository(db.sql, [createSearchIndexer(), createOutboxHook()]);
  const worker = new AggregationWorker(db.sql, new Aggregator(repo), { concurrency: config.aggregationConcurrency ?? 2, batchSize: config.aggregationBatchSize });
  worker.start();
  console.log(JSON.stringify({ msg: 'aggregation worker started', store: db.kind }));
  const report = setInterval(async () => console.log(JSON.stringify({ msg: 'lag', ...(await worker.lag()) })), 10_000);
  const stop = async () => {
    clearInterval(report);
    await worker.stop();
    await db.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((err) => {
  // A bad configuration is the operator's to fix: its messages, without a stack trace.
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
