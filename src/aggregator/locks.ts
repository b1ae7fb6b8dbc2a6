import type { Tx } from '../store/resourceRepository';

/**
 * Transaction-scoped advisory locks that let several workers (threads or processes) share the queue:
 * - one per upstream resource being aggregated, so two workers never compute the same resource at once
 *   (which could give it two aggregated copies), taken for a whole batch in one sorted statement;
 * - one per merged type, so groups of that type change one transaction at a time and concurrent workers
 *   cannot split or double a group.
 * Lock order is always sorted within a statement; a rare cross-statement cycle ends in PostgreSQL's deadlock
 * detection aborting one batch, which is then retried like any failed batch.
 */
export async function lockUpstream(tx: Tx, keys: string[]): Promise<void> {
  if (!keys.length) return;
  await tx.$queryRawUnsafe(
    `SELECT count(pg_advisory_xact_lock(hashtextextended('upstream:' || k, 0))) AS n FROM (SELECT DISTINCT k FROM unnest($1::text[]) AS k ORDER BY k) AS s`,
    keys,
  );
}

export async function lockMergedType(tx: Tx, type: string): Promise<void> {
  await tx.$queryRawUnsafe(`SELECT count(pg_advisory_xact_lock(hashtextextended('aggregate:' || $1, 0))) AS n`, type);
}
