import type { Tx } from '../store/resourceRepository';
import { Deferred, tryLockUpstream } from './locks';
import { MERGED_TYPES } from './rules';
import { keyOf, type UpstreamRef } from './upstream';

/**
 * What an upstream reference target stands for in the aggregated record: the aggregated id (following a
 * merged group's `replaced-by`), or why there is none. For a Patient, also its managingOrganization as the
 * aggregated `Organization/id` (the source organisation of the resources that belong to it, DESIGN §3.7).
 */
export interface Resolution {
  id?: string;
  why?: string;
  managingOrganization?: string;
  /** Another worker holds the target (it is being aggregated right now): try again shortly. */
  deferred?: string;
}

/** Aggregates an upstream resource now (a target whose own work item has not been processed yet). */
export type AggregateNow = (tx: Tx, ref: UpstreamRef, depth: number) => Promise<void>;

const MERGED = Object.keys(MERGED_TYPES);

/** How deep "aggregate the target first" may recurse (a chain of not-yet-aggregated targets). */
export const MAX_DEPTH = 4;

/**
 * Batched look-ups of aggregated ids: one query for every target of a batch, with a per-batch cache
 * (a bundle's resources share their patient, encounter and organisations). Only answers with an id are
 * cached, and the cache is dropped whenever a group changes ids.
 */
export class AggregatedIds {
  private readonly cache = new Map<string, Resolution>();

  constructor(private readonly aggregateNow: AggregateNow) {}

  reset(): void {
    this.cache.clear();
  }

  forget(ref: UpstreamRef): void {
    this.cache.delete(keyOf(ref));
  }

  /**
   * Resolutions of `targets` (`Type/id` on endpoint `store`), keyed by `Type/id`. A target that exists
   * upstream but has not been aggregated yet is aggregated first, in this transaction, up to MAX_DEPTH —
   * unless another worker holds it, in which case its resolution says `deferred`.
   */
  async resolve(tx: Tx, store: string, targets: string[], depth: number): Promise<Map<string, Resolution>> {
    const out = new Map<string, Resolution>();
    const wanted: UpstreamRef[] = [];
    for (const target of new Set(targets)) {
      const [type, id] = target.split('/');
      const hit = this.cache.get(keyOf({ store, type, id }));
      if (hit) out.set(target, hit);
      else wanted.push({ store, type, id });
    }
    if (!wanted.length) return out;
    let rows = await this.lookup(tx, wanted);
    const pending = rows.filter((r) => r.pending);
    const deferred = new Map<string, string>();
    if (pending.length && depth < MAX_DEPTH) {
      const locked = await tryLockUpstream(tx, pending.map(keyOf));
      for (const p of pending) {
        if (!locked.has(keyOf(p))) {
          deferred.set(keyOf(p), `${p.type}/${p.id} is being aggregated by another worker`);
          continue;
        }
        try {
          await this.aggregateNow(tx, p, depth + 1);
        } catch (err) {
          if (!(err instanceof Deferred)) throw err;
          deferred.set(keyOf(p), err.reason);
        }
      }
      const again = new Map((await this.lookup(tx, pending)).map((r) => [keyOf(r), r]));
      rows = rows.map((r) => again.get(keyOf(r)) ?? r);
    }
    for (const row of rows) {
      let answer: Resolution;
      const later = deferred.get(keyOf(row));
      if (later && row.status === null) answer = { deferred: later };
      else if (row.status === null) answer = { why: row.pending ? 'not aggregated yet' : 'no such resource on this endpoint' };
      else if (row.status !== 'included' || !row.agg_id) answer = { why: row.reason ?? 'excluded' };
      else answer = { id: row.replaced_by ?? row.agg_id, ...(row.managing ? { managingOrganization: row.managing } : {}) };
      if (answer.id) this.cache.set(keyOf(row), answer);
      out.set(`${row.type}/${row.id}`, answer);
    }
    return out;
  }

  private lookup(tx: Tx, refs: UpstreamRef[]) {
    return tx.query<
      {
        store: string;
        type: string;
        id: string;
        status: string | null;
        agg_id: string | null;
        reason: string | null;
        replaced_by: string | null;
        managing: string | null;
        pending: boolean;
      }[]
    >(
      `SELECT t.store, t.type, t.id, m.status, m.agg_id, m.reason, g.replaced_by,
              CASE WHEN t.type = 'Patient' THEN m.content->'managingOrganization'->>'reference' END AS managing,
              (m.status IS NULL AND EXISTS (SELECT 1 FROM resource r WHERE r.store = t.store AND r.type = t.type AND r.id = t.id AND r.content IS NOT NULL)) AS pending
         FROM unnest($1::text[], $2::text[], $3::text[]) AS t(store, type, id)
         LEFT JOIN agg_member m ON m.store = t.store AND m.type = t.type AND m.res_id = t.id
         LEFT JOIN agg_group g ON g.type = m.type AND g.agg_id = CASE WHEN m.type = ANY($4::text[]) THEN m.agg_id END`,
      refs.map((r) => r.store),
      refs.map((r) => r.type),
      refs.map((r) => r.id),
      // Only merged types have groups: for the others the key is null, which the index answers without a probe.
      MERGED,
    );
  }
}
