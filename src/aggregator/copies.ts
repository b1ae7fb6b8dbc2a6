import { randomUUID } from 'node:crypto';
import type { Resource } from '../fhir/types';
import type { IndexSource, ResourceRepository, Tx } from '../store/resourceRepository';
import type { AggregatedIds, Resolution } from './aggregatedIds';
import { aggregatedType } from './aggregatedType';
import { enqueueDependents, setWaiting } from './dependents';
import { AGGREGATED_STORE } from './outbox';
import { contentKey, type Exclusion, exclusionTarget, MERGED_TYPES, parseRelative, privacyLabel, withSourceTracking } from './rules';
import { defaultSourceOrg, isExclusion, keyOf, patientOf, type Prepared, prepare, type Previous, type Upstream, type UpstreamRef } from './upstream';

/**
 * Unmerged types, copied one-to-one (DESIGN §3.5–3.7), set-wise: a whole batch of upstream resources is
 * prepared in memory, its references resolved with one query, and its copies, access rows and member rows
 * written with a few multi-row statements — the per-resource cost is JSON work, not round trips.
 *
 * References between resources of the same batch (a bundle's Observation → its Encounter) are resolved in
 * memory: each candidate gets its aggregated id up front, and exclusions are propagated until nothing
 * changes, so a resource is included exactly when everything it refers to is.
 */
interface Candidate {
  upstream: Upstream;
  key: string;
  prepared?: Prepared;
  exclusion?: Exclusion;
  /** The aggregated id this upstream resource had; kept while it is excluded, so it comes back under it. */
  previousId?: string;
  wasIncluded: boolean;
  /** It had been seen and excluded: it may have been waiting for a target (agg_waiting). */
  wasExcluded?: boolean;
  /** It has a member row: seen before, included or not. */
  hasMember?: boolean;
  /** The current aggregated copy, unless deleted. */
  previousContent?: Resource;
  /** Aggregated id if included in this pass. */
  aggId?: string;
  /** Waits for a target another worker holds: left untouched, to be tried again. */
  deferred?: string;
  sourceOrg?: string;
  dependsOn: string[];
}

export class Copies {
  constructor(
    private readonly repo: ResourceRepository,
    private readonly supported: ReadonlySet<string>,
    private readonly ids: AggregatedIds,
    /** Upstream resources the pass has aggregated one at a time (AggregationPass.process), by `keyOf`. */
    private readonly touched: ReadonlySet<string> = new Set(),
  ) {}

  /**
   * Brings the aggregated copies of `items` (existing upstream resources of unmerged types) up to date.
   * Returns those deferred: they (or something they refer to) wait for a target another worker holds.
   */
  async copyMany(tx: Tx, items: Upstream[], depth: number): Promise<UpstreamRef[]> {
    if (!items.length) return [];
    const candidates = items.map((upstream): Candidate => {
      if (MERGED_TYPES[upstream.type]) throw new Error(`${upstream.type} is a merged type, not copied`);
      const prepared = prepare(upstream, this.supported);
      return isExclusion(prepared)
        ? { upstream, key: keyOf(upstream), exclusion: prepared, dependsOn: [], wasIncluded: false }
        : { upstream, key: keyOf(upstream), prepared, dependsOn: [], wasIncluded: false };
    });
    const local = new Map(candidates.map((c) => [keyOf(c.upstream), c]));
    const inBatch = (store: string, target: string) => local.get(`${store}|${target.replace('/', '|')}`);

    // Everything referred to from outside the batch, per endpoint, in one query each (aggregating
    // not-yet-aggregated targets first).
    const wanted = new Map<string, Set<string>>();
    for (const c of candidates) {
      if (!c.prepared) continue;
      const org = defaultSourceOrg(c.upstream);
      c.dependsOn = [...c.prepared.targets, ...(org && !c.prepared.targets.includes(org) ? [org] : [])];
      const set = wanted.get(c.upstream.store) ?? new Set<string>();
      for (const t of c.dependsOn) if (!inBatch(c.upstream.store, t)) set.add(t);
      wanted.set(c.upstream.store, set);
    }
    const resolved = new Map<string, Map<string, Resolution>>();
    for (const [store, targets] of wanted) resolved.set(store, await this.ids.resolve(tx, store, [...targets], depth));

    // What each was aggregated as so far, as of now: resolving may itself have aggregated one of these (a
    // reference cycle), whose state read with its upstream row is then out of date and is read again.
    const stale: Candidate[] = [];
    for (const c of candidates) {
      if (c.upstream.previous === undefined || this.touched.has(c.key)) stale.push(c);
      else if (c.upstream.previous) this.applyPrevious(c, c.upstream.previous);
    }
    if (stale.length) await this.loadPrevious(tx, stale);
    for (const c of candidates) if (c.prepared) c.aggId = c.previousId ?? randomUUID();

    this.decide(candidates, inBatch, resolved);
    const settled = candidates.filter((c) => !c.deferred);
    await this.write(tx, settled, inBatch, resolved);
    return candidates.filter((c) => c.deferred).map((c) => c.upstream);
  }

  private async loadPrevious(tx: Tx, candidates: Candidate[]): Promise<void> {
    const rows = await tx.query<{ store: string; type: string; id: string; agg_id: string | null; included: boolean; content: Resource | null }[]>(
      `SELECT t.store, t.type, t.id, m.agg_id, m.status = 'included' AS included, r.content
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t(store, type, id, agg_type)
         JOIN agg_member m ON m.store = t.store AND m.type = t.type AND m.res_id = t.id
         LEFT JOIN resource r ON r.store = '${AGGREGATED_STORE}' AND r.type = t.agg_type AND r.id = m.agg_id`,
      candidates.map((c) => c.upstream.store),
      candidates.map((c) => c.upstream.type),
      candidates.map((c) => c.upstream.id),
      candidates.map((c) => aggregatedType(c.upstream.type)),
    );
    const byKey = new Map(candidates.map((c) => [c.key, c]));
    for (const row of rows) this.applyPrevious(byKey.get(keyOf(row)) as Candidate, { aggId: row.agg_id, included: row.included, content: row.content });
  }

  private applyPrevious(c: Candidate, previous: Previous): void {
    c.hasMember = true;
    c.wasExcluded = !previous.included;
    c.previousId = previous.aggId ?? undefined;
    c.wasIncluded = previous.included;
    c.previousContent = previous.content ?? undefined;
  }

  /**
   * Applies the reference and source-organisation rules until no candidate changes its mind. A candidate
   * referring to a deferred target (or to a deferred candidate) is deferred, not excluded.
   */
  private decide(candidates: Candidate[], inBatch: (store: string, target: string) => Candidate | undefined, resolved: Map<string, Map<string, Resolution>>): void {
    for (let changed = true; changed;) {
      changed = false;
      for (const c of candidates) {
        if (c.exclusion || c.deferred || !c.prepared) continue;
        const store = c.upstream.store;
        for (const site of c.prepared.sites) {
          const target = parseRelative(site.holder.reference as string) as { type: string; id: string };
          const ref = `${target.type}/${target.id}`;
          const other = inBatch(store, ref);
          const later = other ? other.deferred : resolved.get(store)?.get(ref)?.deferred;
          if (later) {
            c.deferred = later;
            break;
          }
          const why = other ? other.exclusion?.reason : resolved.get(store)?.get(ref)?.id ? undefined : (resolved.get(store)?.get(ref)?.why ?? 'unknown');
          if (why !== undefined) {
            c.exclusion = {
              rule: 'target-not-aggregated',
              reason: `${site.expression} refers to ${ref}, which is not in the aggregated record (${why})`,
              expression: site.expression,
              waitingFor: ref,
            };
            break;
          }
        }
        if (c.deferred) {
          c.aggId = undefined;
          changed = true;
          continue;
        }
        if (!c.exclusion) {
          // Source organisation: the managingOrganization of the resource's patient, else the endpoint default.
          const patient = patientOf(c.prepared.resource);
          const managing = patient ? resolved.get(store)?.get(`Patient/${patient}`)?.managingOrganization : undefined;
          const fallback = defaultSourceOrg(c.upstream);
          const orgLater = !managing && fallback ? resolved.get(store)?.get(fallback)?.deferred : undefined;
          if (orgLater) {
            c.deferred = orgLater;
            c.aggId = undefined;
            changed = true;
            continue;
          }
          // The default counts only as the aggregated Organization it stands for: one that is excluded or not
          // there yet (issue 15 item 6 a, b) excludes the copy, which waits for it and comes in when it does.
          const defaultOrg = !managing && fallback ? resolved.get(store)?.get(fallback) : undefined;
          c.sourceOrg = managing ? (parseRelative(managing)?.id as string) : defaultOrg?.id;
          if (!c.sourceOrg && fallback && !managing) {
            c.exclusion = {
              rule: 'source-organization-not-aggregated',
              reason: `the endpoint's default source organisation ${fallback} is not in the aggregated record (${defaultOrg?.why ?? 'unknown'})`,
              waitingFor: fallback,
            };
          } else if (!c.sourceOrg) {
            c.exclusion = {
              rule: 'no-source-organization',
              reason: "no source organisation: the resource's patient has no managingOrganization and the endpoint has no default source organisation",
            };
          }
        }
        if (c.exclusion) {
          c.aggId = undefined;
          changed = true;
        }
      }
    }
  }

  private async write(
    tx: Tx,
    candidates: Candidate[],
    inBatch: (store: string, target: string) => Candidate | undefined,
    resolved: Map<string, Map<string, Resolution>>,
  ): Promise<void> {
    const idOf = (store: string, ref: string) => inBatch(store, ref)?.aggId ?? resolved.get(store)?.get(ref)?.id;
    const creates: (Resource & { id: string })[] = [];
    // An R4 upstream's index rows equal its copy's but for references and meta: the copy shares them (indexer.ts).
    const indexedLike: (IndexSource | undefined)[] = [];
    const access: AccessRow[] = [];
    const pending: { c: Candidate; patient?: string; label?: string }[] = [];
    for (const c of candidates) {
      if (c.exclusion) {
        this.ids.forget(c.upstream);
        if (c.previousContent) await this.repo.delete(AGGREGATED_STORE, aggregatedType(c.upstream.type), c.previousId as string, tx);
        continue;
      }
      const { resource, sites } = c.prepared as Prepared;
      const store = c.upstream.store;
      for (const site of sites) {
        const t = parseRelative(site.holder.reference as string) as { type: string; id: string };
        site.holder.reference = `${aggregatedType(t.type)}/${idOf(store, `${t.type}/${t.id}`)}`;
      }
      const patient = patientOf(resource);
      const practitioner = sites.map((s) => parseRelative(s.holder.reference as string)).find((t) => t?.type === 'Practitioner')?.id;
      const tracked = { ...withSourceTracking(resource, { organization: c.sourceOrg, patient, practitioner }), id: c.aggId as string };
      const label = privacyLabel(tracked);
      if (!c.previousId) {
        creates.push(tracked);
        indexedLike.push(c.upstream.fhirVersion === 'R4' ? { pk: c.upstream.pk, store: c.upstream.store } : undefined);
        pending.push({ c, patient, label });
      } else if (!c.previousContent || contentKey(c.previousContent) !== contentKey(tracked)) {
        // Changed content, or back after an exclusion (a new version of the deleted copy): same id.
        const { stored } = await this.repo.update(AGGREGATED_STORE, tracked, {}, tx);
        access.push({ pk: stored.pk, patient, org: c.sourceOrg as string, customer: c.upstream.customerId, label });
      }
    }
    const created = await this.repo.createMany(AGGREGATED_STORE, creates, tx, { indexedLike });
    const fresh = created.map((stored, i) => {
      const { c, patient, label } = pending[i];
      return { pk: stored.pk, patient, org: c.sourceOrg as string, customer: c.upstream.customerId, label };
    });
    await writeAccess(tx, fresh, access);
    await writeMembers(tx, candidates);
    // Only an excluded resource waits: rows exist for those excluded before, and are written for those now.
    await setWaiting(
      tx,
      candidates.filter((c) => c.wasExcluded || c.exclusion?.waitingFor).map((c) => ({ ref: c.upstream, target: c.exclusion?.waitingFor })),
    );
    await enqueueDependents(tx, {
      changed: candidates.filter((c) => c.wasIncluded && c.exclusion).map((c) => c.upstream),
      arrived: candidates.filter((c) => !c.wasIncluded && !c.exclusion).map((c) => c.upstream),
      except: candidates.map((c) => c.upstream),
    });
  }
}

/**
 * Access rows of the copies written: `created` are rows of resources created just now, which have none yet (a
 * plain INSERT, which probes the key once, where an upsert probes it for a conflict first); `updated` may have one.
 */
async function writeAccess(tx: Tx, created: AccessRow[], updated: AccessRow[]): Promise<void> {
  const columns = (rows: AccessRow[]) => [
    rows.map((r) => r.pk.toString()),
    rows.map((r) => r.patient ?? null),
    rows.map((r) => r.org),
    rows.map((r) => r.customer),
    rows.map((r) => r.label ?? null),
  ];
  const insert = `INSERT INTO agg_access (resource_pk, kind, patient_id, source_org, source_customers, label)
     SELECT u.pk::bigint, 'copied', u.patient, u.org, ARRAY[u.customer], u.label
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(pk, patient, org, customer, label)`;
  if (created.length) await tx.execute(insert, ...columns(created));
  if (updated.length) {
    await tx.execute(
      `${insert}
     ON CONFLICT (resource_pk) DO UPDATE SET kind = 'copied', patient_id = EXCLUDED.patient_id, source_org = EXCLUDED.source_org,
       source_customers = EXCLUDED.source_customers, label = EXCLUDED.label`,
      ...columns(updated),
    );
  }
  const rows = [...created, ...updated];
  if (!rows.length) return;
  const pairs = [...new Set(rows.map((r) => `${r.customer} ${r.org}`))].map((p) => p.split(' '));
  await tx.execute(
    `INSERT INTO agg_customer_org (customer_id, org) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING`,
    pairs.map((p) => p[0]),
    pairs.map((p) => p[1]),
  );
}

interface AccessRow {
  pk: bigint;
  patient?: string;
  org: string;
  customer: string;
  label?: string;
}

/**
 * Member rows of copies carry no content (the aggregated resource itself is the copy); an excluded one keeps
 * its aggregated id for when it is included again. Those seen for the first time have no row yet: a plain
 * INSERT (one probe of the key; the upstream lock keeps any other worker from adding the row meanwhile),
 * the others an upsert.
 */
async function writeMembers(tx: Tx, candidates: Candidate[]): Promise<void> {
  const insert = `INSERT INTO agg_member (store, type, res_id, status, reason, expression, agg_id, content, upstream_updated, depends_on, rule, target_type)
     SELECT u.store, u.type, u.id, u.status, u.reason, u.expression, u.agg_id, NULL, u.updated::timestamptz, string_to_array(u.deps, ' '), u.rule, u.target_type
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
            AS u(store, type, id, status, reason, expression, agg_id, updated, deps, rule, target_type)`;
  const columns = (rows: Candidate[]) => [
    rows.map((c) => c.upstream.store),
    rows.map((c) => c.upstream.type),
    rows.map((c) => c.upstream.id),
    rows.map((c) => (c.exclusion ? 'excluded' : 'included')),
    rows.map((c) => c.exclusion?.reason ?? null),
    rows.map((c) => c.exclusion?.expression ?? null),
    rows.map((c) => (c.exclusion ? (c.previousId ?? null) : (c.aggId as string))),
    rows.map((c) => c.upstream.lastUpdated.toISOString()),
    rows.map((c) => c.dependsOn.join(' ')),
    rows.map((c) => (c.exclusion ? (c.exclusion.rule ?? 'other') : null)),
    rows.map((c) => (c.exclusion ? (exclusionTarget(c.exclusion) ?? null) : null)),
  ];
  const first = candidates.filter((c) => !c.hasMember);
  const again = candidates.filter((c) => c.hasMember);
  if (first.length) await tx.execute(insert, ...columns(first));
  if (again.length) {
    await tx.execute(
      `${insert}
     ON CONFLICT (store, type, res_id) DO UPDATE SET status = EXCLUDED.status, reason = EXCLUDED.reason, expression = EXCLUDED.expression,
       agg_id = EXCLUDED.agg_id, content = NULL, upstream_updated = EXCLUDED.upstream_updated, depends_on = EXCLUDED.depends_on,
       rule = EXCLUDED.rule, target_type = EXCLUDED.target_type, updated_at = clock_timestamp()`,
      ...columns(again),
    );
  }
}
