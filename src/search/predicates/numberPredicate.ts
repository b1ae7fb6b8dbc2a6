import { Binary, Conjunction, Disjunction, Not, Param, type SqlNode } from '../sql/sqlTree';
import type { IndexLookup } from './indexLookup';
import { noModifier, type PredicateContext, type PredicateInput } from './predicateContext';
import { type NumberValue, numberValue } from './searchValue';

/** Number parameters (search.html#number), with the value's implicit precision. */
export function numberPredicate(ctx: PredicateContext, { scope, def, name, modifier, alternatives }: PredicateInput): IndexLookup {
  noModifier(name, modifier);
  return ctx.lookup('search_number', scope, def.code, (col) => new Disjunction(alternatives.map((a) => numberComparison(col('value'), numberValue(name, a)))));
}

/** A number's prefix against `column`; also quantities and composites. */
export function numberComparison(column: SqlNode, n: NumberValue): SqlNode {
  const num = (v: number | string) => new Param(String(v), 'numeric');
  const range = () => new Conjunction([new Binary(column, '>=', num(n.low)), new Binary(column, '<', num(n.high))]);
  switch (n.prefix) {
    case 'eq':
      return range();
    case 'ne':
      return new Not(range());
    case 'gt':
    case 'sa':
      return new Binary(column, '>', num(n.text));
    case 'lt':
    case 'eb':
      return new Binary(column, '<', num(n.text));
    case 'ge':
      return new Binary(column, '>=', num(n.text));
    case 'le':
      return new Binary(column, '<=', num(n.text));
    case 'ap': {
      const d = Math.abs(n.value) * 0.1;
      return new Conjunction([new Binary(column, '>=', num(n.value - d)), new Binary(column, '<=', num(n.value + d))]);
    }
  }
}
