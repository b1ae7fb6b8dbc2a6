import { badRequest, notSupported } from '../../fhir/outcome';
import type { SearchParamDef } from '../../fhir/searchParameters';
import { Column, Constant, eq, Exists, InSubquery, Not, SelectQuery, type SqlNode, Table } from '../sql/sqlTree';
import { INDEX_TABLE } from './indexTable';
import type { PredicateContext, Scope } from './predicateContext';

/** `:missing=true|false` (search.html#missing): whether the row has any index row for the parameter. */
export function missingPredicate(ctx: PredicateContext, scope: Scope, def: SearchParamDef, name: string, value: string): SqlNode {
  if (value !== 'true' && value !== 'false') throw badRequest(`:missing takes true or false (parameter '${name}')`, name);
  const table = INDEX_TABLE[def.type];
  if (!table) throw notSupported(`:missing is not supported on '${def.code}'`);
  const m = new Table(table, ctx.nextIndexAlias());
  if (ctx.shardedIndex) {
    // On Citus, the parameter's rows first (on the shards), then the coordinator's rows against them.
    const keyed = new InSubquery(
      new Column(scope.alias, 'pk'),
      new SelectQuery({ columns: [m.column('resource_pk')], from: m, where: [ctx.keyCondition(m.column('key'), scope.store, scope.type, def.code)] }),
    );
    return value === 'true' ? new Not(keyed) : keyed;
  }
  // Probed per candidate row through the table's resource_pk index: no index leads with the key alone.
  const present = new Exists(
    new SelectQuery({
      columns: [new Constant(1)],
      from: m,
      where: [eq(m.column('resource_pk'), new Column(scope.alias, 'pk')), ctx.keyCondition(m.column('key'), scope.store, scope.type, def.code)],
    }),
  );
  return value === 'true' ? new Not(present) : present;
}
