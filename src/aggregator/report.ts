import type { Sql } from '../store/sql';
import { CASCADE_RULES, describeCount, EXCLUSION_RULES, type ExclusionRule } from './exclusionRules';

/**
 * The aggregation report of one endpoint (issue 15 item 7): how many of its resources the aggregated record
 * holds, per type; why the others are not there, per type and rule; and the root causes behind exclusions in
 * cascade ("40 Organizations have no identifier → 4,398 resources excluded through references to them").
 *
 * It is computed at each call from the state `$aggregation-status` reads (status.ts): each upstream
 * resource's `agg_member` row (status, rule, reason) and, for one excluded because a target is not
 * aggregated, the target it waits for (`agg_waiting`). Following those targets to a resource that is excluded
 * for a reason of its own (or is not on the endpoint at all) gives each cascaded exclusion exactly one root, so
 * the root causes account for every exclusion. Three statements, each a scan of the endpoint's member rows.
 */
export interface AggregationReport {
  endpoint: string;
  generatedAt: string;
  /** Upstream resources the aggregator has seen, and those it is still to (re-)aggregate. */
  totals: ReportCounts;
  types: TypeCounts[];
  /** Exclusions per type and rule, largest first. */
  exclusions: ExclusionCount[];
  /** What every exclusion comes down to, largest first. */
  rootCauses: RootCause[];
}

export interface ReportCounts {
  included: number;
  excluded: number;
  /** Deleted on the endpoint after they were aggregated (not counted as excluded). */
  deleted: number;
  /** Waiting in the aggregation queue (new, changed, or requeued when something they use changed). */
  pending: number;
  /** Failed repeatedly and set aside (see `$aggregation-status` of each). */
  parked: number;
}

export interface TypeCounts extends ReportCounts {
  type: string;
}

export interface ExclusionCount {
  type: string;
  rule: string;
  count: number;
  description: string;
  /** One of the reasons recorded (they differ in the ids and elements they name). */
  sampleReason: string;
  /** A few of them, as `Type/id` on the endpoint. */
  examples: string[];
}

export interface RootCause {
  type: string;
  rule: string;
  /** How many resources have this cause of their own; null when the caller may not see resources of `type`. */
  count: number | null;
  /** How many other resources are excluded because of them (through references, or as source organisation). */
  excludedThrough: number;
  /** Of those, how many as the endpoint's default source organisation. */
  asSourceOrganization: number;
  /** `excludedThrough` per type of the excluded resources. */
  cascade: { type: string; count: number }[];
  summary: string;
  examples: string[];
}

/** Types the caller may read or search, or every type. */
export type ReportTypes = '*' | readonly string[];

const EXAMPLES = 3;

export async function aggregationReport(sql: Sql, store: string, types: ReportTypes = '*'): Promise<AggregationReport> {
  const all = types === '*';
  const visible = (type: string) => all || types.includes(type);
  const typeList = all ? null : [...types];

  const [members, queue, walked] = await Promise.all([
    sql.query<{ type: string; status: string; rule: string | null; cause: boolean; n: bigint; examples: string[]; sample: string | null }[]>(
      `SELECT m.type, m.status, CASE WHEN m.status = 'excluded' THEN coalesce(m.rule, 'other') END AS rule,
              (m.status = 'excluded' AND w.target IS NULL) AS cause, count(*) AS n,
              (array_agg(m.res_id ORDER BY m.res_id) FILTER (WHERE m.status = 'excluded'))[1:${EXAMPLES}] AS examples,
              min(m.reason) AS sample
         FROM agg_member m
         LEFT JOIN agg_waiting w ON w.store = m.store AND w.type = m.type AND w.res_id = m.res_id
        WHERE m.store = $1 AND ($2::text[] IS NULL OR m.type = ANY($2::text[]))
        GROUP BY 1, 2, 3, 4`,
      store,
      typeList,
    ),
    sql.query<{ type: string; pending: bigint; parked: bigint }[]>(
      `SELECT type, count(DISTINCT res_id) FILTER (WHERE NOT parked) AS pending, count(DISTINCT res_id) FILTER (WHERE parked) AS parked
         FROM agg_outbox WHERE store = $1 AND ($2::text[] IS NULL OR type = ANY($2::text[])) GROUP BY type`,
      store,
      typeList,
    ),
    // Each excluded resource waiting for a target, followed target by target to where the chain ends: its root.
    sql.query<{ type: string; via_source: boolean; root: string; root_status: string | null; root_rule: string | null; root_waits: boolean; present: boolean; n: bigint }[]>(
      `WITH RECURSIVE ex AS MATERIALIZED (
         SELECT m.type || '/' || m.res_id AS ref, m.type, m.rule, w.target
           FROM agg_member m
           LEFT JOIN agg_waiting w ON w.store = m.store AND w.type = m.type AND w.res_id = m.res_id
          WHERE m.store = $1 AND m.status = 'excluded' AND m.rule IS DISTINCT FROM 'deleted'
       ), walk (start, start_type, via_source, cur, depth) AS (
         SELECT ref, type, rule = 'source-organization-not-aggregated', target, 1 FROM ex
          WHERE target IS NOT NULL AND ($2::text[] IS NULL OR type = ANY($2::text[]))
         UNION ALL
         SELECT w.start, w.start_type, w.via_source, e.target, w.depth + 1 FROM walk w JOIN ex e ON e.ref = w.cur
          WHERE e.target IS NOT NULL AND w.depth < 32
       ), roots AS (
         SELECT DISTINCT ON (start) start_type, via_source, cur AS root FROM walk ORDER BY start, depth DESC
       ), counted AS (
         SELECT start_type, via_source, root, count(*) AS n FROM roots GROUP BY 1, 2, 3
       )
       SELECT c.start_type AS type, c.via_source, c.root, m.status AS root_status, m.rule AS root_rule,
              EXISTS (SELECT 1 FROM ex WHERE ex.ref = c.root AND ex.target IS NOT NULL) AS root_waits,
              (m.status IS NULL AND EXISTS (SELECT 1 FROM resource r WHERE r.store = $1 AND r.type = split_part(c.root, '/', 1)
                                               AND r.id = split_part(c.root, '/', 2) AND r.content IS NOT NULL)) AS present,
              c.n
         FROM counted c
         LEFT JOIN agg_member m ON m.store = $1 AND m.type = split_part(c.root, '/', 1) AND m.res_id = split_part(c.root, '/', 2)`,
      store,
      typeList,
    ),
  ]);

  const byType = new Map<string, TypeCounts>();
  const countsOf = (type: string) => {
    let t = byType.get(type);
    if (!t) byType.set(type, (t = { type, included: 0, excluded: 0, deleted: 0, pending: 0, parked: 0 }));
    return t;
  };
  const exclusions = new Map<string, ExclusionCount>();
  const causes = new Map<string, RootCause>();
  const causeOf = (type: string, rule: string): RootCause => {
    const key = `${type}|${rule}`;
    let c = causes.get(key);
    if (!c) causes.set(key, (c = { type, rule, count: visible(type) ? 0 : null, excludedThrough: 0, asSourceOrganization: 0, cascade: [], summary: '', examples: [] }));
    return c;
  };

  for (const row of members) {
    const n = Number(row.n);
    const t = countsOf(row.type);
    if (row.status === 'included') {
      t.included += n;
      continue;
    }
    const rule = row.rule as string;
    if (rule === 'deleted') {
      t.deleted += n;
      continue;
    }
    t.excluded += n;
    const key = `${row.type}|${rule}`;
    const e = exclusions.get(key) ?? { type: row.type, rule, count: 0, description: '', sampleReason: row.sample ?? '', examples: [] };
    e.count += n;
    e.examples = [...e.examples, ...row.examples.map((id) => `${row.type}/${id}`)].sort().slice(0, EXAMPLES);
    exclusions.set(key, e);
    // Excluded for a reason of its own: a root cause. One that says it waits for a target but has none
    // recorded is about to be aggregated again (the target has just arrived).
    if (row.cause) {
      const c = causeOf(row.type, CASCADE_RULES.has(rule) ? 'pending' : rule);
      c.count = (c.count ?? 0) + n;
      c.examples = [...c.examples, ...row.examples.map((id) => `${row.type}/${id}`)].sort().slice(0, EXAMPLES);
    }
  }
  for (const row of queue) {
    const t = countsOf(row.type);
    t.pending += Number(row.pending);
    t.parked += Number(row.parked);
  }

  // Roots that are not excluded members of their own are counted once per distinct resource.
  const syntheticRoots = new Map<string, Set<string>>();
  for (const row of walked) {
    const [rootType] = row.root.split('/');
    const rule = rootRule(row);
    const c = causeOf(rootType, rule);
    const n = Number(row.n);
    c.excludedThrough += n;
    if (row.via_source) c.asSourceOrganization += n;
    const step = c.cascade.find((s) => s.type === row.type);
    if (step) step.count += n;
    else c.cascade.push({ type: row.type, count: n });
    if (row.root_status !== 'excluded' || row.root_waits || row.root_rule === 'deleted') {
      const key = `${rootType}|${rule}`;
      const roots = syntheticRoots.get(key) ?? new Set<string>();
      roots.add(row.root);
      syntheticRoots.set(key, roots);
    }
  }
  for (const [key, roots] of syntheticRoots) {
    const c = causes.get(key) as RootCause;
    if (c.count === null) continue;
    c.count += roots.size;
    c.examples = [...c.examples, ...roots].sort().slice(0, EXAMPLES);
  }

  for (const e of exclusions.values()) e.description = describeCount(e.count, e.type, e.rule);
  for (const c of causes.values()) {
    c.cascade.sort((a, b) => b.count - a.count || a.type.localeCompare(b.type));
    if (c.count === null) c.examples = [];
    const what =
      c.count === null ? `${c.type} resources (a type your token may not read) ${EXCLUSION_RULES[c.rule as ExclusionRule] ?? ''}`.trim() : describeCount(c.count, c.type, c.rule);
    const through =
      c.excludedThrough === 0
        ? ''
        : ` → ${c.excludedThrough.toLocaleString('en-GB')} resource${c.excludedThrough === 1 ? '' : 's'} excluded through references to ${c.count === 1 ? 'it' : 'them'}` +
          (c.asSourceOrganization ? ` (${c.asSourceOrganization.toLocaleString('en-GB')} as the endpoint's default source organisation)` : '');
    c.summary = what + through;
  }

  const typeCounts = [...byType.values()].sort((a, b) => a.type.localeCompare(b.type));
  const totals = typeCounts.reduce<ReportCounts>(
    (sum, t) => ({
      included: sum.included + t.included,
      excluded: sum.excluded + t.excluded,
      deleted: sum.deleted + t.deleted,
      pending: sum.pending + t.pending,
      parked: sum.parked + t.parked,
    }),
    { included: 0, excluded: 0, deleted: 0, pending: 0, parked: 0 },
  );
  const weight = (c: RootCause) => c.excludedThrough + (c.count ?? 0);
  return {
    endpoint: store,
    generatedAt: new Date().toISOString(),
    totals,
    types: typeCounts,
    exclusions: [...exclusions.values()].sort((a, b) => b.count - a.count || a.type.localeCompare(b.type) || a.rule.localeCompare(b.rule)),
    rootCauses: [...causes.values()].sort((a, b) => weight(b) - weight(a) || a.type.localeCompare(b.type) || a.rule.localeCompare(b.rule)),
  };
}

/** Why the resource at the end of a chain is not aggregated. */
function rootRule(row: { root_status: string | null; root_rule: string | null; root_waits: boolean; present: boolean }): string {
  if (row.root_status === 'excluded') {
    // A chain that comes back on itself (or is longer than followed) has no root of its own: report where it stopped.
    if (row.root_waits) return 'other';
    const rule = row.root_rule ?? 'other';
    return CASCADE_RULES.has(rule) ? 'pending' : rule;
  }
  // Included by now (what waits for it is queued again), or on the endpoint but not aggregated yet.
  if (row.root_status === 'included' || row.present) return 'pending';
  return 'missing';
}
