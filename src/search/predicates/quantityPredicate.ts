import { badRequest } from '../../fhir/outcome';
import { Conjunction, Disjunction, eq, Param, type SqlNode } from '../sql/sqlTree';
import type { IndexLookup } from './indexLookup';
import { noModifier, type PredicateContext, type PredicateInput } from './predicateContext';
import { numberComparison } from './numberPredicate';
import { numberValue, splitEscaped } from './searchValue';

/** Quantity parameters (search.html#quantity): `[prefix]number[|system|code]`. */
export function quantityPredicate(ctx: PredicateContext, { scope, def, name, modifier, alternatives }: PredicateInput): IndexLookup {
  noModifier(name, modifier);
  return ctx.lookup(
    'search_quantity',
    scope,
    def.code,
    (col) =>
      new Disjunction(
        alternatives.map((raw) => {
          const parts = splitEscaped(raw, '|');
          if (parts.length !== 1 && parts.length !== 3) throw badRequest(`'${raw}' is not a quantity (number|system|code) for parameter '${name}'`, name);
          const conds: SqlNode[] = [numberComparison(col('value'), numberValue(name, parts[0]))];
          if (parts.length === 3) {
            if (parts[1]) conds.push(eq(col('system'), new Param(parts[1])));
            if (parts[2]) conds.push(eq(col('code'), new Param(parts[2])));
          }
          return new Conjunction(conds);
        }),
      ),
  );
}
