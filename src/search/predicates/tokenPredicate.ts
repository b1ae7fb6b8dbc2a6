import { badRequest, notSupported } from '../../fhir/outcome';
import { normalizeString } from '../indexValues';
import { Binary, Conjunction, Disjunction, eq, IsNull, Not, Param, type SqlNode } from '../sql/sqlTree';
import type { PredicateContext, PredicateInput } from './predicateContext';
import { likePrefix, splitEscaped } from './searchValue';

/** Token parameters (search.html#token): `code`, `system|code`, `|code`, `system|`; `:not` and `:text`. */
export function tokenPredicate(ctx: PredicateContext, { scope, def, name, modifier, alternatives }: PredicateInput): SqlNode {
  if (modifier === 'text') {
    return ctx.lookup(
      'search_token',
      scope,
      def.code,
      (col) => new Disjunction(alternatives.map((a) => new Binary(col('text'), 'LIKE', new Param(likePrefix(normalizeString(a)) + '%')))),
    );
  }
  if (modifier && modifier !== 'not') {
    throw notSupported(`Modifier ':${modifier}' is not supported on token parameter '${def.code}' (supported: :not, :text, :missing)`);
  }
  const lookup = ctx.lookup('search_token', scope, def.code, (col) => new Disjunction(alternatives.map((a) => tokenMatch(name, a, col('system'), col('code')))));
  return modifier === 'not' ? new Not(lookup) : lookup;
}

/** One `system|code` value against a system and a code column; also references' `:identifier` and composites. */
export function tokenMatch(parameter: string, raw: string, systemColumn: SqlNode, codeColumn: SqlNode): SqlNode {
  const parts = splitEscaped(raw, '|');
  if (parts.length > 2) throw badRequest(`'${raw}' is not a token (system|code) for parameter '${parameter}'`, parameter);
  if (parts.length === 1) return eq(codeColumn, new Param(parts[0]));
  const [system, code] = parts;
  if (system === '' && code === '') throw badRequest(`Empty token for parameter '${parameter}'`, parameter);
  if (system === '') return new Conjunction([eq(codeColumn, new Param(code)), new IsNull(systemColumn)]);
  if (code === '') return eq(systemColumn, new Param(system));
  return new Conjunction([eq(codeColumn, new Param(code)), eq(systemColumn, new Param(system))]);
}
