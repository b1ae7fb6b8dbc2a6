import { badRequest } from '../../fhir/outcome';
import { searchParameter } from '../../fhir/searchParameters';
import { Aliased, Column, Derived, eq, Fn, type Join, Scalar, SelectQuery, type SqlNode, Table } from '../sql/sqlTree';
import { INDEX_TABLE } from './indexTable';
import type { PredicateContext, Scope } from './predicateContext';
import { UnknownParameter } from './unknownParameter';

/** A `_sort` key: what to order by, and the join that brings it in when it is not an expression of the row. */
export interface SortKey {
  expr: SqlNode;
  join?: Join;
}

/** The index column a parameter type sorts by (a date: its lowest instant ascending, its highest descending). */
function sortColumn(type: string, descending: boolean): string | undefined {
  const columns: Record<string, string> = {
    string: 'value',
    token: 'code',
    date: descending ? 'high' : 'low',
    number: 'value',
    quantity: 'value',
    uri: 'value',
    reference: 'target_id',
  };
  return columns[type];
}

/**
 * The sort key of `_sort=[-]code` (search.html#sort) on the scope's rows: the lowest of the row's own index
 * values ascending, the highest descending; rows without one sort last (the caller's NULLS LAST).
 */
export function sortKey(ctx: PredicateContext, scope: Scope, code: string, descending: boolean): SortKey {
  if (code === '_id') return { expr: new Column(scope.alias, 'id') };
  if (code === '_lastUpdated') return { expr: new Column(scope.alias, 'last_updated') };
  const def = searchParameter(scope.type, code, ctx.version);
  if (!def) throw new UnknownParameter(`_sort=${code}`, `Unknown search parameter '${code}' for ${scope.type} in _sort`);
  const column = sortColumn(def.type, descending);
  if (!column) throw badRequest(`Cannot sort by '${code}' (${def.type})`, '_sort');
  const t = new Table(INDEX_TABLE[def.type], ctx.nextIndexAlias());
  // The parameter's key filters the row's own index rows (a handful) rather than joining the row lookup:
  // `key = …` beside `resource_pk = r.pk` lets a planner without statistics AND in the (key, value) index
  // too, which reads every row of the parameter — once per sorted row, a cost that grows with the table.
  const key = ctx.keyCondition(t.column('key'), scope.store, scope.type, code);
  const aggregate = descending ? 'max' : 'min';
  if (ctx.shardedIndex) {
    // On Citus a correlated subquery from the coordinator's `resource` into a sharded table has no plan:
    // the parameter's values per row are grouped on the shards (grouped by their distribution column), and
    // the coordinator joins that result to its rows.
    const sorted = new Derived(
      new SelectQuery({ columns: [t.column('resource_pk'), new Aliased(new Fn(aggregate, [t.column(column)]), 'v')], from: t, where: [key], groupBy: [t.column('resource_pk')] }),
      `s${t.alias}`,
    );
    return { expr: sorted.column('v'), join: { table: sorted, on: [eq(sorted.column('resource_pk'), new Column(scope.alias, 'pk'))], left: true } };
  }
  return {
    expr: new Scalar(new SelectQuery({ columns: [new Fn(aggregate, [t.column(column)], key)], from: t, where: [eq(t.column('resource_pk'), new Column(scope.alias, 'pk'))] })),
  };
}
