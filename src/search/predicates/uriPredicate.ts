import { badRequest } from '../../fhir/outcome';
import { Binary, Constant, Disjunction, eq, Fn, Param } from '../sql/sqlTree';
import type { IndexLookup } from './indexLookup';
import type { PredicateContext, PredicateInput } from './predicateContext';
import { likePrefix, splitEscaped } from './searchValue';

/** Uri parameters (search.html#uri): equality; `:below` (a prefix of the value) and `:above` (the value's prefixes). */
export function uriPredicate(ctx: PredicateContext, { scope, def, name, modifier, alternatives }: PredicateInput): IndexLookup {
  const values = alternatives.map((a) => splitEscaped(a, '\u0000')[0]);
  if (modifier && modifier !== 'below' && modifier !== 'above') {
    throw badRequest(`Modifier ':${modifier}' is not valid for uri parameter '${def.code}' (use :above, :below or :missing)`, name);
  }
  return ctx.lookup(
    'search_uri',
    scope,
    def.code,
    (col) =>
      new Disjunction(
        values.map((v) => {
          if (modifier === 'below') return new Binary(col('value'), 'LIKE', new Param(`${likePrefix(v)}%`));
          if (modifier === 'above') {
            // The indexed value, its wildcards escaped, as a pattern the sent value must match.
            const escaped = new Fn('replace', [new Fn('replace', [col('value'), new Constant('%'), new Constant('\\%')]), new Constant('_'), new Constant('\\_')]);
            return new Binary(new Param(v), 'LIKE', new Binary(escaped, '||', new Constant('%')));
          }
          return eq(col('value'), new Param(v));
        }),
      ),
  );
}
