import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Sql } from '../store/sql';
import { type FailedItem, type Lag, outboxLag, waitUntilIdle } from './worker';
import type { WorkerThreadCommand, WorkerThreadData, WorkerThreadMessage } from './workerThread';

/**
 * The in-process aggregation worker on its own thread (PostgreSQL only: the embedded store is one
 * connection, owned by the main thread). Request handling and aggregation then use both cores of a small
 * machine instead of taking turns on one event loop. A thread that dies is started again.
 */
export interface ThreadedWorkerOptions extends WorkerThreadData {
  onBatchError?: (message: string) => void;
  onBatchDone?: (items: number) => void;
  onItemFailed?: (failure: FailedItem) => void;
  onThreadError?: (err: Error) => void;
}

const RESTART_MS = 1000;

export class ThreadedAggregationWorker {
  private thread?: Worker;
  private stopping = false;

  constructor(
    private readonly sql: Sql,
    private readonly options: ThreadedWorkerOptions,
  ) {}

  start(): void {
    if (this.thread || this.stopping) return;
    const { onBatchError, onBatchDone, onItemFailed, onThreadError, ...data } = this.options;
    // Built, the thread runs the .js beside this file; from the sources (tests, tsx) it registers the
    // TypeScript loader first.
    const entry = path.join(__dirname, `workerThread${path.extname(__filename)}`);
    const thread = entry.endsWith('.ts')
      ? new Worker(`require('tsx/cjs/api').register(); require(${JSON.stringify(entry)});`, { eval: true, workerData: data satisfies WorkerThreadData })
      : new Worker(entry, { workerData: data satisfies WorkerThreadData });
    thread.on('message', (message: WorkerThreadMessage) => {
      if (message.kind === 'batchError') onBatchError?.(message.message);
      else if (message.kind === 'batchDone') onBatchDone?.(message.items);
      else if (message.kind === 'itemFailed') onItemFailed?.(message.failure);
    });
    thread.on('error', (err) => onThreadError?.(err));
    thread.on('exit', (code) => {
      this.thread = undefined;
      if (this.stopping) return;
      onThreadError?.(new Error(`aggregation thread exited with code ${code}`));
      setTimeout(() => this.start(), RESTART_MS).unref();
    });
    this.thread = thread;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const thread = this.thread;
    if (!thread) return;
    const exited = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
    thread.postMessage('stop' satisfies WorkerThreadCommand);
    const timer = setTimeout(() => void thread.terminate(), 20_000);
    await exited;
    clearTimeout(timer);
  }

  /** Whether the worker thread runs (readiness); false between a crash and its restart. */
  get alive(): boolean {
    return this.thread !== undefined && !this.stopping;
  }

  /** Items were just enqueued in this process: the thread stops waiting for its next poll. */
  notify(): void {
    this.thread?.postMessage('wake' satisfies WorkerThreadCommand);
  }

  lag(): Promise<Lag> {
    return outboxLag(this.sql);
  }

  waitForIdle(timeoutMs = 30_000): Promise<Lag> {
    return waitUntilIdle(this.sql, timeoutMs);
  }
}
