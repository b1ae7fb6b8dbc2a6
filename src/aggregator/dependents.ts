import type { Tx } from '../store/resourceRepository';
import { keyOf, type UpstreamRef } from './upstream';

/**
 * Re-aggregation of dependents (DESIGN §3.6, §3.8): an upstream resource whose aggregated identity changed —
 * it was aggregated for the first time, excluded or deleted, moved to another group by a merge or split, or
 * (a Patient) changed its managingOrganization — gets the upstream resources that used it (recorded in
 * `agg_member.depends_on`) queued again, so references never keep pointing at an absorbed or deleted id and
 * a resource excluded because its target had not arrived yet is aggregated once it has.
 * `except` are resources being aggregated in the same pass, already consistent with the change.
 */
export async function enqueueDependents(tx: Tx, changed: UpstreamRef[], except: UpstreamRef[] = []): Promise<void> {
  if (!changed.length) return;
  const skip = new Set(except.map(keyOf));
  const unique = [...new Map(changed.map((c) => [keyOf(c), c])).values()];
  await tx.$executeRawUnsafe(
    `INSERT INTO agg_outbox (store, type, res_id)
     SELECT DISTINCT m.store, m.type, m.res_id
       FROM unnest($1::text[], $2::text[]) AS t(store, ref)
       JOIN agg_member m ON m.depends_on @> ARRAY[t.ref] AND m.store = t.store
      WHERE m.depends_on && $2::text[] AND NOT ((m.store || '|' || m.type || '|' || m.res_id) = ANY($3::text[]))`,
    unique.map((c) => c.store),
    unique.map((c) => `${c.type}/${c.id}`),
    [...skip],
  );
}
