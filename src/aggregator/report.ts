import type { Sql } from '../store/sql';
import { CASCADE_RULES, describeCount, EXCLUSION_RULES, type ExclusionRule, REFERENCE_RULES, sortedTargets, type TargetCount } from './exclusionRules';

/**
 * The aggregation report of one endpoint (issue 15 item 7): how many of its resources the aggregated record
 * holds, per type; why the others are not there, per type and rule; and the root causes behind exclusions in
 * cascade ("40 Organizations have no identifier → 4,398 resources excluded through references to them").
 *
 * It is computed at each call from the state `$aggregation-status` reads (status.ts): each upstream
 * resource's `agg_member` row (status, rule, target type, reason) and, for one excluded because a target is not
 * aggregated, the target it waits for (`agg_waiting`). Following those targets to a resource that is excluded
 * for a reason of its own (or is not on the endpoint at all) gives each cascaded exclusion exactly one root, so
 * the root causes account for every exclusion. Three statements read the endpoint's member rows (counts per
 * type and rule; the excluded ones with their targets; the queue), chains are followed in memory, and a fourth
 * asks about chain ends that are no excluded resource of the endpoint (missing, or not aggregated yet).
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
  /** For a rule about a reference (REFERENCE_RULES): how many refer to resources of each type, largest first. */
  targets: TargetCount[];
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

  const [groups, excludedRows, queue] = await Promise.all([
    // Per referenced type too (null but for exclusions about a reference): a handful more rows, no more reading.
    sql.query<{ type: string; status: string; rule: string; target_type: string | null; n: bigint; sample: string | null }[]>(
      `SELECT type, status, coalesce(rule, 'other') AS rule, target_type, count(*) AS n, min(reason) AS sample
         FROM agg_member WHERE store = $1 AND ($2::text[] IS NULL OR type = ANY($2::text[])) GROUP BY 1, 2, 3, 4`,
      store,
      typeList,
    ),
    // Every excluded resource (of any type: a chain may pass through types the caller does not see) and the
    // target it waits for, if any. Chains are followed here rather than in a recursive query, which
    // PostgreSQL can only join by nested loops over a CTE (seconds for a few thousand rows).
    sql.query<{ type: string; id: string; rule: string; target_type: string | null; target: string | null }[]>(
      `SELECT m.type, m.res_id AS id, coalesce(m.rule, 'other') AS rule, m.target_type, w.target
         FROM agg_member m
         LEFT JOIN agg_waiting w ON w.store = m.store AND w.type = m.type AND w.res_id = m.res_id
        WHERE m.store = $1 AND m.status = 'excluded' AND m.rule IS DISTINCT FROM 'deleted'`,
      store,
    ),
    sql.query<{ type: string; pending: bigint; parked: bigint }[]>(
      `SELECT type, count(DISTINCT res_id) FILTER (WHERE NOT parked) AS pending, count(DISTINCT res_id) FILTER (WHERE parked) AS parked
         FROM agg_outbox WHERE store = $1 AND ($2::text[] IS NULL OR type = ANY($2::text[])) GROUP BY type`,
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
  /** Referenced types per type and rule (REFERENCE_RULES), and per root cause: counts by type. */
  const targetsOf = new Map<string, Map<string, number>>();
  const countTarget = (key: string, rule: string, targetType: string | null, n: number) => {
    if (targetType === null || !REFERENCE_RULES.has(rule)) return;
    const counts = targetsOf.get(key) ?? new Map<string, number>();
    counts.set(targetType, (counts.get(targetType) ?? 0) + n);
    targetsOf.set(key, counts);
  };
  for (const row of groups) {
    const n = Number(row.n);
    const t = countsOf(row.type);
    if (row.status === 'included') t.included += n;
    else if (row.rule === 'deleted') t.deleted += n;
    else {
      t.excluded += n;
      const key = `${row.type}|${row.rule}`;
      const e = exclusions.get(key);
      if (!e) exclusions.set(key, { type: row.type, rule: row.rule, count: n, description: '', sampleReason: row.sample ?? '', examples: [], targets: [] });
      else {
        e.count += n;
        if (row.sample !== null && (e.sampleReason === '' || row.sample < e.sampleReason)) e.sampleReason = row.sample;
      }
      countTarget(key, row.rule, row.target_type, n);
    }
  }
  for (const row of queue) {
    const t = countsOf(row.type);
    t.pending += Number(row.pending);
    t.parked += Number(row.parked);
  }

  // Each excluded resource's root: itself when excluded for a reason of its own, else its target's root.
  const excluded = new Map(excludedRows.map((r) => [`${r.type}/${r.id}`, r]));
  const roots = new Map<string, string>();
  const rootOf = (ref: string): string => {
    const chain: string[] = [];
    let cur = ref;
    const seen = new Set<string>();
    for (;;) {
      const known = roots.get(cur);
      if (known !== undefined) {
        cur = known;
        break;
      }
      const row = excluded.get(cur);
      if (!row?.target || seen.has(cur)) break; // its own reason, not excluded at all, or a cycle
      seen.add(cur);
      chain.push(cur);
      cur = row.target;
    }
    for (const c of chain) roots.set(c, cur);
    return cur;
  };

  const causes = new Map<string, RootCause>();
  const causeOf = (type: string, rule: string): RootCause => {
    const key = `${type}|${rule}`;
    let c = causes.get(key);
    if (!c) causes.set(key, (c = { type, rule, count: visible(type) ? 0 : null, excludedThrough: 0, asSourceOrganization: 0, cascade: [], summary: '', examples: [] }));
    return c;
  };
  const addExample = (list: string[], ref: string) => {
    if (list.length < EXAMPLES) list.push(ref);
    else if (ref < list[EXAMPLES - 1]) list[EXAMPLES - 1] = ref;
    else return;
    list.sort();
  };
  // Cascades, per root: how many of each type, and how many through the default source organisation.
  const cascades = new Map<string, { types: Map<string, number>; viaSource: number; total: number }>();
  for (const row of excludedRows) {
    const ref = `${row.type}/${row.id}`;
    // (The counts were read by a statement of their own: a row that changed in between may have no group there.)
    const group = visible(row.type) ? exclusions.get(`${row.type}|${row.rule}`) : undefined;
    if (group) addExample(group.examples, ref);
    if (!row.target) {
      // Excluded for a reason of its own: a root cause. One that says it waits for a target but has none
      // recorded is about to be aggregated again (its target has just arrived).
      if (!visible(row.type)) continue;
      const c = causeOf(row.type, CASCADE_RULES.has(row.rule) ? 'pending' : row.rule);
      c.count = (c.count ?? 0) + 1;
      addExample(c.examples, ref);
      countTarget(`cause|${c.type}|${c.rule}`, c.rule, row.target_type, 1);
      continue;
    }
    if (!visible(row.type)) continue;
    const root = rootOf(ref);
    const cascade = cascades.get(root) ?? { types: new Map<string, number>(), viaSource: 0, total: 0 };
    cascade.types.set(row.type, (cascade.types.get(row.type) ?? 0) + 1);
    cascade.total++;
    if (row.rule === 'source-organization-not-aggregated') cascade.viaSource++;
    cascades.set(root, cascade);
  }

  // Roots that are no excluded resource of the endpoint: what the aggregator knows of them.
  const others = [...cascades.keys()].filter((r) => !excluded.has(r));
  const states = others.length
    ? await sql.query<{ ref: string; status: string | null; rule: string | null; present: boolean }[]>(
        `SELECT t.ref, m.status, m.rule,
                EXISTS (SELECT 1 FROM resource r WHERE r.store = $1 AND r.type = split_part(t.ref, '/', 1) AND r.id = split_part(t.ref, '/', 2) AND r.content IS NOT NULL) AS present
           FROM unnest($2::text[]) AS t(ref)
           LEFT JOIN agg_member m ON m.store = $1 AND m.type = split_part(t.ref, '/', 1) AND m.res_id = split_part(t.ref, '/', 2)`,
        store,
        others,
      )
    : [];
  const stateOf = new Map(states.map((s) => [s.ref, s]));
  for (const [root, cascade] of cascades) {
    const [rootType] = root.split('/');
    const own = excluded.get(root);
    const rule = own ? (own.target ? 'other' : CASCADE_RULES.has(own.rule) ? 'pending' : own.rule) : rootRule(stateOf.get(root));
    const c = causeOf(rootType, rule);
    c.excludedThrough += cascade.total;
    c.asSourceOrganization += cascade.viaSource;
    for (const [type, count] of cascade.types) {
      const step = c.cascade.find((s) => s.type === type);
      if (step) step.count += count;
      else c.cascade.push({ type, count });
    }
    // A root that is no excluded resource (or a chain that comes back on itself) is counted here, once.
    if ((!own || own.target) && c.count !== null) {
      c.count += 1;
      addExample(c.examples, root);
    }
  }

  for (const e of exclusions.values()) {
    e.targets = sortedTargets(targetsOf.get(`${e.type}|${e.rule}`) ?? new Map());
    e.description = describeCount(e.count, e.type, e.rule, e.targets);
  }
  for (const c of causes.values()) {
    c.cascade.sort((a, b) => b.count - a.count || a.type.localeCompare(b.type));
    const what =
      c.count === null
        ? `${c.type} resources (a type your token may not read) ${EXCLUSION_RULES[c.rule as ExclusionRule] ?? ''}`.trim()
        : describeCount(c.count, c.type, c.rule, sortedTargets(targetsOf.get(`cause|${c.type}|${c.rule}`) ?? new Map()));
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

/** Why a resource at the end of a chain, which is not an excluded resource of the endpoint, is not aggregated. */
function rootRule(state: { status: string | null; rule: string | null; present: boolean } | undefined): string {
  if (state?.status === 'excluded' && state.rule === 'deleted') return 'deleted';
  // Included by now (what waits for it is queued again), or on the endpoint but not aggregated yet.
  if (state?.status === 'included' || state?.present) return 'pending';
  return 'missing';
}
