import type { Tx } from '../store/resourceRepository';
import { keyOf, type UpstreamRef } from './upstream';

/**
 * Re-aggregation of dependents (DESIGN §3.6, §3.8): upstream resources that used another one are queued
 * again when it changes, so references never keep pointing at an absorbed or deleted id and a resource
 * excluded because its target had not arrived yet is aggregated once it has.
 * - `changed`: the aggregated identity of these moved — excluded or deleted, moved to another group by a
 *   merge or split, or (a Patient) a new managingOrganization — so every member whose `depends_on` names
 *   one is queued;
 * - `arrived`: these were included for the first time, so only members waiting for them (agg_waiting,
 *   see `setWaiting`) can be affected: anything included already found them aggregated. This is the
 *   common case, one per new resource.
 * `except` are resources being aggregated in the same pass, already consistent with the change.
 */
export interface DependentChanges {
  changed?: UpstreamRef[];
  arrived?: UpstreamRef[];
  except?: UpstreamRef[];
}

const unique = (refs: UpstreamRef[]) => [...new Map(refs.map((c) => [keyOf(c), c])).values()];

export async function enqueueDependents(tx: Tx, { changed = [], arrived = [], except = [] }: DependentChanges): Promise<void> {
  const skip = [...new Set(except.map(keyOf))];
  const targets = (refs: UpstreamRef[]) => [refs.map((c) => c.store), refs.map((c) => `${c.type}/${c.id}`)];
  const moved = unique(changed);
  if (moved.length) {
    // One index probe per target (OFFSET 0 keeps the planner from turning the probes into one scan); the
    // store is compared outside, so no other index joins the probe.
    await tx.execute(
      `INSERT INTO agg_outbox (store, type, res_id)
       SELECT DISTINCT m.store, m.type, m.res_id
         FROM unnest($1::text[], $2::text[]) AS t(store, ref)
         CROSS JOIN LATERAL (SELECT store, type, res_id FROM agg_member WHERE depends_on @> ARRAY[t.ref] OFFSET 0) m
        WHERE m.store = t.store AND NOT ((m.store || '|' || m.type || '|' || m.res_id) = ANY($3::text[]))`,
      ...targets(moved),
      skip,
    );
  }
  const fresh = unique(arrived);
  if (fresh.length) {
    await tx.execute(
      `WITH woken AS (
         DELETE FROM agg_waiting w USING unnest($1::text[], $2::text[]) AS t(store, target)
          WHERE w.store = t.store AND w.target = t.target RETURNING w.store, w.type, w.res_id)
       INSERT INTO agg_outbox (store, type, res_id)
       SELECT DISTINCT store, type, res_id FROM woken WHERE NOT ((store || '|' || type || '|' || res_id) = ANY($3::text[]))`,
      ...targets(fresh),
      skip,
    );
  }
}

/**
 * Records what each member waits for: `target` (`Type/id`) when it was excluded because that target is
 * missing or excluded, none otherwise. Replaces what the member waited for before.
 */
export async function setWaiting(tx: Tx, members: { ref: UpstreamRef; target?: string }[]): Promise<void> {
  if (!members.length) return;
  const waits = members.filter((m) => m.target);
  await tx.execute(
    `WITH waits AS (
       INSERT INTO agg_waiting (store, target, type, res_id)
       SELECT * FROM unnest($5::text[], $6::text[], $7::text[], $8::text[]) ON CONFLICT DO NOTHING)
     DELETE FROM agg_waiting w USING unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(store, type, id, target)
      WHERE w.store = u.store AND w.type = u.type AND w.res_id = u.id AND w.target IS DISTINCT FROM u.target`,
    members.map((m) => m.ref.store),
    members.map((m) => m.ref.type),
    members.map((m) => m.ref.id),
    members.map((m) => m.target ?? null),
    waits.map((m) => m.ref.store),
    waits.map((m) => m.target as string),
    waits.map((m) => m.ref.type),
    waits.map((m) => m.ref.id),
  );
}
