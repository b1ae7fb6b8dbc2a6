import type { ResourceChange, Tx, WriteHook } from '../store/resourceRepository';
import type { Sql } from '../store/sql';

/** The store the aggregated view lives in; everything else is a customer endpoint feeding it. */
export const AGGREGATED_STORE = 'aggregated';

/**
 * The write hook that enqueues aggregation work in the customer write's own transaction, so a committed
 * write always has its work item and a rolled-back one never does.
 */
export function createOutboxHook(): WriteHook {
  const hook: WriteHook = async (tx: Tx, change: ResourceChange) => {
    if (change.store === AGGREGATED_STORE) return;
    await tx.execute(`INSERT INTO agg_outbox (store, type, res_id) VALUES ($1, $2, $3)`, change.store, change.type, change.id);
  };
  hook.many = async (tx: Tx, changes: ResourceChange[]) => {
    const upstream = changes.filter((c) => c.store !== AGGREGATED_STORE);
    if (!upstream.length) return;
    await tx.execute(
      `INSERT INTO agg_outbox (store, type, res_id) SELECT * FROM unnest($1::text[], $2::text[], $3::text[])`,
      upstream.map((c) => c.store),
      upstream.map((c) => c.type),
      upstream.map((c) => c.id),
    );
  };
  return hook;
}

/**
 * Queues every current upstream resource of one store for re-aggregation, as one write transaction would
 * (one lane, so its merged types still go first): what the aggregation derives from the endpoint's settings,
 * such as the default source organisation of its copies, is then recomputed. Returns how many were queued.
 */
export function requeueStore(sql: Sql, store: string): Promise<number> {
  if (store === AGGREGATED_STORE) throw new Error('The aggregated store is not an upstream store');
  return sql.execute(`INSERT INTO agg_outbox (store, type, res_id) SELECT store, type, id FROM resource WHERE store = $1 AND NOT deleted`, store);
}
