import { randomUUID } from 'node:crypto';
import { readR4Definition } from '../fhir/definitions';
import { OperationOutcomeError } from '../fhir/outcome';
import { compileExpression } from '../fhir/pathExpression';
import { searchParameter } from '../fhir/searchParameters';
import type { FhirVersion, Resource } from '../fhir/types';
import { assertValidResource } from '../fhir/validation';
import type { ResourceRepository, Tx } from '../store/resourceRepository';
import { AGGREGATED_STORE } from './outbox';
import {
  checkInclusion, contentKey, type Exclusion, groupKeys, MERGED_TYPES, type Member, mergeGroup, parseRelative, privacyLabel,
  referenceSites, SUPPORTED_TYPES, withSourceTracking,
} from './rules';
import { stu3ToR4 } from './stu3ToR4';

/**
 * Aggregates one upstream resource (DESIGN §3), inside the caller's transaction: map STU3 to R4, apply the
 * inclusion rules, point references at aggregated ids, then either copy it (with source tracking) or
 * join it to its group and re-merge the group. Idempotent: it always works from the current upstream state.
 */
interface Upstream {
  content: Resource | null;
  deleted: boolean;
  last_updated: Date;
  fhir_version: FhirVersion;
  default_source_org: string | null;
  customer_id: string;
}

interface MemberRow {
  store: string;
  res_id: string;
  agg_id: string;
  content: Resource;
  upstream_updated: Date;
  joined_at: Date;
}

const MAX_DEPTH = 4;
let patientParams: Map<string, string[]> | undefined;

/** The search parameters linking each type to its patient (the R4 Patient compartment). */
function patientCompartment(type: string): string[] {
  if (!patientParams) {
    patientParams = new Map();
    const def = readR4Definition<{ resource: { code: string; param?: string[] }[] }>('compartmentdefinition-patient.json');
    for (const r of def.resource) if (r.param) patientParams.set(r.code, r.param);
  }
  return patientParams.get(type) ?? [];
}

/** Upstream references to a Patient through the type's patient-compartment parameters. */
function patientReferences(resource: Resource): string[] {
  const out: string[] = [];
  for (const code of patientCompartment(resource.resourceType)) {
    const def = searchParameter(resource.resourceType, code);
    if (!def?.expression) continue;
    for (const v of compileExpression(def.expression)(resource)) {
      const ref = (v as { reference?: unknown })?.reference;
      if (typeof ref === 'string' && parseRelative(ref)?.type === 'Patient') out.push(ref);
    }
  }
  return out;
}

class Excluded extends Error {
  constructor(readonly exclusion: Exclusion) {
    super(exclusion.reason);
  }
}

export class Aggregator {
  readonly supported: ReadonlySet<string>;
  /**
   * Aggregated ids and patient → organisation answers already looked up in the current batch (a bundle's
   * resources share their patient, encounter and organisation). Cleared at every batch, every rolled-back
   * item, and whenever a group changes ids.
   */
  private readonly cache = new Map<string, { id?: string; why?: string }>();

  constructor(
    private readonly repo: ResourceRepository,
    supportedTypes: readonly string[] = SUPPORTED_TYPES,
  ) {
    this.supported = new Set(supportedTypes);
  }

  /** Forgets what the previous batch (or a rolled-back item) looked up. */
  resetCache(): void {
    this.cache.clear();
  }

  /** Brings the aggregated view up to date with the current state of one upstream resource. */
  async process(tx: Tx, store: string, type: string, id: string, depth = 0): Promise<void> {
    const [upstream] = await tx.$queryRawUnsafe<Upstream[]>(
      `SELECT r.content, r.deleted, r.last_updated, e.fhir_version, e.default_source_org, e.customer_id
         FROM resource r JOIN endpoint e ON e.id = r.store WHERE r.store = $1 AND r.type = $2 AND r.id = $3`,
      store, type, id,
    );
    if (!upstream || upstream.deleted || !upstream.content) {
      await this.removeMember(tx, store, type, id);
      return;
    }
    if (!this.supported.has(type)) {
      await this.exclude(tx, store, type, id, { reason: `${type} is not a type the aggregation supports` });
      return;
    }
    try {
      const resource = await this.prepare(tx, store, upstream, depth);
      if (MERGED_TYPES[type]) await this.joinGroup(tx, store, id, resource, upstream);
      else await this.copy(tx, store, id, resource, upstream);
    } catch (err) {
      if (!(err instanceof Excluded)) throw err;
      await this.exclude(tx, store, type, id, err.exclusion);
    }
  }

  /** R4 form with inclusion rules applied and references pointing at aggregated ids. */
  private async prepare(tx: Tx, store: string, upstream: Upstream, depth: number): Promise<Resource> {
    const raw = upstream.content as Resource;
    const r4 = upstream.fhir_version === 'STU3' ? stu3ToR4(raw) : structuredClone(raw);
    const { id: _id, meta, ...rest } = r4;
    const resource: Resource = { ...rest, ...(meta?.security || meta?.tag || meta?.profile ? { meta: { ...(meta.profile ? { profile: meta.profile } : {}), ...(meta.security ? { security: meta.security } : {}), ...(meta.tag ? { tag: meta.tag } : {}) } } : {}) };
    const exclusion = checkInclusion(resource, this.supported);
    if (exclusion) throw new Excluded(exclusion);
    for (const site of referenceSites(resource)) {
      const target = parseRelative(site.holder.reference as string) as { type: string; id: string };
      const aggId = await this.aggregatedIdOf(tx, store, target.type, target.id, depth);
      if (!aggId.id) throw new Excluded({ reason: `${site.expression} refers to ${target.type}/${target.id}, which is not in the aggregated record (${aggId.why})`, expression: site.expression });
      site.holder.reference = `${target.type}/${aggId.id}`;
    }
    try {
      assertValidResource('R4', { ...resource, id: 'x' });
    } catch (err) {
      if (!(err instanceof OperationOutcomeError)) throw err;
      throw new Excluded({ reason: `not valid R4 after mapping: ${err.message}` });
    }
    return resource;
  }

  /** The aggregated id of an upstream resource of the same endpoint, aggregating it first when needed. */
  private async aggregatedIdOf(tx: Tx, store: string, type: string, id: string, depth: number): Promise<{ id?: string; why?: string }> {
    const key = `${store}|${type}|${id}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    const lookup = () =>
      tx.$queryRawUnsafe<{ status: string; agg_id: string | null; reason: string | null; replaced_by: string | null }[]>(
        `SELECT m.status, m.agg_id, m.reason, g.replaced_by FROM agg_member m LEFT JOIN agg_group g ON g.type = m.type AND g.agg_id = m.agg_id
          WHERE m.store = $1 AND m.type = $2 AND m.res_id = $3`,
        store, type, id,
      );
    let [row] = await lookup();
    if (!row && depth < MAX_DEPTH) {
      // Not aggregated yet (its work item is still queued): do it now, in this transaction.
      await this.process(tx, store, type, id, depth + 1);
      [row] = await lookup();
    }
    let answer: { id?: string; why?: string };
    if (!row) answer = { why: 'no such resource on this endpoint' };
    else if (row.status !== 'included' || !row.agg_id) answer = { why: row.reason ?? 'excluded' };
    else answer = { id: row.replaced_by ?? row.agg_id };
    if (answer.id) this.cache.set(key, answer);
    return answer;
  }

  private async exclude(tx: Tx, store: string, type: string, id: string, exclusion: Exclusion): Promise<void> {
    await this.removeMember(tx, store, type, id);
    await tx.$executeRawUnsafe(
      `INSERT INTO agg_member (store, type, res_id, status, reason, expression) VALUES ($1, $2, $3, 'excluded', $4, $5)
       ON CONFLICT (store, type, res_id) DO UPDATE SET status = 'excluded', reason = $4, expression = $5, agg_id = NULL, content = NULL, updated_at = clock_timestamp()`,
      store, type, id, exclusion.reason, exclusion.expression ?? null,
    );
  }

  /** Takes an upstream resource's contribution out of the aggregated view (deleted or now excluded). */
  private async removeMember(tx: Tx, store: string, type: string, id: string): Promise<void> {
    const [member] = await tx.$queryRawUnsafe<{ status: string; agg_id: string | null }[]>(
      `DELETE FROM agg_member WHERE store = $1 AND type = $2 AND res_id = $3 RETURNING status, agg_id`, store, type, id,
    );
    this.cache.delete(`${store}|${type}|${id}`);
    if (!member || member.status !== 'included' || !member.agg_id) return;
    if (MERGED_TYPES[type]) {
      await this.lockType(tx, type);
      await tx.$executeRawUnsafe(`DELETE FROM agg_key WHERE store = $1 AND type = $2 AND res_id = $3`, store, type, id);
      await this.regroup(tx, type, member.agg_id);
    } else {
      await this.repo.delete(AGGREGATED_STORE, type, member.agg_id, tx);
    }
  }

  private async copy(tx: Tx, store: string, id: string, resource: Resource, upstream: Upstream): Promise<void> {
    const type = resource.resourceType;
    const raw = upstream.content as Resource;
    // Source organisation: the managingOrganization of the resource's patient, else the endpoint default.
    const upstreamPatient = patientReferences(raw).map((r) => parseRelative(r)?.id).find((x) => x !== undefined);
    let sourceOrg: string | undefined;
    if (upstreamPatient) {
      const key = `managing|${store}|${upstreamPatient}`;
      let managing = this.cache.get(key);
      if (!managing) {
        const [p] = await tx.$queryRawUnsafe<{ org: string | null }[]>(
          `SELECT content->'managingOrganization'->>'reference' AS org FROM resource WHERE store = $1 AND type = 'Patient' AND id = $2 AND NOT deleted`,
          store, upstreamPatient,
        );
        managing = { id: p?.org ?? undefined };
        this.cache.set(key, managing);
      }
      const org = managing.id ? parseRelative(managing.id) : undefined;
      if (org) sourceOrg = (await this.aggregatedIdOf(tx, store, 'Organization', org.id, MAX_DEPTH - 1)).id;
    }
    if (!sourceOrg && upstream.default_source_org) {
      const ref = parseRelative(upstream.default_source_org) ?? { type: 'Organization', id: upstream.default_source_org };
      sourceOrg = (await this.aggregatedIdOf(tx, store, 'Organization', ref.id, MAX_DEPTH - 1)).id ?? ref.id;
    }
    if (!sourceOrg) {
      throw new Excluded({ reason: "no source organisation: the resource's patient has no managingOrganization and the endpoint has no default source organisation" });
    }
    const patientId = patientReferences(resource).map((r) => parseRelative(r)?.id).find((x) => x !== undefined);
    const practitionerId = referenceSites(resource).map((s) => parseRelative(s.holder.reference as string)).find((t) => t?.type === 'Practitioner')?.id;
    const tracked = withSourceTracking(resource, { organization: sourceOrg, patient: patientId, practitioner: practitionerId });

    const [existing] = await tx.$queryRawUnsafe<{ agg_id: string | null }[]>(
      `SELECT agg_id FROM agg_member WHERE store = $1 AND type = $2 AND res_id = $3 AND status = 'included'`, store, type, id,
    );
    const aggId = existing?.agg_id ?? randomUUID();
    const pk = existing?.agg_id ? await this.write(tx, type, aggId, tracked) : (await this.repo.update(AGGREGATED_STORE, { ...tracked, id: aggId }, {}, tx)).stored.pk;
    await tx.$executeRawUnsafe(
      `INSERT INTO agg_access (resource_pk, kind, patient_id, source_org, source_customers, label) VALUES ($1::bigint, 'copied', $2, $3, $4::text[], $5)
       ON CONFLICT (resource_pk) DO UPDATE SET kind = 'copied', patient_id = $2, source_org = $3, source_customers = $4::text[], label = $5`,
      String(pk), patientId ?? null, sourceOrg, [upstream.customer_id], privacyLabel(resource) ?? null,
    );
    await this.upsertMember(tx, store, type, id, aggId, tracked, upstream.last_updated);
  }

  private async upsertMember(tx: Tx, store: string, type: string, id: string, aggId: string, content: Resource, updated: Date): Promise<void> {
    await tx.$executeRawUnsafe(
      `INSERT INTO agg_member (store, type, res_id, status, agg_id, content, upstream_updated) VALUES ($1, $2, $3, 'included', $4, $5::jsonb, $6::timestamptz)
       ON CONFLICT (store, type, res_id) DO UPDATE SET status = 'included', reason = NULL, expression = NULL, agg_id = $4, content = $5::jsonb,
         upstream_updated = $6::timestamptz, updated_at = clock_timestamp()`,
      store, type, id, aggId, JSON.stringify(content), updated.toISOString(),
    );
  }

  /** Writes an aggregated resource when its content changed; returns its row pk either way. */
  private async write(tx: Tx, type: string, id: string, resource: Resource): Promise<bigint> {
    const current = await this.repo.find(AGGREGATED_STORE, type, id, tx);
    if (current && !current.deleted && current.resource && contentKey(current.resource) === contentKey({ ...resource, id })) return current.pk;
    const { stored } = await this.repo.update(AGGREGATED_STORE, { ...resource, id }, {}, tx);
    return stored.pk;
  }

  private async lockType(tx: Tx, type: string): Promise<void> {
    // Groups of one type change under one lock: concurrent workers cannot split or double a group.
    await tx.$queryRawUnsafe(`SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtext($1))`, `aggregate:${type}`);
  }

  private async joinGroup(tx: Tx, store: string, id: string, resource: Resource, upstream: Upstream): Promise<void> {
    const type = resource.resourceType;
    await this.lockType(tx, type);
    const keys = [...new Set(groupKeys(resource))];
    const [previous] = await tx.$queryRawUnsafe<{ agg_id: string | null }[]>(
      `SELECT agg_id FROM agg_member WHERE store = $1 AND type = $2 AND res_id = $3 AND status = 'included'`, store, type, id,
    );
    const matched = await tx.$queryRawUnsafe<{ agg_id: string }[]>(
      `SELECT DISTINCT k.agg_id FROM agg_key k WHERE k.type = $1 AND k.key = ANY($2::text[]) AND NOT (k.store = $3 AND k.res_id = $4)`, type, keys, store, id,
    );
    const candidates = [...new Set([...matched.map((m) => m.agg_id), ...(previous?.agg_id ? [previous.agg_id] : [])])];
    let survivor: string;
    if (!candidates.length) {
      survivor = randomUUID();
      await tx.$executeRawUnsafe(`INSERT INTO agg_group (type, agg_id) VALUES ($1, $2)`, type, survivor);
    } else {
      // The oldest aggregated id survives a merge of groups.
      const groups = await tx.$queryRawUnsafe<{ agg_id: string }[]>(
        `SELECT agg_id FROM agg_group WHERE type = $1 AND agg_id = ANY($2::text[]) ORDER BY created_at, agg_id`, type, candidates,
      );
      survivor = groups[0]?.agg_id ?? candidates[0];
      for (const absorbed of candidates.filter((c) => c !== survivor && matched.some((m) => m.agg_id === c))) await this.absorb(tx, type, absorbed, survivor);
    }
    await tx.$executeRawUnsafe(`DELETE FROM agg_key WHERE store = $1 AND type = $2 AND res_id = $3`, store, type, id);
    if (keys.length) {
      await tx.$executeRawUnsafe(
        `INSERT INTO agg_key (type, key, store, res_id, agg_id) SELECT $1, k, $2, $3, $4 FROM unnest($5::text[]) AS k`, type, store, id, survivor, keys,
      );
    }
    await this.upsertMember(tx, store, type, id, survivor, resource, upstream.last_updated);
    await this.regroup(tx, type, survivor);
    if (previous?.agg_id && previous.agg_id !== survivor) await this.regroup(tx, type, previous.agg_id);
  }

  /** Moves every member of `absorbed` into `survivor`; the absorbed id keeps answering (DESIGN §3.8). */
  private async absorb(tx: Tx, type: string, absorbed: string, survivor: string): Promise<void> {
    this.cache.clear();
    await tx.$executeRawUnsafe(`UPDATE agg_key SET agg_id = $3 WHERE type = $1 AND agg_id = $2`, type, absorbed, survivor);
    await tx.$executeRawUnsafe(`UPDATE agg_member SET agg_id = $3 WHERE type = $1 AND agg_id = $2`, type, absorbed, survivor);
    await tx.$executeRawUnsafe(`UPDATE agg_group SET replaced_by = $3 WHERE type = $1 AND (agg_id = $2 OR replaced_by = $2)`, type, absorbed, survivor);
    if (type === 'Patient') {
      await tx.$executeRawUnsafe(`UPDATE agg_access SET patient_id = $2 WHERE patient_id = $1`, absorbed, survivor);
      const stub: Resource = { resourceType: 'Patient', active: false, link: [{ other: { reference: `Patient/${survivor}` }, type: 'replaced-by' }] };
      const pk = await this.write(tx, 'Patient', absorbed, stub);
      // Whoever may see the surviving Patient may follow the link to it.
      const customers = await tx.$queryRawUnsafe<{ customer_id: string }[]>(
        `SELECT DISTINCT e.customer_id FROM agg_member m JOIN endpoint e ON e.id = m.store WHERE m.type = 'Patient' AND m.agg_id = $1`, survivor,
      );
      await this.setAccess(tx, pk, 'patient', survivor, customers.map((c) => c.customer_id));
    } else {
      await this.repo.delete(AGGREGATED_STORE, type, absorbed, tx);
    }
  }

  private async setAccess(tx: Tx, pk: bigint, kind: 'patient' | 'shared', patientId: string | null, customers: string[]): Promise<void> {
    await tx.$executeRawUnsafe(
      `INSERT INTO agg_access (resource_pk, kind, patient_id, source_customers) VALUES ($1::bigint, $2, $3, $4::text[])
       ON CONFLICT (resource_pk) DO UPDATE SET kind = $2, patient_id = $3, source_org = NULL, source_customers = $4::text[], label = NULL`,
      String(pk), kind, patientId, customers,
    );
  }

  /**
   * Re-merges a group from its members' R4 forms. Members that no longer share keys split off: the part
   * holding the earliest-joined member keeps the id, the others get new ids. No members → deleted (410).
   */
  private async regroup(tx: Tx, type: string, aggId: string): Promise<void> {
    const members = await tx.$queryRawUnsafe<MemberRow[]>(
      `SELECT store, res_id, agg_id, content, upstream_updated, joined_at FROM agg_member WHERE type = $1 AND agg_id = $2 AND status = 'included' ORDER BY joined_at, store, res_id`,
      type, aggId,
    );
    if (!members.length) {
      await this.repo.delete(AGGREGATED_STORE, type, aggId, tx);
      return;
    }
    const components = this.components(members);
    if (components.length > 1) this.cache.clear();
    for (let i = 1; i < components.length; i++) {
      const fresh = randomUUID();
      await tx.$executeRawUnsafe(`INSERT INTO agg_group (type, agg_id) VALUES ($1, $2)`, type, fresh);
      for (const m of components[i]) {
        await tx.$executeRawUnsafe(`UPDATE agg_member SET agg_id = $4 WHERE store = $1 AND type = $2 AND res_id = $3`, m.store, type, m.res_id, fresh);
        await tx.$executeRawUnsafe(`UPDATE agg_key SET agg_id = $4 WHERE store = $1 AND type = $2 AND res_id = $3`, m.store, type, m.res_id, fresh);
      }
      await this.writeGroup(tx, type, fresh, components[i]);
    }
    await this.writeGroup(tx, type, aggId, components[0]);
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
    const merged = mergeGroup(type, list);
    const pk = await this.write(tx, type, aggId, merged);
    const customers = await tx.$queryRawUnsafe<{ customer_id: string }[]>(
      `SELECT DISTINCT customer_id FROM endpoint WHERE id = ANY($1::text[])`, [...new Set(members.map((m) => m.store))],
    );
    await this.setAccess(tx, pk, type === 'Patient' ? 'patient' : 'shared', type === 'Patient' ? aggId : null, customers.map((c) => c.customer_id));
  }

  /** The recorded aggregation state of an upstream resource, for its owner. */
  async status(sql: Tx | { $queryRawUnsafe: Tx['$queryRawUnsafe'] }, store: string, type: string, id: string) {
    const [row] = await sql.$queryRawUnsafe<{ status: string; reason: string | null; expression: string | null; agg_id: string | null; updated_at: Date }[]>(
      `SELECT status, reason, expression, agg_id, updated_at FROM agg_member WHERE store = $1 AND type = $2 AND res_id = $3`, store, type, id,
    );
    return row;
  }
}
