import { throttled } from '../fhir/outcome';
import type { Admission } from '../service/ports';
import type { Sql } from '../store/sql';

/**
 * Backpressure from the aggregation pipeline onto customer writes (DESIGN §3: the aggregated view is
 * eventually consistent, and its lag must stay small). A write transaction is admitted while the
 * unprocessed backlog — the outbox, plus what admitted transactions in this process are about to add —
 * stays within `maxBacklog` items; otherwise it waits for the workers to catch up, and after `maxWaitMs` it
 * is refused with 503 and Retry-After. Without this, writes that arrive faster than the workers aggregate
 * grow the queue (and the lag) without bound; with it, a loader's full speed is the pipeline's speed.
 * A transaction larger than the limit is still admitted when no other large one is in flight and the queue
 * is under the limit, so no bundle waits for ever.
 *
 * Small writes (a single resource, a transaction of a few entries: at most `smallItems`) do not queue
 * behind bundles: they may use `headroom` items above the limit, which large writes may not. A person's
 * single write beside a bulk load is then admitted at once, while the queue stays bounded (by the limit,
 * plus the largest transaction let in over it, plus the headroom). The price: should small writes
 * alone keep the queue above the limit, large ones wait (and after `maxWaitMs` get 503) until it drains.
 */
export interface AdmissionOptions {
  maxBacklog: number;
  maxWaitMs: number;
  /** The most items a write may have and still count as small (default 10). */
  smallItems?: number;
  /** How far small writes may take the backlog above `maxBacklog` (default `maxBacklog`). */
  headroom?: number;
  /** How often the backlog is re-read while someone waits (a `nudge` re-reads it at once). */
  refreshMs?: number;
  /** Called when an admitted transaction has finished: its work items are in the outbox (or rolled back). */
  onReleased?: () => void;
}

export class BacklogAdmission implements Admission {
  private depth = 0;
  private readAt = 0;
  private reserved = 0;
  /** What admitted large writes are about to add (part of `reserved`). */
  private reservedLarge = 0;
  /**
   * The largest transaction let in over the limit (when nothing else large was in flight) since the backlog
   * was last within the limit: small writes' headroom counts from the top of it, not from the limit, or one
   * oversized bundle would hold every small write until the workers had worked it off.
   */
  private oversize = 0;
  private reading?: Promise<void>;
  private readonly refreshMs: number;
  private readonly smallItems: number;
  private readonly headroom: number;
  private readonly sleepers = new Set<() => void>();

  constructor(
    private readonly sql: Sql,
    private readonly options: AdmissionOptions,
  ) {
    this.refreshMs = options.refreshMs ?? 50;
    this.smallItems = options.smallItems ?? 10;
    this.headroom = options.headroom ?? options.maxBacklog;
  }

  async admit(items: number): Promise<() => void> {
    const deadline = Date.now() + this.options.maxWaitMs;
    for (;;) {
      await this.refresh();
      const max = this.options.maxBacklog;
      const small = items <= this.smallItems;
      const backlog = this.depth + this.reserved + items;
      if (small ? backlog <= max + this.oversize + this.headroom : backlog <= max || (this.reservedLarge === 0 && this.depth < max)) {
        this.reserved += items;
        if (!small) this.reservedLarge += items;
        if (!small && backlog > max) this.oversize = Math.max(this.oversize, items);
        let released = false;
        return () => {
          if (released) return;
          released = true;
          this.reserved -= items;
          if (!small) this.reservedLarge -= items;
          // What was reserved is now in the outbox (or was rolled back): read it before the next decision.
          this.readAt = 0;
          this.options.onReleased?.();
        };
      }
      if (Date.now() >= deadline) {
        throw throttled(`The aggregation is ${this.depth} items behind (limit ${max}); retry shortly`, Math.max(1, Math.ceil(this.refreshMs / 1000)));
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.sleepers.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, this.refreshMs);
        this.sleepers.add(wake);
      });
    }
  }

  /**
   * The workers just shrank the backlog (an in-process worker's batch committed): waiting writers re-read
   * it now instead of at their next poll, so neither side idles while the other has work for it.
   */
  nudge(): void {
    this.readAt = 0;
    for (const wake of [...this.sleepers]) wake();
  }

  private refresh(): Promise<void> {
    if (Date.now() - this.readAt < this.refreshMs) return Promise.resolve();
    this.reading ??= (async () => {
      try {
        const [row] = await this.sql.query<{ n: bigint }[]>(`SELECT count(*) AS n FROM agg_outbox WHERE NOT parked`);
        this.depth = Number(row.n);
        this.readAt = Date.now();
        if (this.depth + this.reserved <= this.options.maxBacklog) this.oversize = 0;
      } finally {
        this.reading = undefined;
      }
    })();
    return this.reading;
  }
}
