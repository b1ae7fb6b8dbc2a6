import { AnyOf, Column, Constant, Not, Param, type SqlNode } from '../sql/sqlTree';
import { noModifier, type Scope } from './predicateContext';
import { splitEscaped } from './searchValue';

/** `_id` (search.html#id): the row's own id, one of several; `:not`; `:missing` (an id is never missing). */
export function idPredicate(scope: Scope, modifier: string | undefined, value: string): SqlNode {
  if (modifier === 'missing') return new Constant(value !== 'true');
  const cond = new AnyOf(new Column(scope.alias, 'id'), new Param(splitEscaped(value, ','), 'text[]'));
  if (modifier === 'not') return new Not(cond);
  noModifier('_id', modifier);
  return cond;
}
