import type { Range } from '../dateRange';
import { Binary, Conjunction, Disjunction, Not, Param, type SqlNode } from '../sql/sqlTree';
import type { IndexLookup } from './indexLookup';
import { noModifier, type PredicateContext, type PredicateInput } from './predicateContext';
import { dateValue, type Prefix } from './searchValue';

/** Date parameters (search.html#date): each alternative's prefix against the indexed [low, high] range. */
export function datePredicate(ctx: PredicateContext, { scope, def, name, modifier, alternatives }: PredicateInput): IndexLookup {
  noModifier(name, modifier);
  return ctx.lookup(
    'search_date',
    scope,
    def.code,
    (col) =>
      new Disjunction(
        alternatives.map((a) => {
          const { prefix, range } = dateValue(name, a);
          return dateComparison(prefix, col('low'), col('high'), range);
        }),
      ),
  );
}

/** A date prefix against a row's [low, high] range (search.html#prefix); also `_lastUpdated` and composites. */
export function dateComparison(prefix: Prefix, low: SqlNode, high: SqlNode, range: Range): SqlNode {
  // Parameters are bound only when rendered, so an end a prefix does not use is never bound (it would have no
  // type PostgreSQL can infer).
  const pl = new Param(range.low.toISOString(), 'timestamptz');
  const ph = new Param(range.high.toISOString(), 'timestamptz');
  const within = () => new Conjunction([new Binary(low, '>=', pl), new Binary(high, '<=', ph)]);
  switch (prefix) {
    case 'eq':
      return within();
    case 'ne':
      return new Not(within());
    case 'gt':
      return new Binary(high, '>', ph);
    case 'lt':
      return new Binary(low, '<', pl);
    case 'ge':
      return new Disjunction([new Binary(high, '>', ph), within()]);
    case 'le':
      return new Disjunction([new Binary(low, '<', pl), within()]);
    case 'sa':
      return new Binary(low, '>', ph);
    case 'eb':
      return new Binary(high, '<', pl);
    case 'ap': {
      // Approximately: overlap with the range widened by a tenth of its distance from now (at least a day).
      const span = Math.max(86_400_000, Math.abs(Date.now() - range.low.getTime()) * 0.1);
      const wl = new Param(new Date(range.low.getTime() - span).toISOString(), 'timestamptz');
      const wh = new Param(new Date(range.high.getTime() + span).toISOString(), 'timestamptz');
      return new Conjunction([new Binary(low, '<=', wh), new Binary(high, '>=', wl)]);
    }
  }
}
