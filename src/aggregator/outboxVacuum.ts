import type { Sql } from '../store/sql';

/**
 * Keeps the outbox's claim as cheap after a month as after a minute. Every processed item is deleted, and a
 * deleted row stays in the table and in its indexes until VACUUM removes it. The claim (claim.ts) reads the
 * oldest ready items in id order, so it steps over every dead entry left of the live ones, and the queue's
 * depth (`outboxLag`, for /metrics and /healthz) reads every dead row. Autovacuum (PostgreSQL's default)
 * bounds that to about a minute's worth; where it is off or behind, the walk grows with every item ever
 * processed — after 200,000 items the claim's window read 550 index pages instead of 2, and a 30-minute
 * soak's every request slowed by about 1 ms a minute as the worker's share of the CPU grew.
 *
 * So the worker vacuums the outbox itself after every `every` items it deleted: a table of at most a few
 * thousand live rows, so a few milliseconds. `SKIP_LOCKED`: a worker never queues behind another's or
 * autovacuum's run; the next one comes soon enough. `TRUNCATE false`: a queue's empty tail pages are refilled
 * at once, and giving them back to the system takes an exclusive lock on the table, which VACUUM waits for
 * (up to 5 s, while the worker's loop waits on it) and which holds every customer write's enqueue meanwhile.
 * Every 2,000 items rather than 10,000: in a 100-patient ingest (bench/ingestCost.ts) the claim's head window,
 * the outbox deletes and the queue counts read 4.3 fewer pages per resource, the vacuums 0.1 more.
 */
export class OutboxVacuum {
  private deleted = 0;
  private failed = false;

  constructor(
    private readonly sql: Sql,
    private readonly every = 2_000,
    private readonly onError?: (err: unknown) => void,
  ) {}

  /** Counts items deleted by a committed batch; vacuums once `every` have gone since the last run. */
  async deletedItems(n: number): Promise<void> {
    this.deleted += n;
    if (this.failed || this.deleted < this.every) return;
    this.deleted = 0;
    try {
      await this.sql.execute('VACUUM (SKIP_LOCKED, TRUNCATE false) agg_outbox');
    } catch (err) {
      // A database that refuses it (permissions, an engine without VACUUM) keeps working as before: say so once.
      this.failed = true;
      this.onError?.(err);
    }
  }
}
