import { badRequest } from '../../fhir/outcome';
import { componentType } from '../../fhir/searchParameters';
import { normalizeString } from '../indexValues';
import { Binary, Conjunction, Disjunction, eq, Param, type SqlNode } from '../sql/sqlTree';
import { dateComparison } from './datePredicate';
import type { IndexLookup } from './indexLookup';
import { numberComparison } from './numberPredicate';
import { noModifier, type PredicateContext, type PredicateInput } from './predicateContext';
import { dateValue, likePrefix, numberValue, splitEscaped } from './searchValue';
import { tokenMatch } from './tokenPredicate';

/** Composite parameters (search.html#composite): `a$b`, a token first and a token, quantity, date or string second. */
export function compositePredicate(ctx: PredicateContext, { scope, def, name, modifier, alternatives }: PredicateInput): IndexLookup {
  noModifier(name, modifier);
  const [first, second] = def.components ?? [];
  return ctx.lookup(
    'search_composite',
    scope,
    def.code,
    (col) =>
      new Disjunction(
        alternatives.map((raw) => {
          const parts = splitEscaped(raw, '$');
          if (parts.length !== 2 || !first || !second) throw badRequest(`'${raw}' is not a composite value (a$b) for parameter '${name}'`, name);
          const conds: SqlNode[] = [tokenMatch(name, parts[0], col('system1'), col('code1'))];
          const kind = componentType(second.definition, ctx.version);
          if (kind === 'token') conds.push(tokenMatch(name, parts[1], col('system2'), col('code2')));
          else if (kind === 'quantity') {
            const q = splitEscaped(parts[1], '|');
            conds.push(numberComparison(col('number2'), numberValue(name, q[0])));
            if (q[1]) conds.push(eq(col('system2'), new Param(q[1])));
            if (q[2]) conds.push(eq(col('code2'), new Param(q[2])));
          } else if (kind === 'date') {
            const { prefix, range } = dateValue(name, parts[1]);
            conds.push(dateComparison(prefix, col('low2'), col('high2'), range));
          } else if (kind === 'string') conds.push(new Binary(col('code2'), 'LIKE', new Param(`${likePrefix(normalizeString(parts[1]))}%`)));
          else conds.push(eq(col('code2'), new Param(parts[1])));
          return new Conjunction(conds);
        }),
      ),
  );
}
