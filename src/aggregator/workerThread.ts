import { parentPort, workerData } from 'node:worker_threads';
import { warmStructure } from '../fhir/structure';
import { createSearchIndexer } from '../search/indexer';
import { warmIndexing } from '../search/indexValues';
import { ResourceRepository } from '../store/resourceRepository';
import { postgresSql } from '../store/sql';
import { Aggregator } from './aggregator';
import { createOutboxHook } from './outbox';
import { createRecordChangeHook } from './recordChanges';
import { AggregationWorker, type FailedItem } from './worker';

/**
 * The aggregation worker on a thread of its own inside the server process (see threadedWorker.ts): its own
 * event loop and connection pool, so aggregating runs beside request handling instead of between requests.
 */
export interface WorkerThreadData {
  databaseUrl: string;
  poolSize: number;
  concurrency: number;
  batchSize: number;
  /** The index tables are sharded (Citus): see search/indexer.ts. */
  shardedIndex?: boolean;
  /** The configured aggregated types (AGGREGATED_TYPES). */
  aggregatedTypes: readonly string[];
}

export type WorkerThreadMessage =
  { kind: 'started' } | { kind: 'batchError'; message: string } | { kind: 'batchDone'; items: number } | { kind: 'itemFailed'; failure: FailedItem } | { kind: 'stopped' };

/** What the thread is told: `wake` after the main thread enqueued items, `stop` to finish. */
export type WorkerThreadCommand = 'wake' | 'stop';

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('workerThread.ts runs as a worker thread');
  const data = workerData as WorkerThreadData;
  const sql = await postgresSql(data.databaseUrl, data.poolSize);
  const repo = new ResourceRepository(sql, [createSearchIndexer({ shardedIndex: data.shardedIndex }), createOutboxHook(), createRecordChangeHook()]);
  const send = (message: WorkerThreadMessage) => port.postMessage(message);
  const worker = new AggregationWorker(sql, new Aggregator(repo, data.aggregatedTypes), {
    concurrency: data.concurrency,
    batchSize: data.batchSize,
    onBatchError: (err) => send({ kind: 'batchError', message: (err as Error).stack ?? String(err) }),
    onBatchDone: (items) => send({ kind: 'batchDone', items }),
    onItemFailed: (failure) => send({ kind: 'itemFailed', failure }),
  });
  port.on('message', async (message: WorkerThreadCommand) => {
    if (message === 'wake') return worker.notify();
    if (message !== 'stop') return;
    await worker.stop();
    await sql.close();
    send({ kind: 'stopped' });
    port.close();
  });
  // A thread starts with nothing loaded: read the definitions before the first batch, not during it.
  warmStructure(data.aggregatedTypes);
  warmIndexing(data.aggregatedTypes);
  worker.start();
  send({ kind: 'started' });
}

void main();
