import { badRequest } from '../../fhir/outcome';
import { searchParameter } from '../../fhir/searchParameters';
import { Column, eq, InCte, InSubquery, Not, Param, RESOURCE_TABLE, SelectQuery, type SqlNode, Table } from '../sql/sqlTree';
import type { PredicateContext, Scope } from './predicateContext';
import { UnknownParameter } from './unknownParameter';

/**
 * `_has:Observation:patient:code=1234` (search.html#has): the scope's rows referred to by a matching
 * Observation's `patient`; the rest may be another `_has`. The referring rows are `resource` rows of their own
 * alias, so the caller's access filter holds on every level: a hidden referrer counts for nothing.
 */
export function hasPredicate(ctx: PredicateContext, scope: Scope, name: string, value: string): SqlNode {
  const m = /^_has:([A-Z][A-Za-z]*):([a-z][A-Za-z0-9-]*):(.+)$/.exec(name);
  if (!m) throw badRequest(`'${name}' is not a valid _has parameter (_has:Type:reference:parameter)`, name);
  const [, type, refParam, rest] = m;
  const def = searchParameter(type, refParam, ctx.version);
  if (!def || def.type !== 'reference') throw new UnknownParameter(name, `${type} has no reference parameter '${refParam}'`);
  const ref = new Table('search_reference', ctx.nextIndexAlias());
  const referrer = new Table(RESOURCE_TABLE, ctx.nextResourceAlias());
  const inner = ctx.condition({ store: scope.store, type, alias: referrer.alias }, rest, value);
  const references = [ctx.keyCondition(ref.column('key'), scope.store, type, refParam), eq(ref.column('target_type'), new Param(scope.type))];
  if (ctx.shardedIndex) {
    // On Citus the referring rows (the coordinator's, with their access filter's correlated subqueries) are
    // found first, as a CTE (see InCte), then their references on the shards: a sharded table joined to the
    // coordinator's `resource` beside correlated subqueries has no plan. The key says the referrers' store and type.
    const referrers = new SelectQuery({
      columns: [referrer.column('pk')],
      from: referrer,
      where: [eq(referrer.column('store'), new Param(scope.store)), eq(referrer.column('type'), new Param(type)), new Not(referrer.column('deleted')), inner],
    });
    return new InSubquery(
      new Column(scope.alias, 'id'),
      new SelectQuery({ columns: [ref.column('target_id')], from: ref, where: [...references, new InCte(ref.column('resource_pk'), referrers)] }),
    );
  }
  return new InSubquery(
    new Column(scope.alias, 'id'),
    new SelectQuery({
      columns: [ref.column('target_id')],
      from: ref,
      joins: [{ table: referrer, on: [eq(referrer.column('pk'), ref.column('resource_pk'))] }],
      where: [...references, new Not(referrer.column('deleted')), inner],
    }),
  );
}
