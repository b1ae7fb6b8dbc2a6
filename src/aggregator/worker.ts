import type { Sql, SqlClient, Tx } from '../store/sql';
import type { AggregationPass, Aggregator } from './aggregator';
import { type BatchKind, claimBatch, type OutboxItem } from './claim';
import { Deferred, tryLockUpstream } from './locks';
import { OutboxVacuum } from './outboxVacuum';
import { PendingChanges } from './recordChanges';
import { keyOf, type Upstream, type UpstreamRef } from './upstream';

export type { OutboxItem } from './claim';

/**
 * Drains the aggregation outbox. A batch of items is claimed with FOR UPDATE SKIP LOCKED and processed in
 * one transaction, each item under a savepoint: a failing item is rolled back alone and retried later with
 * back-off, and parked with its error after MAX_ATTEMPTS. Items are deleted in the transaction that
 * processed them, so a crash anywhere leaves them to be claimed again — nothing is lost, and processing is
 * idempotent, so nothing is applied twice in effect.
 */
export interface WorkerOptions {
  batchSize?: number;
  /** Idle poll interval. */
  pollMs?: number;
  maxAttempts?: number;
  /** Batches processed at once by this worker (each its own transaction). */
  concurrency?: number;
  /** Told about a batch that failed as a whole (it is retried). */
  onBatchError?: (err: unknown) => void;
  /** Told about a work item whose aggregation failed (it is retried with back-off, or parked): for the logs. */
  onItemFailed?: (failure: FailedItem) => void;
  /** Called after a batch has committed, with the number of items it took. */
  onBatchDone?: (items: number) => void;
  /** Test hook: called after an item is processed, before the batch commits. */
  afterItem?: (item: OutboxItem) => Promise<void>;
  /** Test hook: called after the batch's changes are logged, just before it commits. */
  beforeCommit?: () => Promise<void>;
  /** Deleted items between two vacuums of the outbox (outboxVacuum.ts); default 2,000. */
  vacuumEvery?: number;
}

/** A failed work item, as logged: its outbox id and resource, so the log line leads to `$aggregation-status`. */
export interface FailedItem {
  workItemId: string;
  store: string;
  type: string;
  resourceId: string;
  attempts: number;
  parked: boolean;
  error: string;
}

const refOf = (item: OutboxItem): UpstreamRef => ({ store: item.store, type: item.type, id: item.res_id });

type Outcome = 'done' | 'deferred' | 'failed';

/** How long an item another worker holds waits before it is claimed again. */
const DEFER_MS = 25;

export interface Lag {
  queueDepth: number;
  parked: number;
  oldestAgeMs: number;
}

export class AggregationWorker {
  private running = false;
  private loop?: Promise<void>;
  private readonly sleepers = new Set<() => void>();
  private readonly batchSize: number;
  private readonly pollMs: number;
  private readonly maxAttempts: number;
  /** The kind of batch to claim next when both are wanted: merged and copies batches take turns (claim.ts). */
  private prefer: BatchKind = 'copies';
  private readonly vacuum: OutboxVacuum;

  constructor(
    private readonly sql: SqlClient,
    private readonly aggregator: Aggregator,
    private readonly options: WorkerOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 100;
    this.pollMs = options.pollMs ?? 50;
    this.maxAttempts = options.maxAttempts ?? 5;
    this.vacuum = new OutboxVacuum(sql, options.vacuumEvery, options.onBatchError);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const loops = Array.from({ length: Math.max(1, this.options.concurrency ?? 1) }, () => this.runLoop());
    this.loop = Promise.all(loops).then(() => undefined);
  }

  private runLoop(): Promise<void> {
    return (async () => {
      while (this.running) {
        let n = 0;
        try {
          n = await this.runOnce();
          if (n > 0) this.options.onBatchDone?.(n);
        } catch (err) {
          // A batch that failed as a whole (connection lost, deadlock…) is retried on the next turn.
          this.options.onBatchError?.(err);
        }
        if (n === 0 && this.running) {
          await new Promise<void>((resolve) => {
            this.sleepers.add(resolve);
            setTimeout(resolve, this.pollMs);
          });
        }
      }
    })();
  }

  /** Whether the worker's loops run (readiness). */
  get alive(): boolean {
    return this.running;
  }

  /** Wakes an idle worker at once (a write in this process has just enqueued items) instead of at its next poll. */
  notify(): void {
    for (const wake of this.sleepers) wake();
    this.sleepers.clear();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.notify();
    await this.loop;
  }

  /**
   * Processes one batch; returns how many items it took. Merged types and deletions go one at a time (each
   * under its own savepoint, merged types first so that the batch's copies find their Patient); the copies
   * go set-wise under one savepoint, and should that fail as a whole, one at a time again so that only the
   * failing item is retried. What another worker holds right now (the resource itself, a merged type's
   * groups, a target being aggregated) is deferred: put back for a moment, neither waited for nor failed.
   * The batch's changes are logged last (recordChanges.ts), so that the change log's lock is held only for that
   * and the commit, not for the whole batch; savepoint rollbacks drop theirs.
   * The commit does not wait for its WAL flush: everything it writes can be recomputed from the upstream
   * resources and the outbox, which were committed durably.
   */
  async runOnce(): Promise<number> {
    let deleted = 0;
    const taken = await this.sql.transaction(
      async (tx) => {
        const { kind, items } = await claimBatch(tx, this.batchSize, this.prefer);
        if (!items.length) return 0;
        this.prefer = kind === 'merged' ? 'copies' : 'merged';
        const changes = PendingChanges.open(tx);
        const pass = this.aggregator.begin();
        const done: string[] = [];
        const later: string[] = [];
        // Several writes to one resource: processing it once brings it up to date.
        const unique = new Map<string, OutboxItem>();
        for (const item of items) {
          const key = keyOf(refOf(item));
          if (unique.has(key)) done.push(String(item.id));
          else unique.set(key, item);
        }
        const held = await tryLockUpstream(tx, [...unique.keys()]);
        for (const [key, item] of unique) {
          if (held.has(key)) continue;
          later.push(String(item.id));
          unique.delete(key);
        }
        const upstream = await this.aggregator.loadCopied(tx, [...unique.values()].map(refOf));
        const setWise: { item: OutboxItem; upstream: Upstream }[] = [];
        const single: OutboxItem[] = [];
        for (const [key, item] of unique) {
          const found = upstream.get(key);
          if (this.aggregator.copiesSetWise(refOf(item), found)) setWise.push({ item, upstream: found });
          else single.push(item);
        }
        const settle = (item: OutboxItem, outcome: Outcome) => {
          if (outcome === 'done') done.push(String(item.id));
          else if (outcome === 'deferred') later.push(String(item.id));
        };
        for (const item of single) settle(item, await this.processOne(tx, item, pass, changes));
        if (setWise.length) {
          const mark = changes.mark();
          await tx.execute('SAVEPOINT agg_set');
          try {
            const deferred = new Set(
              (
                await pass.copyMany(
                  tx,
                  setWise.map((s) => s.upstream),
                )
              ).map(keyOf),
            );
            for (const { item } of setWise) if (!deferred.has(keyOf(refOf(item)))) await this.options.afterItem?.(item);
            await tx.execute('RELEASE SAVEPOINT agg_set');
            for (const { item } of setWise) settle(item, deferred.has(keyOf(refOf(item))) ? 'deferred' : 'done');
          } catch (err) {
            if ((err as { crash?: boolean }).crash) throw err;
            await tx.execute('ROLLBACK TO SAVEPOINT agg_set');
            changes.rollbackTo(mark);
            pass.reset();
            for (const { item } of setWise) settle(item, await this.processOne(tx, item, pass, changes));
          }
        }
        if (done.length) deleted = await tx.execute(`DELETE FROM agg_outbox WHERE id = ANY($1::bigint[])`, done);
        if (later.length) {
          await tx.execute(`UPDATE agg_outbox SET available_at = clock_timestamp() + ($2::int * interval '1 millisecond') WHERE id = ANY($1::bigint[])`, later, DEFER_MS);
        }
        await changes.flush();
        await this.options.beforeCommit?.();
        return items.length;
      },
      { synchronousCommit: false },
    );
    await this.vacuum.deletedItems(deleted);
    return taken;
  }

  /** One item under a savepoint; a failure is rolled back alone and recorded. */
  private async processOne(tx: Tx, item: OutboxItem, pass: AggregationPass, changes: PendingChanges): Promise<Outcome> {
    const mark = changes.mark();
    await tx.execute('SAVEPOINT agg_item');
    try {
      await this.aggregator.process(tx, item.store, item.type, item.res_id, pass);
      await this.options.afterItem?.(item);
      await tx.execute('RELEASE SAVEPOINT agg_item');
      return 'done';
    } catch (err) {
      if ((err as { crash?: boolean }).crash) throw err;
      await tx.execute('ROLLBACK TO SAVEPOINT agg_item');
      changes.rollbackTo(mark);
      pass.reset();
      if (err instanceof Deferred) return 'deferred';
      await this.fail(tx, item, err as Error);
      return 'failed';
    }
  }

  private async fail(tx: Tx, item: OutboxItem, err: Error): Promise<void> {
    const attempts = item.attempts + 1;
    const backoffMs = Math.min(60_000, 200 * 2 ** attempts);
    await tx.execute(
      `UPDATE agg_outbox SET attempts = $2, last_error = $3, parked = $4, available_at = clock_timestamp() + ($5::int * interval '1 millisecond') WHERE id = $1::bigint`,
      String(item.id),
      attempts,
      (err.stack ?? err.message).slice(0, 2000),
      attempts >= this.maxAttempts,
      backoffMs,
    );
    this.options.onItemFailed?.({
      workItemId: String(item.id),
      store: item.store,
      type: item.type,
      resourceId: item.res_id,
      attempts,
      parked: attempts >= this.maxAttempts,
      error: err.message,
    });
  }

  lag(): Promise<Lag> {
    return outboxLag(this.sql);
  }

  /**
   * Resolves once every item enqueued so far has been processed (or parked); rejects after `timeoutMs`.
   * A worker that is not running does the work itself meanwhile.
   */
  waitForIdle(timeoutMs = 30_000): Promise<Lag> {
    return waitUntilIdle(this.sql, timeoutMs, () => (this.running ? undefined : this.runOnce()));
  }
}

/** How far the aggregated view is behind: unprocessed and parked items, and the oldest one's age. */
export async function outboxLag(sql: Sql): Promise<Lag> {
  const [row] = await sql.query<{ depth: bigint; parked: bigint; oldest: Date | null }[]>(
    `SELECT count(*) FILTER (WHERE NOT parked) AS depth, count(*) FILTER (WHERE parked) AS parked,
            min(enqueued_at) FILTER (WHERE NOT parked) AS oldest FROM agg_outbox`,
  );
  return {
    queueDepth: Number(row.depth),
    parked: Number(row.parked),
    oldestAgeMs: row.oldest ? Math.max(0, Date.now() - new Date(row.oldest).getTime()) : 0,
  };
}

/** Polls until the queue is empty; `step` may do some of the work between polls. */
export async function waitUntilIdle(sql: Sql, timeoutMs: number, step?: () => Promise<unknown> | undefined): Promise<Lag> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lag = await outboxLag(sql);
    if (lag.queueDepth === 0) return lag;
    if (Date.now() > deadline) throw new Error(`aggregation still has ${lag.queueDepth} items after ${timeoutMs} ms`);
    if (!(await step?.())) await new Promise((r) => setTimeout(r, 20));
  }
}
