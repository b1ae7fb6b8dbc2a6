import { badRequest } from '../../fhir/outcome';
import { parseReference } from '../indexValues';
import { Conjunction, Disjunction, eq, Param } from '../sql/sqlTree';
import type { IndexLookup } from './indexLookup';
import type { PredicateContext, PredicateInput } from './predicateContext';
import { splitEscaped } from './searchValue';
import { tokenMatch } from './tokenPredicate';

/**
 * Reference parameters (search.html#reference): `Type/id`, a bare id (any target type, or the `:Type`
 * modifier's), an absolute URL; `:identifier` searches the references' identifiers (token rows of their own).
 */
export function referencePredicate(ctx: PredicateContext, { scope, def, name, modifier, alternatives }: PredicateInput): IndexLookup {
  if (modifier === 'identifier') {
    return ctx.lookup('search_token', scope, def.code, (col) => new Disjunction(alternatives.map((a) => tokenMatch(name, a, col('system'), col('code')))), ':identifier');
  }
  const typed = modifier && /^[A-Z]/.test(modifier) ? modifier : undefined;
  if (modifier && !typed) throw badRequest(`Modifier ':${modifier}' is not valid for reference parameter '${def.code}'`, name);
  if (typed && def.target.length && !def.target.includes(typed)) throw badRequest(`'${def.code}' cannot refer to a ${typed}`, name);
  return ctx.lookup(
    'search_reference',
    scope,
    def.code,
    (col) =>
      new Disjunction(
        alternatives.map((raw) => {
          const value = splitEscaped(raw, '\u0000')[0];
          const target = (type: string, id: string) => new Conjunction([eq(col('target_type'), new Param(type)), eq(col('target_id'), new Param(id))]);
          if (!value.includes('/')) return typed ? target(typed, value) : eq(col('target_id'), new Param(value));
          const ref = parseReference(value);
          if (ref.targetType) {
            if (typed && ref.targetType !== typed) throw badRequest(`'${value}' is not a ${typed} reference`, name);
            return target(ref.targetType, ref.targetId as string);
          }
          return eq(col('url'), new Param(value));
        }),
      ),
  );
}
