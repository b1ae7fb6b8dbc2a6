import { badRequest } from '../fhir/outcome';
import { splitKeepingEscapes } from './predicates/searchValue';

/**
 * Bounds on the work one search may ask for (issue 16), checked before any SQL is built: each parameter is a
 * join or a subquery, each OR alternative a branch, each chain hop or `_has` level a nested join, each include
 * a round of queries. Medplum caps chains and `_has` at 3 levels; the other limits are far above what the
 * FHIR clients we serve send (Synthea and the web UI use under 10 parameters and a handful of alternatives).
 */
export const SEARCH_LIMITS = {
  /** Query parameters in one search, control parameters included. */
  parameters: 50,
  /** Chain hops in one parameter (`subject:Patient.organization.name` is 2). */
  chainDepth: 3,
  /** `_has` levels in one parameter. */
  hasDepth: 3,
  /** Comma-separated alternatives in one value. */
  alternatives: 100,
  /** `_include` and `_revinclude` parameters together. */
  includes: 10,
} as const;

/** 400 naming the limit and the parameter that goes over it. */
export function assertSearchLimits(params: [string, string][]): void {
  if (params.length > SEARCH_LIMITS.parameters) {
    throw badRequest(`The search has ${params.length} parameters: at most ${SEARCH_LIMITS.parameters} parameters are allowed in one search`);
  }
  let includes = 0;
  for (const [name, value] of params) {
    if (name.startsWith('_include') || name.startsWith('_revinclude')) {
      if (++includes > SEARCH_LIMITS.includes) throw badRequest(`At most ${SEARCH_LIMITS.includes} _include and _revinclude parameters are allowed in one search`, name);
      continue;
    }
    const has = name.split('_has:').length - 1;
    if (has > SEARCH_LIMITS.hasDepth) throw badRequest(`'${name}' nests _has ${has} levels deep: at most ${SEARCH_LIMITS.hasDepth} are allowed`, name);
    const hops = name.split('.').length - 1;
    if (hops > SEARCH_LIMITS.chainDepth) throw badRequest(`'${name}' chains ${hops} references deep: a chain may have at most ${SEARCH_LIMITS.chainDepth} hops`, name);
    if (!name.startsWith('_') || name.startsWith('_has:')) {
      const alternatives = splitKeepingEscapes(value, ',').length;
      if (alternatives > SEARCH_LIMITS.alternatives) {
        throw badRequest(`'${name}' has ${alternatives} comma-separated values: at most ${SEARCH_LIMITS.alternatives} values are allowed in one parameter`, name);
      }
    }
  }
}
