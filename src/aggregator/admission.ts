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
 * A transaction larger than the limit is still admitted when nothing else is in flight and the queue is
 * under the limit, so no bundle waits for ever.
 */
export interface AdmissionOptions {
  maxBacklog: number;
  maxWaitMs: number;
  /** How often the backlog is re-read while someone waits. */
  refreshMs?: number;
}

export class BacklogAdmission implements Admission {
  private depth = 0;
  private readAt = 0;
  private reserved = 0;
  private reading?: Promise<void>;
  private readonly refreshMs: number;

  constructor(
    private readonly sql: Sql,
    private readonly options: AdmissionOptions,
  ) {
    this.refreshMs = options.refreshMs ?? 50;
  }

  async admit(items: number): Promise<() => void> {
    const deadline = Date.now() + this.options.maxWaitMs;
    for (;;) {
      await this.refresh();
      const max = this.options.maxBacklog;
      if (this.depth + this.reserved + items <= max || (this.reserved === 0 && this.depth < max)) {
        this.reserved += items;
        let released = false;
        return () => {
          if (released) return;
          released = true;
          this.reserved -= items;
          // What was reserved is now in the outbox (or was rolled back): read it before the next decision.
          this.readAt = 0;
        };
      }
      if (Date.now() >= deadline) {
        throw throttled(`The aggregation is ${this.depth} items behind (limit ${max}); retry shortly`, Math.max(1, Math.ceil(this.refreshMs / 1000)));
      }
      await new Promise((r) => setTimeout(r, this.refreshMs));
    }
  }

  private refresh(): Promise<void> {
    if (Date.now() - this.readAt < this.refreshMs) return Promise.resolve();
    this.reading ??= (async () => {
      try {
        const [row] = await this.sql.query<{ n: bigint }[]>(`SELECT count(*) AS n FROM agg_outbox WHERE NOT parked`);
        this.depth = Number(row.n);
        this.readAt = Date.now();
      } finally {
        this.reading = undefined;
      }
    })();
    return this.reading;
  }
}
