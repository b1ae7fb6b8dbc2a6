import type { Tx } from '../store/resourceRepository';

/**
 * Transaction-scoped advisory locks that let several workers (loops or processes) share the queue:
 * - one per upstream resource being aggregated, so two workers never compute the same resource at once
 *   (which could give it two aggregated copies);
 * - one per merged type, so groups of that type change one transaction at a time and concurrent workers
 *   cannot split or double a group.
 * Aggregation never waits for one: a worker takes what it can and defers the rest (see Deferred), so no
 * worker holds a lock while waiting for another's and there is no deadlock to detect or time out.
 */
export class Deferred extends Error {
  constructor(readonly reason: string) {
    super(`deferred: ${reason}`);
  }
}

/** The keys of `keys` whose upstream lock this transaction now holds (already held ones included). */
export async function tryLockUpstream(tx: Tx, keys: string[]): Promise<Set<string>> {
  if (!keys.length) return new Set();
  const rows = await tx.query<{ k: string }[]>(
    `SELECT k FROM (SELECT DISTINCT k FROM unnest($1::text[]) AS k ORDER BY k) AS s WHERE pg_try_advisory_xact_lock(hashtextextended('upstream:' || k, 0))`,
    keys,
  );
  return new Set(rows.map((r) => r.k));
}

/** Takes the lock of a merged type, or throws Deferred when another worker is changing its groups. */
export async function lockMergedType(tx: Tx, type: string): Promise<void> {
  const [row] = await tx.query<{ ok: boolean }[]>(`SELECT pg_try_advisory_xact_lock(hashtextextended('aggregate:' || $1, 0)) AS ok`, type);
  if (!row.ok) throw new Deferred(`another worker is changing ${type} groups`);
}
