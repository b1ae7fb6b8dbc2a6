import type { Tx } from '../store/resourceRepository';
import { MERGED_TYPES } from './rules';

/**
 * Chooses the next batch of the outbox so that several workers (loops or processes) can run side by side
 * without tripping over each other (DESIGN §3: workers claim items with FOR UPDATE SKIP LOCKED):
 * - lanes: the items one write transaction enqueued share a lane (a bundle's Patient, Encounters and
 *   Observations refer to one another). A lane is worked on by one transaction at a time (a try-lock on
 *   it), so two workers take two bundles rather than two halves of one that wait for each other;
 * - merged types first: a lane's Patients, Organizations and Practitioners are claimed in a batch of their
 *   own, which commits quickly and so holds the merged types' locks only briefly; the lane's copies come
 *   in the next batch and find their targets aggregated.
 * Lanes are chosen oldest first, as many as make one batch.
 */
export interface OutboxItem {
  id: bigint;
  store: string;
  type: string;
  res_id: string;
  attempts: number;
}

const READY = 'NOT parked AND available_at <= clock_timestamp()';
/**
 * How many of the oldest ready items the lanes are chosen among: enough that one big bundle's lane, which
 * its worker holds for a while, cannot hide every other lane behind it (backpressure keeps the whole queue
 * about this size).
 */
const HEAD_WINDOW = 2000;
const MERGED = Object.keys(MERGED_TYPES);

export async function claimBatch(tx: Tx, batchSize: number): Promise<OutboxItem[]> {
  const heads = await tx.query<{ lane: string; n: number }[]>(
    `SELECT lane::text AS lane, count(*)::int AS n FROM (SELECT lane, id FROM agg_outbox WHERE ${READY} ORDER BY id LIMIT $1) w
      GROUP BY lane ORDER BY min(id)`,
    Math.max(HEAD_WINDOW, batchSize * 20),
  );
  const lanes: string[] = [];
  let claimed = 0;
  // Lanes another worker holds are skipped; a few statements at most, since each takes a batch's worth.
  for (let start = 0; start < heads.length && claimed < batchSize;) {
    const chunk: string[] = [];
    for (let need = batchSize - claimed; start < heads.length && need > 0; start++) {
      chunk.push(heads[start].lane);
      need -= heads[start].n;
    }
    const held = await tx.query<{ lane: string }[]>(
      `SELECT u.lane::text AS lane FROM unnest($1::bigint[]) WITH ORDINALITY AS u(lane, o)
        WHERE pg_try_advisory_xact_lock(hashtextextended('lane:' || u.lane, 0)) ORDER BY u.o`,
      chunk,
    );
    const size = new Map(heads.map((h) => [h.lane, h.n]));
    for (const { lane } of held) {
      lanes.push(lane);
      claimed += size.get(lane) ?? 0;
    }
  }
  if (!lanes.length) return [];
  const claim = (merged: boolean) =>
    tx.query<OutboxItem[]>(
      `SELECT id, store, type, res_id, attempts FROM agg_outbox
        WHERE lane = ANY($1::bigint[]) AND ${READY} AND ${merged ? '' : 'NOT '}(type = ANY($2::text[]))
        ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED`,
      lanes,
      MERGED,
      batchSize,
    );
  const merged = await claim(true);
  return merged.length ? merged : claim(false);
}
