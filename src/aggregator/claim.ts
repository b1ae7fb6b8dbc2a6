import type { Tx } from '../store/resourceRepository';
import { fairShares } from './fairShares';
import { MERGED_TYPES } from './rules';

/**
 * Chooses the next batch of the outbox so that several workers (loops or processes) can run side by side
 * without tripping over each other (DESIGN §3: workers claim items with FOR UPDATE SKIP LOCKED), and so
 * that one endpoint's bulk load cannot hold back another endpoint's single write:
 * - lanes: the items one write transaction enqueued share a lane (a bundle's Patient, Encounters and
 *   Observations refer to one another). A lane is worked on by one transaction at a time (a try-lock on
 *   it), so two workers take two bundles rather than two halves of one that wait for each other;
 * - merged types first: a lane's Patients, Organizations and Practitioners are claimed in a batch of their
 *   own, which commits quickly and so holds the merged types' locks only briefly; the lane's copies come
 *   in a later batch and find their targets aggregated. A batch is therefore of one kind, merged or copies;
 * - fair shares: a batch is shared among the endpoints (stores) with ready lanes of its kind, each getting
 *   an equal share of what the others leave (max-min fairness, see fairShares.ts), and each endpoint's share
 *   goes to its own lanes oldest first. When the endpoints' oldest lanes want both kinds, the kind
 *   alternates from batch to batch (`prefer`), so neither a stream of new bundles (whose Patients come
 *   first) nor a stream of single copies keeps the other kind waiting for more than about a batch.
 * Lanes are chosen among the oldest ready items only (`HEAD_WINDOW`).
 */
export interface OutboxItem {
  id: bigint;
  store: string;
  type: string;
  res_id: string;
  attempts: number;
}

/** What a batch holds: merged types only, or copies only. */
export type BatchKind = 'merged' | 'copies';

export interface ClaimedBatch {
  kind: BatchKind;
  items: OutboxItem[];
}

/** A lane in the head window: its store (the endpoint whose write enqueued it) and its ready items of each kind. */
interface Head {
  lane: string;
  store: string;
  merged: number;
  copies: number;
}

const READY = 'NOT parked AND available_at <= clock_timestamp()';
/**
 * How many of the oldest ready items the lanes are chosen among: enough that one big bundle's lane, which
 * its worker holds for a while, cannot hide every other lane behind it (backpressure keeps the whole queue
 * about this size).
 */
const HEAD_WINDOW = 2000;
/** Rounds of lane try-locks per kind: each round offers the shares of the lanes other workers held to the rest. */
const LOCK_ROUNDS = 4;
const MERGED = Object.keys(MERGED_TYPES);

export async function claimBatch(tx: Tx, batchSize: number, prefer: BatchKind = 'copies'): Promise<ClaimedBatch> {
  const heads = await tx.query<Head[]>(
    `SELECT lane::text AS lane, min(store) AS store,
            count(*) FILTER (WHERE type = ANY($2::text[]))::int AS merged, count(*) FILTER (WHERE NOT (type = ANY($2::text[])))::int AS copies
       FROM (SELECT lane, id, store, type FROM agg_outbox WHERE ${READY} ORDER BY id LIMIT $1) w
      GROUP BY lane ORDER BY min(id)`,
    Math.max(HEAD_WINDOW, batchSize * 20),
    MERGED,
  );
  if (!heads.length) return { kind: prefer, items: [] };
  // Each store's oldest lane says what that store needs next; a lane's copies wait for its merged types.
  const wanted = new Set<BatchKind>();
  const seen = new Set<string>();
  for (const h of heads) {
    if (seen.has(h.store)) continue;
    seen.add(h.store);
    wanted.add(h.merged > 0 ? 'merged' : 'copies');
  }
  const other: BatchKind = prefer === 'merged' ? 'copies' : 'merged';
  const first = wanted.has(prefer) || !wanted.has(other) ? prefer : other;
  for (const kind of [first, first === 'merged' ? 'copies' : 'merged'] as BatchKind[]) {
    const items = await claimKind(tx, heads, kind, batchSize);
    if (items.length) return { kind, items };
  }
  return { kind: first, items: [] };
}

/** Locks lanes of one kind by fair shares, then claims up to each locked lane's share of its ready items. */
async function claimKind(tx: Tx, heads: Head[], kind: BatchKind, batchSize: number): Promise<OutboxItem[]> {
  const size = (h: Head) => (kind === 'merged' ? h.merged : h.copies);
  // A lane still holding merged items gives no copies yet.
  let candidates = heads.filter((h) => size(h) > 0 && (kind === 'merged' || h.merged === 0));
  const locked = new Map<string, number>();
  let budget = batchSize;
  for (let round = 0; round < LOCK_ROUNDS && budget > 0 && candidates.length; round++) {
    const shares = laneShares(candidates, size, budget);
    const offered = candidates.filter((h) => shares.has(h.lane));
    // Lanes another worker holds are skipped; their shares go to the others in the next round.
    const held = await tx.query<{ lane: string }[]>(
      `SELECT u.lane::text AS lane FROM unnest($1::bigint[]) WITH ORDINALITY AS u(lane, o)
        WHERE pg_try_advisory_xact_lock(hashtextextended('lane:' || u.lane, 0)) ORDER BY u.o`,
      offered.map((h) => h.lane),
    );
    for (const { lane } of held) {
      const share = shares.get(lane) ?? 0;
      locked.set(lane, share);
      budget -= share;
    }
    const tried = new Set(offered.map((h) => h.lane));
    candidates = candidates.filter((h) => !tried.has(h.lane));
  }
  if (!locked.size) return [];
  return tx.query<OutboxItem[]>(
    `SELECT o.id, o.store, o.type, o.res_id, o.attempts
       FROM unnest($1::bigint[], $2::int[]) AS u(lane, share)
       CROSS JOIN LATERAL (
         SELECT id, store, type, res_id, attempts FROM agg_outbox
          WHERE lane = u.lane AND ${READY} AND ${kind === 'merged' ? '' : 'NOT '}(type = ANY($3::text[]))
          ORDER BY id LIMIT u.share FOR UPDATE SKIP LOCKED) o
      ORDER BY o.id`,
    [...locked.keys()],
    [...locked.values()],
    MERGED,
  );
}

/**
 * How many items each lane may give: the budget is shared fairly among the stores, and each store's share
 * among its lanes oldest first (`heads` is in age order). Lanes that get nothing are left out.
 */
function laneShares(heads: Head[], size: (h: Head) => number, budget: number): Map<string, number> {
  const demand = new Map<string, number>();
  for (const h of heads) demand.set(h.store, (demand.get(h.store) ?? 0) + size(h));
  const left = fairShares(demand, budget);
  const shares = new Map<string, number>();
  for (const h of heads) {
    const share = Math.min(size(h), left.get(h.store) ?? 0);
    if (share <= 0) continue;
    shares.set(h.lane, share);
    left.set(h.store, (left.get(h.store) ?? 0) - share);
  }
  return shares;
}
