import { badRequest } from '../../fhir/outcome';
import { MAX_STRING, normalizeString } from '../indexValues';
import { Binary, Conjunction, Disjunction, eq, Param } from '../sql/sqlTree';
import type { IndexLookup } from './indexLookup';
import type { PredicateContext, PredicateInput } from './predicateContext';
import { likePrefix, splitEscaped } from './searchValue';

/** String parameters (search.html#string): starts-with on the normalised value; `:exact` and `:contains`. */
export function stringPredicate(ctx: PredicateContext, { scope, def, name, modifier, alternatives }: PredicateInput): IndexLookup {
  const values = alternatives.map((a) => splitEscaped(a, '\u0000')[0]);
  if (modifier && modifier !== 'exact' && modifier !== 'contains') {
    throw badRequest(`Modifier ':${modifier}' is not valid for string parameter '${def.code}' (use :exact, :contains or :missing)`, name);
  }
  return ctx.lookup(
    'search_string',
    scope,
    def.code,
    (col) =>
      new Disjunction(
        values.map((v) => {
          // :exact goes through the normalised value (the indexed column) and then compares as sent.
          if (modifier === 'exact') return new Conjunction([eq(col('value'), new Param(normalizeString(v))), eq(col('exact'), new Param(v.slice(0, MAX_STRING)))]);
          const pattern = modifier === 'contains' ? `%${likePrefix(normalizeString(v))}%` : `${likePrefix(normalizeString(v))}%`;
          return new Binary(col('value'), 'LIKE', new Param(pattern));
        }),
      ),
  );
}
