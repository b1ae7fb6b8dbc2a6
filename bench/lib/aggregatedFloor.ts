import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { aggregatedType } from '../../src/aggregator/aggregatedType';
import { AGGREGATED_STORE } from '../../src/aggregator/outbox';
import { RECORD_CHANGE_CHANNEL } from '../../src/aggregator/recordChanges';
import { type Exclusion, groupKeys, MERGED_TYPES, type Member, mergeGroup, parseRelative, privacyLabel, SUPPORTED_TYPES, withSourceTracking } from '../../src/aggregator/rules';
import { isExclusion, patientOf, type Prepared, prepare, type Upstream } from '../../src/aggregator/upstream';
import type { Resource } from '../../src/fhir/types';
import { indexKey } from '../../src/search/indexKey';
import { indexRows, type IndexRows } from '../../src/search/indexValues';
import { bundles } from './dataset';
import type { StoreKind } from './floors';
import { bundleParams, open, statementSql, TABLES } from './indexedFloor';
import { clusterTicks, TICK_US } from './processCpu';

/**
 * The aggregation floor: the rows the server writes per resource with the aggregation on, written by a bare
 * script. Per transaction Bundle, the indexed floor's upstream statement (resource rows, search-index rows,
 * outbox items; bench/lib/indexedFloor.ts), then, as the aggregation worker would, two statements with what
 * aggregating those resources writes (the merged types', one Bundle at a time in Bundle order, as the
 * merged-type lock makes the server go; the copies', several Bundles in flight): each copy's `resource` row
 * in the aggregated store (references rewritten to aggregated ids, source-organisation and source-patient
 * codings), the merged types' new
 * versions (Patient, Practitioner, Organization: `mergeGroup` of the group's members so far, the superseded
 * version moved to `resource_history`, its index rows replaced), the search-index rows of every aggregated
 * version, `agg_access`, `agg_customer_org`, `agg_member` (upsert; merged types with their R4 form),
 * `agg_key` and `agg_group` for merged types, an `agg_change` row with its NOTIFY per version, and the
 * DELETE of the Bundle's outbox items; committed without waiting for the WAL flush, as the worker commits.
 *
 * The rows are built before the clock starts with the server's own pure functions (prepare, groupKeys,
 * mergeGroup, withSourceTracking, patientOf, privacyLabel, indexRows, indexKey). The aggregated copies' index
 * rows are written plainly (the server extracts only a copy's reference and meta rows and copies the others in
 * SQL from its upstream's: the same rows, less data shipped). What the floor leaves out: the worker's reads
 * (claiming the batch, loading the upstream, resolving references, lane and merged-type locks) and its
 * statements that find nothing to change (agg_waiting, dependents). Two members of one group in one Bundle
 * write one version of it rather than two.
 */
export interface AggregatedFloor {
  rate: number;
  resources: number;
  /** CPU of the database cluster (postmaster and its children) while the floor wrote, µs; null where unreadable (PGlite, a remote server). */
  clusterCpuUs: number | null;
  /** Rows per table after the run (see `aggregationRows`). */
  rows: TableRows;
}

/** Row counts of the tables the ingest writes with the aggregation on. */
export type TableRows = Record<string, number>;

const UPSTREAM = statementSql(true);
const SUPPORTED = new Set(SUPPORTED_TYPES);
/** The search tables and their columns (the indexed floor's list, from src/search/indexer.ts). */
const SEARCH = TABLES;

const KINDS = Object.keys(SEARCH) as (keyof IndexRows)[];
/**
 * `AGGREGATION_FLOOR_SHARED_VALUES=1`: a design experiment, not the server's rows. Copies write only their
 * reference rows, as if aggregated searches read every other parameter from the upstream's rows through the
 * member mapping; what that design could save at most (its meta rows are left out too).
 */
const SHARED_VALUES = process.env.AGGREGATION_FLOOR_SHARED_VALUES === '1';
/** Merged types in the order their references allow (an Organization before the Patient that names it). */
const MERGE_ORDER = ['Organization', 'Practitioner', 'PractitionerRole', 'Medication', 'Patient', 'Person'];

/** One aggregated version the statement writes. */
interface Version {
  type: string;
  id: string;
  version: number;
  body: Resource;
  kind: 'copied' | 'patient' | 'shared';
  patient: string | null;
  org: string | null;
  label: string | null;
}

interface MemberRow {
  type: string;
  id: string;
  status: 'included' | 'excluded';
  reason: string | null;
  aggId: string | null;
  content: string | null;
  dependsOn: string;
  rule: string | null;
}

/** What the floor remembers across Bundles: the merged types' groups, as agg_key and agg_group hold them. */
class Groups {
  readonly byKey = new Map<string, string>();
  readonly groups = new Map<string, { type: string; members: Member[]; version: number }>();
}

/** A statement and its parameters; with `outbox`, its last parameter is left for the Bundle's outbox ids. */
interface Statement {
  sql: string;
  params: unknown[];
}

/**
 * One aggregation statement: every table's rows as parallel arrays, joined to the new pks. `withOutbox`: it also
 * deletes the Bundle's outbox items, whose ids are known once the Bundle's upstream statement has run (they go
 * in the last parameter).
 */
function aggregationStatement(
  versions: Version[],
  members: MemberRow[],
  keys: string[][],
  newGroups: string[][],
  store: string,
  customer: string,
  now: Date,
  withOutbox: boolean,
): Statement {
  const params: unknown[] = [];
  const p = (v: unknown, cast: string) => {
    params.push(v);
    return `$${params.length}::${cast}`;
  };
  // Only a statement writing a new version of something (a merged group grown by a member) can meet rows that
  // exist: the others write plain INSERTs, as the worker does for rows it writes first (copies.ts).
  const updates = versions.some((v) => v.version > 1);
  const stamped = versions.map((v) => {
    const { resourceType, id: _id, meta, ...rest } = v.body;
    return JSON.stringify({ resourceType, id: v.id, meta: { ...(meta ?? {}), versionId: String(v.version), lastUpdated: now.toISOString() }, ...rest });
  });
  const at = p(now.toISOString(), 'timestamptz');
  const ctes = [
    `a AS (SELECT * FROM unnest(${p(
      versions.map((v) => v.type),
      'text[]',
    )}, ${p(
      versions.map((v) => v.id),
      'text[]',
    )}, ${p(
      versions.map((v) => v.version),
      'int[]',
    )}, ${p(stamped, 'text[]')}) WITH ORDINALITY AS a(type, id, version, content, n))`,
    // A new version of a merged resource: the superseded one to history, its index rows replaced (as repo.update does).
    ...(updates
      ? [
          `old AS (SELECT r.pk FROM resource r JOIN a ON r.store = '${AGGREGATED_STORE}' AND r.type = a.type AND r.id = a.id WHERE a.version > 1)`,
          `h AS (INSERT INTO resource_history (resource_pk, version_id, store, type, id, last_updated, deleted, content)
             SELECT r.pk, r.version_id, r.store, r.type, r.id, r.last_updated, r.deleted, r.content FROM resource r JOIN old ON old.pk = r.pk)`,
        ]
      : []),
    `ins AS (INSERT INTO resource (store, type, id, version_id, last_updated, deleted, content)
       SELECT '${AGGREGATED_STORE}', type, id, version, ${at}, false, content::jsonb FROM a ORDER BY n
       ${updates ? 'ON CONFLICT (store, type, id) DO UPDATE SET version_id = EXCLUDED.version_id, last_updated = EXCLUDED.last_updated, deleted = false, content = EXCLUDED.content' : ''}
       RETURNING pk, id)`,
  ];
  for (const kind of KINDS) {
    const { table, columns } = SEARCH[kind];
    const cols: unknown[][] = [[], [], ...columns.map(() => [])];
    versions.forEach((v, i) => {
      if (SHARED_VALUES && v.kind === 'copied' && kind !== 'reference') return;
      for (const [param, ...values] of indexRows(JSON.parse(stamped[i]) as Resource)[kind] as [string, ...unknown[]][]) {
        cols[0].push(indexKey(AGGREGATED_STORE, v.type, param));
        cols[1].push(v.id);
        values.forEach((x, c) => cols[c + 2].push(x));
      }
    });
    const names = columns.map(([c]) => c);
    const arrays = [p(cols[0], 'bigint[]'), p(cols[1], 'text[]'), ...columns.map(([, type], c) => p(cols[c + 2], `${type}[]`))];
    if (updates) ctes.push(`d_${table} AS (DELETE FROM ${table} WHERE resource_pk IN (SELECT pk FROM old))`);
    ctes.push(
      `i_${table} AS (INSERT INTO ${table} (key, resource_pk, ${names.join(', ')})
         SELECT x.key, ins.pk, ${names.map((c) => `x.${c}`).join(', ')} FROM unnest(${arrays.join(', ')}) AS x(key, res_id, ${names.join(', ')}) JOIN ins ON ins.id = x.res_id)`,
    );
  }
  ctes.push(
    `acc AS (INSERT INTO agg_access (resource_pk, kind, patient_id, source_org, source_customers, label)
       SELECT ins.pk, x.kind, x.patient, x.org, ARRAY[${p(customer, 'text')}], x.label
         FROM unnest(${p(
           versions.map((v) => v.id),
           'text[]',
         )}, ${p(
           versions.map((v) => v.kind),
           'text[]',
         )}, ${p(
           versions.map((v) => v.patient),
           'text[]',
         )}, ${p(
           versions.map((v) => v.org),
           'text[]',
         )}, ${p(
           versions.map((v) => v.label),
           'text[]',
         )}) AS x(id, kind, patient, org, label) JOIN ins ON ins.id = x.id
       ${updates ? 'ON CONFLICT (resource_pk) DO UPDATE SET kind = EXCLUDED.kind, patient_id = EXCLUDED.patient_id, source_org = EXCLUDED.source_org, source_customers = EXCLUDED.source_customers, label = EXCLUDED.label' : ''})`,
    `co AS (INSERT INTO agg_customer_org (customer_id, org) SELECT ${p(customer, 'text')}, o FROM unnest(${p(
      [...new Set(versions.filter((v) => v.org).map((v) => v.org))],
      'text[]',
    )}) AS o ON CONFLICT DO NOTHING)`,
    `mem AS (INSERT INTO agg_member (store, type, res_id, status, reason, agg_id, content, upstream_updated, depends_on, rule)
       SELECT ${p(store, 'text')}, u.type, u.id, u.status, u.reason, u.agg_id, u.content::jsonb, ${at}, string_to_array(u.deps, ' '), u.rule
         FROM unnest(${[
           members.map((m) => m.type),
           members.map((m) => m.id),
           members.map((m) => m.status),
           members.map((m) => m.reason),
           members.map((m) => m.aggId),
           members.map((m) => m.content),
           members.map((m) => m.dependsOn),
           members.map((m) => m.rule),
         ]
           .map((arr) => p(arr, 'text[]'))
           .join(', ')}) AS u(type, id, status, reason, agg_id, content, deps, rule)
       ${updates ? 'ON CONFLICT (store, type, res_id) DO UPDATE SET status = EXCLUDED.status, reason = EXCLUDED.reason, agg_id = EXCLUDED.agg_id, content = EXCLUDED.content, upstream_updated = EXCLUDED.upstream_updated, depends_on = EXCLUDED.depends_on, rule = EXCLUDED.rule, updated_at = clock_timestamp()' : ''})`,
    `grp AS (INSERT INTO agg_group (type, agg_id) SELECT * FROM unnest(${p(
      newGroups.map((g) => g[0]),
      'text[]',
    )}, ${p(
      newGroups.map((g) => g[1]),
      'text[]',
    )}) ON CONFLICT DO NOTHING)`,
    `k AS (INSERT INTO agg_key (type, key, store, res_id, agg_id) SELECT * FROM unnest(${[0, 1, 2, 3, 4]
      .map((c) =>
        p(
          keys.map((k) => k[c]),
          'text[]',
        ),
      )
      .join(', ')}) ON CONFLICT DO NOTHING)`,
    `ch AS (INSERT INTO agg_change (type, res_id, version_id, kind, patient_id)
       SELECT type, id, version, CASE WHEN version = 1 THEN 'create' ELSE 'update' END, x.patient
         FROM a JOIN unnest(${p(
           versions.map((v) => (v.type === 'Patient' ? v.id : v.patient)),
           'text[]',
         )}) WITH ORDINALITY AS x(patient, n) ON x.n = a.n
       RETURNING seq, type, res_id, version_id, kind, patient_id)`,
    `ntf AS (SELECT pg_notify('${RECORD_CHANGE_CHANNEL}', json_build_object('s', seq::text, 't', type, 'i', res_id, 'v', version_id, 'k', kind, 'p', patient_id)::text) FROM ch)`,
  );
  if (withOutbox) ctes.push(`del AS (DELETE FROM agg_outbox WHERE id = ANY(${p([], 'bigint[]')}))`);
  return { sql: `WITH ${ctes.join(',\n')} SELECT count(*) FROM ntf`, params };
}

/**
 * What aggregating one Bundle writes, decided in memory as the server decides it (merged types first, in
 * Bundle order; then the copies, excluded when a reference target is not aggregated, until nothing changes).
 */
function aggregateBundle(upstream: Upstream[], groups: Groups, defaultOrg: { ref: string; aggId: string }, store: string, customer: string, now: Date) {
  const versions = new Map<string, Version>();
  const members: MemberRow[] = [];
  const keys: string[][] = [];
  const newGroups: string[][] = [];
  const aggIds = new Map<string, string>([[defaultOrg.ref, defaultOrg.aggId]]);
  const excluded = (u: Upstream, e: Exclusion, dependsOn: string[] = []) =>
    members.push({ type: u.type, id: u.id, status: 'excluded', reason: e.reason, aggId: null, content: null, dependsOn: dependsOn.join(' '), rule: e.rule ?? 'other' });
  const rewrite = (prepared: Prepared): string | undefined => {
    for (const site of prepared.sites) {
      const t = parseRelative(site.holder.reference as string) as { type: string; id: string };
      const id = aggIds.get(`${t.type}/${t.id}`);
      if (!id) return `${t.type}/${t.id}`;
      site.holder.reference = `${aggregatedType(t.type)}/${id}`;
    }
    return undefined;
  };
  const rank = (type: string) => MERGE_ORDER.indexOf(type) + 1 || MERGE_ORDER.length + 1;
  const merged = upstream.filter((u) => MERGED_TYPES[u.type]).sort((a, b) => rank(a.type) - rank(b.type));
  for (const u of merged) {
    const prepared = prepare(u, SUPPORTED);
    if (isExclusion(prepared)) {
      excluded(u, prepared);
      continue;
    }
    const missing = prepared.targets.find((t) => !aggIds.has(t));
    if (missing) {
      excluded(u, { rule: 'target-not-aggregated', reason: `refers to ${missing}, which is not in the aggregated record` }, prepared.targets);
      continue;
    }
    rewrite(prepared);
    const resource = prepared.resource;
    const memberKeys = [...new Set(groupKeys(resource))];
    let aggId = memberKeys.map((k) => groups.byKey.get(`${u.type}|${k}`)).find((g) => g);
    if (!aggId) {
      aggId = randomUUID();
      groups.groups.set(aggId, { type: u.type, members: [], version: 0 });
      newGroups.push([u.type, aggId]);
    }
    const group = groups.groups.get(aggId) as { type: string; members: Member[]; version: number };
    group.members.push({ resource, lastUpdated: now.toISOString(), store, id: u.id });
    group.version++;
    for (const k of memberKeys) {
      groups.byKey.set(`${u.type}|${k}`, aggId);
      keys.push([u.type, k, store, u.id, aggId]);
    }
    aggIds.set(`${u.type}/${u.id}`, aggId);
    members.push({ type: u.type, id: u.id, status: 'included', reason: null, aggId, content: JSON.stringify(resource), dependsOn: prepared.targets.join(' '), rule: null });
    // A second member of the group in this Bundle: one version, the latest (see the module comment).
    versions.set(aggId, {
      type: u.type,
      id: aggId,
      version: group.version,
      body: mergeGroup(u.type, group.members),
      kind: u.type === 'Patient' ? 'patient' : 'shared',
      patient: u.type === 'Patient' ? aggId : null,
      org: null,
      label: null,
    });
  }
  // Copies: every prepared one gets its aggregated id, then exclusions propagate until nothing changes.
  const copies = upstream
    .filter((u) => !MERGED_TYPES[u.type])
    .map((u) => ({ u, prepared: prepare(u, SUPPORTED), aggId: randomUUID(), exclusion: undefined as Exclusion | undefined }));
  for (const c of copies) {
    if (isExclusion(c.prepared)) c.exclusion = c.prepared;
    else aggIds.set(`${c.u.type}/${c.u.id}`, c.aggId);
  }
  for (let changed = true; changed;) {
    changed = false;
    for (const c of copies) {
      if (c.exclusion) continue;
      const missing = (c.prepared as Prepared).targets.find((t) => !aggIds.has(t));
      if (!missing) continue;
      c.exclusion = { rule: 'target-not-aggregated', reason: `refers to ${missing}, which is not in the aggregated record` };
      aggIds.delete(`${c.u.type}/${c.u.id}`);
      changed = true;
    }
  }
  for (const c of copies) {
    const prepared = c.prepared as Prepared;
    const dependsOn = isExclusion(c.prepared) ? [] : [...prepared.targets, ...(prepared.targets.includes(defaultOrg.ref) ? [] : [defaultOrg.ref])];
    if (c.exclusion) {
      excluded(c.u, c.exclusion, dependsOn);
      continue;
    }
    rewrite(prepared);
    const patient = patientOf(prepared.resource);
    const practitioner = prepared.sites.map((s) => parseRelative(s.holder.reference as string)).find((t) => t?.type === 'Practitioner')?.id;
    // Synthea's Patients have no managingOrganization: the source is the endpoint's default organisation.
    const tracked = withSourceTracking(prepared.resource, { organization: defaultOrg.aggId, patient, practitioner });
    versions.set(c.aggId, {
      type: aggregatedType(c.u.type),
      id: c.aggId,
      version: 1,
      body: tracked,
      kind: 'copied',
      patient: patient ?? null,
      org: defaultOrg.aggId,
      label: privacyLabel(tracked) ?? null,
    });
    members.push({ type: c.u.type, id: c.u.id, status: 'included', reason: null, aggId: c.aggId, content: null, dependsOn: dependsOn.join(' '), rule: null });
  }
  // Two statements, as the worker claims a Bundle's merged types and its copies in batches of their own: the
  // merged one is run one at a time in Bundle order (the server holds the merged type's lock), the copies in parallel.
  const all = [...versions.values()];
  return {
    merged: aggregationStatement(
      all.filter((v) => v.kind !== 'copied'),
      members.filter((m) => MERGED_TYPES[m.type]),
      keys,
      newGroups,
      store,
      customer,
      now,
      false,
    ),
    copies: aggregationStatement(
      all.filter((v) => v.kind === 'copied'),
      members.filter((m) => !MERGED_TYPES[m.type]),
      [],
      [],
      store,
      customer,
      now,
      true,
    ),
  };
}

/** The postmaster of the cluster behind `url`, when it runs on this machine (its pid file is readable); else null. */
export async function postmasterOf(url: string): Promise<number | null> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const dir = (await client.query(`SHOW data_directory`)).rows[0].data_directory as string;
    return Number(readFileSync(`${dir}/postmaster.pid`, 'utf8').split('\n')[0]) || null;
  } catch {
    return null;
  } finally {
    await client.end();
  }
}

/**
 * Resources/s writing, for patients `from`..`to`, the upstream rows and the aggregation's rows; `concurrency`
 * Bundles in flight on each side (an aggregation statement follows its Bundle's upstream one). Write time only.
 */
export async function aggregatedIngestFloor(store: StoreKind, adminUrl: string, from: number, to: number, concurrency = 4): Promise<AggregatedFloor> {
  const db = await open(store, adminUrl, concurrency);
  const endpoint = randomUUID();
  const customer = randomUUID();
  const defaultOrg = { ref: 'Organization/bench-data', aggId: randomUUID() };
  const groups = new Groups();
  const postmaster = store === 'postgres' && db.url ? await postmasterOf(db.url) : null;
  try {
    let seconds = 0;
    let ticks = 0;
    let resources = 0;
    for (let start = from; start < to; start += 50) {
      const now = new Date();
      // Untimed: the upstream statement's parameters, and what aggregating each Bundle writes.
      const work = [...bundles(start, Math.min(to, start + 50))].map((text) => {
        const up = bundleParams(text, endpoint, now);
        const [, types, ids, bodies] = up.params as [string, string[], string[], string[]];
        const upstream = ids.map((id, i): Upstream => ({
          store: endpoint,
          type: types[i],
          id,
          pk: 0n,
          content: JSON.parse(bodies[i]) as Resource,
          lastUpdated: now,
          fhirVersion: 'R4',
          defaultSourceOrg: defaultOrg.ref,
          customerId: customer,
        }));
        return { up, agg: aggregateBundle(upstream, groups, defaultOrg, endpoint, customer, now) };
      });
      const written: Promise<string[]>[] = [];
      const wrote: ((ids: string[]) => void)[] = [];
      for (let i = 0; i < work.length; i++) written.push(new Promise((resolve) => (wrote[i] = resolve)));
      let nextUp = 0;
      let nextAgg = 0;
      const ticks0 = postmaster ? clusterTicks(postmaster) : 0;
      const t0 = performance.now();
      let chain: Promise<void> = Promise.resolve();
      const merged = work.map(
        (w, i) =>
          (chain = chain.then(async () => {
            await written[i];
            await db.asyncCommit(w.agg.merged.sql, w.agg.merged.params);
          })),
      );
      await Promise.all([
        ...merged,
        ...Array.from({ length: concurrency }, async () => {
          while (nextUp < work.length) {
            const i = nextUp++;
            const result = (await db.query(UPSTREAM, work[i].up.params)) as { rows: { outbox: string[] }[] };
            wrote[i](result.rows[0].outbox);
          }
        }),
        ...Array.from({ length: concurrency }, async () => {
          while (nextAgg < work.length) {
            const i = nextAgg++;
            const { copies } = work[i].agg;
            copies.params[copies.params.length - 1] = await written[i];
            await db.asyncCommit(copies.sql, copies.params);
          }
        }),
      ]);
      seconds += (performance.now() - t0) / 1000;
      if (postmaster) ticks += clusterTicks(postmaster) - ticks0;
      for (const w of work) resources += w.up.resources;
    }
    return { rate: resources / seconds, resources, clusterCpuUs: postmaster ? ticks * TICK_US : null, rows: db.url ? await aggregationRows(db.url, endpoint) : {} };
  } finally {
    await db.close();
  }
}

/**
 * Rows per table in a database after an ingest with the aggregation on (the server's or the floor's), for one
 * upstream store and what the aggregation made of it (the aggregated resources its included members map to),
 * to set side by side: the floor is a floor only if it writes what the server wrote. Counting per store leaves
 * out what else the server holds (the bench tenant's source Organization, the lag probes' Patients).
 */
export async function aggregationRows(databaseUrl: string, store: string): Promise<TableRows> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    // The two sides' row pks first, in temporary tables with statistics: the counts are then semi-joins.
    // Statistics first: without them (autovacuum off, a fresh bulk load) the planner read the aggregated store's
    // rows once per member for the join below, minutes at 500 patients.
    await client.query(`ANALYZE resource; ANALYZE agg_member`);
    await client.query(`CREATE TEMP TABLE floor_up (pk bigint); CREATE TEMP TABLE floor_agg (pk bigint, id text)`);
    await client.query(`INSERT INTO floor_up SELECT pk FROM resource WHERE store = $1`, [store]);
    await client.query(
      `INSERT INTO floor_agg SELECT r.pk, r.id FROM resource r JOIN (SELECT DISTINCT agg_id FROM agg_member WHERE store = $1 AND status = 'included') m ON m.agg_id = r.id
        WHERE r.store = '${AGGREGATED_STORE}'`,
      [store],
    );
    await client.query(`ANALYZE floor_up; ANALYZE floor_agg`);
    const search = (side: string) => KINDS.map((k) => `(SELECT count(*) FROM ${SEARCH[k].table} WHERE resource_pk IN (SELECT pk FROM ${side}))`).join(' + ') + ' AS count';
    const counts: Record<string, string> = {
      'resource (upstream)': `SELECT count(*) FROM floor_up WHERE $1::text IS NOT NULL`,
      'search rows (upstream)': `SELECT ${search('floor_up')} WHERE $1::text IS NOT NULL`,
      'resource (aggregated)': `SELECT count(*) FROM floor_agg WHERE $1::text IS NOT NULL`,
      'search rows (aggregated)': `SELECT ${search('floor_agg')} WHERE $1::text IS NOT NULL`,
      resource_history: `SELECT count(*) FROM resource_history WHERE $1::text IS NOT NULL AND resource_pk IN (SELECT pk FROM floor_up UNION ALL SELECT pk FROM floor_agg)`,
      agg_member: `SELECT count(*) FROM agg_member WHERE store = $1`,
      agg_access: `SELECT count(*) FROM agg_access WHERE $1::text IS NOT NULL AND resource_pk IN (SELECT pk FROM floor_agg)`,
      agg_customer_org: `SELECT count(*) FROM agg_customer_org WHERE $1::text IS NOT NULL`,
      agg_change: `SELECT count(*) FROM agg_change WHERE $1::text IS NOT NULL AND res_id IN (SELECT id FROM floor_agg)`,
      agg_key: `SELECT count(*) FROM agg_key WHERE store = $1`,
      agg_group: `SELECT count(*) FROM agg_group WHERE $1::text IS NOT NULL AND agg_id IN (SELECT id FROM floor_agg)`,
      agg_outbox: `SELECT count(*) FROM agg_outbox WHERE store = $1`,
    };
    const out: TableRows = {};
    for (const [name, sql] of Object.entries(counts)) out[name] = Number((await client.query(sql, [store])).rows[0].count);
    return out;
  } finally {
    await client.end();
  }
}
