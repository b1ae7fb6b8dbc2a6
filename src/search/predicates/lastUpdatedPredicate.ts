import { Column, Disjunction, type SqlNode } from '../sql/sqlTree';
import { dateComparison } from './datePredicate';
import type { Scope } from './predicateContext';
import { dateValue, splitKeepingEscapes } from './searchValue';

/** `_lastUpdated` (search.html#lastUpdated): date prefixes against the row's own last_updated instant. */
export function lastUpdatedPredicate(scope: Scope, value: string): SqlNode {
  const col = new Column(scope.alias, 'last_updated');
  return new Disjunction(
    splitKeepingEscapes(value, ',').map((a) => {
      const { prefix, range } = dateValue('_lastUpdated', a);
      return dateComparison(prefix, col, col, range);
    }),
  );
}
