/**
 * The inclusion rules of DESIGN §3.2 and §3.7 as codes, one per way a resource can be left out of the
 * aggregated record. Each exclusion records its rule (`agg_member.rule`), and the type of what it refers
 * to where it is about a reference (`agg_member.target_type`), beside its reason text, so the aggregation
 * report (report.ts) and the requeue on a change of AGGREGATED_TYPES never parse the texts.
 */
export const EXCLUSION_RULES = {
  'identifier-only-reference': 'have a reference with an identifier only (not resolved)',
  'contained-reference': 'have a contained reference (#id)',
  'reference-not-resolvable': 'have a reference that is not Type/id',
  'reference-to-unsupported-type': 'refer to a type the aggregation does not support',
  'unsupported-type': 'are of a type the aggregation does not support',
  'invalid-after-mapping': 'are not valid R4 after the STU3→R4 mapping',
  'identifier-missing': 'have no identifier',
  'identifier-without-system': 'have an identifier without a system',
  'code-coding-missing': 'have no code.coding',
  'coding-without-system': 'have a code.coding without a system',
  'link-target-missing': 'have no link.target',
  'practitioner-missing': 'have no practitioner',
  'organization-missing': 'have no organization',
  'no-source-organization': 'have no source organisation (their patient names no managingOrganization and the endpoint has no default)',
  'target-not-aggregated': 'refer to a resource that is not in the aggregated record',
  'source-organization-not-aggregated': "are sourced by the endpoint's default organisation, which is not in the aggregated record",
  deleted: 'were deleted on the endpoint',
  /** Report only: a reference target that is not on the endpoint at all. */
  missing: 'are referred to but not on this endpoint',
  /** Report only: a reference target that has not been aggregated yet. */
  pending: 'are not aggregated yet',
  /** Exclusions recorded without a rule. */
  other: 'are excluded for another reason',
} as const;

export type ExclusionRule = keyof typeof EXCLUSION_RULES;

/** Exclusions that point at another resource (`Exclusion.waitingFor`): their cause is that resource's. */
export const CASCADE_RULES: ReadonlySet<string> = new Set<ExclusionRule>(['target-not-aggregated', 'source-organization-not-aggregated']);

/**
 * Rules about a referenced resource whose type varies from one exclusion to the next: the report names those
 * types (`agg_member.target_type`, rules.ts `exclusionTarget`). A default source organisation is always an
 * Organization, and the other rules are about the resource itself.
 */
export const REFERENCE_RULES: ReadonlySet<string> = new Set<ExclusionRule>(['reference-to-unsupported-type', 'target-not-aggregated']);

/** How many exclusions of one rule refer to resources of one type. */
export interface TargetCount {
  type: string;
  count: number;
}

/**
 * "40 Organizations have no identifier", "1 Organization has no identifier"; with the referenced types of a
 * REFERENCE_RULES rule, "3 Observations refer to a type the aggregation does not support (Group: 2, Location: 1)"
 * (largest first), or "(Group)" when there is one.
 */
export function describeCount(count: number, type: string, rule: string, targets: readonly TargetCount[] = []): string {
  const phrase: string = EXCLUSION_RULES[rule as ExclusionRule] ?? EXCLUSION_RULES.other;
  const named =
    REFERENCE_RULES.has(rule) && targets.length
      ? ` (${targets.length === 1 ? targets[0].type : targets.map((t) => `${t.type}: ${t.count.toLocaleString('en-GB')}`).join(', ')})`
      : '';
  if (count === 1) return `1 ${type} ${phrase.replace(/^(have|are|refer|were)\b/, (v) => ({ have: 'has', are: 'is', refer: 'refers', were: 'was' })[v] as string)}${named}`;
  return `${count.toLocaleString('en-GB')} ${type}${type.endsWith('s') ? 'es' : 's'} ${phrase}${named}`;
}

/** Counts per type, largest first (ties by name). */
export function sortedTargets(counts: ReadonlyMap<string, number>): TargetCount[] {
  return [...counts].map(([type, count]) => ({ type, count })).sort((a, b) => b.count - a.count || a.type.localeCompare(b.type));
}
