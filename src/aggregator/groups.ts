import { randomUUID } from 'node:crypto';
import { stringifyStoredJson } from '../fhir/losslessJson';
import type { Resource } from '../fhir/types';
import type { ResourceRepository, Tx } from '../store/resourceRepository';
import type { AggregatedIds } from './aggregatedIds';
import { enqueueDependents, setWaiting } from './dependents';
import { AGGREGATED_STORE } from './outbox';
import { contentKey, groupKeys, keepFirstIdentifierExtensions, type Member, mergeGroup } from './rules';
import type { Upstream, UpstreamRef } from './upstream';

/**
 * Merged types (DESIGN §3.4–3.5, §3.8): grouping by identity keys (transitively), merging a group into one
 * aggregated resource, and keeping aggregated ids stable — the oldest id survives a merge of groups, the
 * absorbed Patient answers with a `replaced-by` link, a group that splits keeps its id on the part holding
 * its earliest member, and a group without members is deleted. Every upstream member whose aggregated id
 * changes has its dependents re-aggregated, so references follow.
 *
 * Callers hold the merged type's lock (locks.ts) for the whole transaction.
 */
interface MemberRow {
  store: string;
  res_id: string;
  agg_id: string;
  content: Resource;
  upstream_updated: Date;
  joined_at: Date;
  /** The group it joined before merges of groups moved it (see regroup). */
  home_id: string;
}

export class Groups {
  constructor(
    private readonly repo: ResourceRepository,
    private readonly ids: AggregatedIds,
  ) {}

  /** Adds (or updates) an included member, given in R4 form with aggregated references. */
  async join(tx: Tx, upstream: Upstream, prepared: Resource, dependsOn: string[]): Promise<void> {
    const { store, type, id } = upstream;
    const [previous] = await tx.query<{ agg_id: string; content: Resource | null }[]>(
      `SELECT agg_id, content FROM agg_member WHERE store = $1 AND type = $2 AND res_id = $3 AND status = 'included'`,
      store,
      type,
      id,
    );
    const resource = type === 'Organization' ? keepFirstIdentifierExtensions(previous?.content ?? undefined, prepared) : prepared;
    const keys = [...new Set(groupKeys(resource))];
    const matched = await tx.query<{ agg_id: string }[]>(
      `SELECT DISTINCT k.agg_id FROM agg_key k WHERE k.type = $1 AND k.key = ANY($2::text[]) AND NOT (k.store = $3 AND k.res_id = $4)`,
      type,
      keys,
      store,
      id,
    );
    const candidates = [...new Set([...matched.map((m) => m.agg_id), ...(previous ? [previous.agg_id] : [])])];
    const moved: UpstreamRef[] = [];
    let survivor: string;
    if (!candidates.length) {
      survivor = randomUUID();
      await tx.execute(`INSERT INTO agg_group (type, agg_id) VALUES ($1, $2)`, type, survivor);
    } else {
      // The oldest aggregated id survives a merge of groups.
      const groups = await tx.query<{ agg_id: string }[]>(
        `SELECT agg_id FROM agg_group WHERE type = $1 AND agg_id = ANY($2::text[]) ORDER BY created_at, agg_id`,
        type,
        candidates,
      );
      survivor = groups[0]?.agg_id ?? candidates[0];
      for (const absorbed of candidates.filter((c) => c !== survivor && matched.some((m) => m.agg_id === c))) {
        moved.push(...(await this.absorb(tx, type, absorbed, survivor)));
      }
    }
    await tx.execute(`DELETE FROM agg_key WHERE store = $1 AND type = $2 AND res_id = $3`, store, type, id);
    if (keys.length) {
      await tx.execute(`INSERT INTO agg_key (type, key, store, res_id, agg_id) SELECT $1, k, $2, $3, $4 FROM unnest($5::text[]) AS k`, type, store, id, survivor, keys);
    }
    await tx.execute(
      `INSERT INTO agg_member (store, type, res_id, status, agg_id, content, upstream_updated, depends_on, home_id)
       VALUES ($1, $2, $3, 'included', $4, $5::jsonb, $6::timestamptz, $7::text[], $4)
       ON CONFLICT (store, type, res_id) DO UPDATE SET status = 'included', reason = NULL, rule = NULL, target_type = NULL, expression = NULL, agg_id = $4, content = $5::jsonb,
         upstream_updated = $6::timestamptz, depends_on = $7::text[], updated_at = clock_timestamp(),
         home_id = CASE WHEN agg_member.agg_id IS NOT DISTINCT FROM $4 THEN coalesce(agg_member.home_id, $4) ELSE $4 END`,
      store,
      type,
      id,
      survivor,
      stringifyStoredJson(resource),
      upstream.lastUpdated.toISOString(),
      dependsOn,
    );
    await setWaiting(tx, [{ ref: upstream }]);
    moved.push(...(await this.regroup(tx, type, survivor)));
    if (previous && previous.agg_id !== survivor) moved.push(...(await this.regroup(tx, type, previous.agg_id)));
    // This member's own id changed, or (a Patient) the source organisation of its resources did.
    const managing = (r: Resource | null | undefined) => (r?.managingOrganization as { reference?: string } | undefined)?.reference;
    if (previous && (previous.agg_id !== survivor || (type === 'Patient' && managing(previous.content) !== managing(resource)))) moved.push(upstream);
    await enqueueDependents(tx, { changed: moved, arrived: previous ? [] : [upstream] });
  }

  /** Takes a member that was included out of its group (deleted upstream, or now excluded). */
  async leave(tx: Tx, member: UpstreamRef, aggId: string): Promise<void> {
    await tx.execute(`DELETE FROM agg_key WHERE store = $1 AND type = $2 AND res_id = $3`, member.store, member.type, member.id);
    const moved = await this.regroup(tx, member.type, aggId);
    await enqueueDependents(tx, { changed: [member, ...moved] });
  }

  /** Moves every member of `absorbed` into `survivor`; the absorbed id keeps answering (DESIGN §3.8). */
  private async absorb(tx: Tx, type: string, absorbed: string, survivor: string): Promise<UpstreamRef[]> {
    this.ids.reset();
    await tx.execute(`UPDATE agg_key SET agg_id = $3 WHERE type = $1 AND agg_id = $2`, type, absorbed, survivor);
    const moved = await tx.query<{ store: string; res_id: string }[]>(
      `UPDATE agg_member SET agg_id = $3 WHERE type = $1 AND agg_id = $2 AND status = 'included' RETURNING store, res_id`,
      type,
      absorbed,
      survivor,
    );
    await tx.execute(`UPDATE agg_group SET replaced_by = $3 WHERE type = $1 AND (agg_id = $2 OR replaced_by = $2)`, type, absorbed, survivor);
    if (type === 'Patient') {
      await tx.execute(`UPDATE agg_access SET patient_id = $2 WHERE patient_id = $1`, absorbed, survivor);
      const stub: Resource = { resourceType: 'Patient', active: false, link: [{ other: { reference: `Patient/${survivor}` }, type: 'replaced-by' }] };
      const pk = await this.write(tx, 'Patient', absorbed, stub);
      // Whoever may see the surviving Patient may follow the link to it.
      const customers = await tx.query<{ customer_id: string }[]>(
        `SELECT DISTINCT e.customer_id FROM agg_member m JOIN endpoint e ON e.id = m.store WHERE m.type = 'Patient' AND m.agg_id = $1 AND m.status = 'included'`,
        survivor,
      );
      await this.setAccess(
        tx,
        pk,
        'patient',
        survivor,
        customers.map((c) => c.customer_id),
      );
    } else {
      await this.repo.delete(AGGREGATED_STORE, type, absorbed, tx);
    }
    return moved.map((m) => ({ store: m.store, type, id: m.res_id }));
  }

  /**
   * Re-merges a group from its members' R4 forms. Members that no longer share keys split off: the part
   * holding the earliest-joined member keeps the id; another part takes back the id of a group that was
   * absorbed into this one, when it holds that group's members (the oldest such id; the absorbed id then
   * stops answering `replaced-by` and points at its own members again), else it gets a new id. No members →
   * deleted (410). Returns the members that moved to another id.
   */
  private async regroup(tx: Tx, type: string, aggId: string): Promise<UpstreamRef[]> {
    const members = await tx.query<MemberRow[]>(
      `SELECT store, res_id, agg_id, content, upstream_updated, joined_at, coalesce(home_id, agg_id) AS home_id
         FROM agg_member WHERE type = $1 AND agg_id = $2 AND status = 'included' ORDER BY joined_at, store, res_id`,
      type,
      aggId,
    );
    if (!members.length) {
      await this.repo.delete(AGGREGATED_STORE, type, aggId, tx);
      return [];
    }
    const components = this.components(members);
    const moved: UpstreamRef[] = [];
    if (components.length > 1) this.ids.reset();
    // Groups absorbed into this one (directly or through another), oldest first.
    const absorbed =
      components.length > 1
        ? await tx.query<{ agg_id: string }[]>(`SELECT agg_id FROM agg_group WHERE type = $1 AND replaced_by = $2 ORDER BY created_at, agg_id`, type, aggId)
        : [];
    for (let i = 1; i < components.length; i++) {
      const homes = new Set(components[i].map((m) => m.home_id));
      const own = absorbed.map((g) => g.agg_id).filter((id) => homes.has(id));
      let id: string;
      if (own.length) {
        // The part takes back its oldest absorbed id; its other absorbed ids now point at that one.
        id = own[0];
        await tx.execute(`UPDATE agg_group SET replaced_by = NULL WHERE type = $1 AND agg_id = $2`, type, id);
        await tx.execute(`UPDATE agg_group SET replaced_by = $3 WHERE type = $1 AND agg_id = ANY($2::text[])`, type, own.slice(1), id);
      } else {
        id = randomUUID();
        await tx.execute(`INSERT INTO agg_group (type, agg_id) VALUES ($1, $2)`, type, id);
      }
      for (const m of components[i]) {
        await tx.execute(
          `UPDATE agg_member SET agg_id = $4, home_id = CASE WHEN home_id = ANY($5::text[]) THEN home_id ELSE $4 END WHERE store = $1 AND type = $2 AND res_id = $3`,
          m.store,
          type,
          m.res_id,
          id,
          own,
        );
        await tx.execute(`UPDATE agg_key SET agg_id = $4 WHERE store = $1 AND type = $2 AND res_id = $3`, m.store, type, m.res_id, id);
        moved.push({ store: m.store, type, id: m.res_id });
      }
      await this.writeGroup(tx, type, id, components[i]);
    }
    await this.writeGroup(tx, type, aggId, components[0]);
    return moved;
  }

  private components(members: MemberRow[]): MemberRow[][] {
    const keysOf = members.map((m) => new Set(groupKeys(m.content)));
    const parent = members.map((_, i) => i);
    const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i])));
    for (let i = 0; i < members.length; i++) {
      for (let j = i + 1; j < members.length; j++) {
        if ([...keysOf[i]].some((k) => keysOf[j].has(k))) parent[find(j)] = find(i);
      }
    }
    const groups = new Map<number, MemberRow[]>();
    members.forEach((m, i) => groups.set(find(i), [...(groups.get(find(i)) ?? []), m]));
    // Members are ordered by joined_at, so the first component holds the earliest member.
    return [...groups.values()];
  }

  private async writeGroup(tx: Tx, type: string, aggId: string, members: MemberRow[]): Promise<void> {
    const list: Member[] = members.map((m) => ({ resource: m.content, lastUpdated: new Date(m.upstream_updated).toISOString(), store: m.store, id: m.res_id }));
    const pk = await this.write(tx, type, aggId, mergeGroup(type, list));
    const customers = await tx.query<{ customer_id: string }[]>(`SELECT DISTINCT customer_id FROM endpoint WHERE id = ANY($1::text[])`, [...new Set(members.map((m) => m.store))]);
    await this.setAccess(
      tx,
      pk,
      type === 'Patient' ? 'patient' : 'shared',
      type === 'Patient' ? aggId : null,
      customers.map((c) => c.customer_id),
    );
  }

  /** Writes an aggregated resource when its content changed (so versions move only then); returns its row pk. */
  private async write(tx: Tx, type: string, id: string, resource: Resource): Promise<bigint> {
    const current = await this.repo.find(AGGREGATED_STORE, type, id, tx);
    if (current && !current.deleted && current.resource && contentKey(current.resource) === contentKey({ ...resource, id })) return current.pk;
    const { stored } = await this.repo.update(AGGREGATED_STORE, { ...resource, id }, {}, tx);
    return stored.pk;
  }

  private async setAccess(tx: Tx, pk: bigint, kind: 'patient' | 'shared', patientId: string | null, customers: string[]): Promise<void> {
    await tx.execute(
      `INSERT INTO agg_access (resource_pk, kind, patient_id, source_customers) VALUES ($1::bigint, $2, $3, $4::text[])
       ON CONFLICT (resource_pk) DO UPDATE SET kind = $2, patient_id = $3, source_org = NULL, source_customers = $4::text[], label = NULL`,
      String(pk),
      kind,
      patientId,
      customers,
    );
  }
}
