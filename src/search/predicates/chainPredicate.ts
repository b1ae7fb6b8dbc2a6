import { badRequest } from '../../fhir/outcome';
import { searchParameterMap, type SearchParamDef } from '../../fhir/searchParameters';
import { Column, eq, InCte, InSubquery, IsNull, Param, RESOURCE_TABLE, SelectQuery, type SqlNode, Table, Union } from '../sql/sqlTree';
import type { PredicateContext, Scope } from './predicateContext';
import { parseName } from './searchValue';
import { UnknownParameter } from './unknownParameter';

/**
 * `subject:Patient.name=x` (search.html#chaining): the scope's rows whose reference's target satisfies the
 * rest of the chain, which may chain again. Each hop's target is a `resource` row of its own alias, so the
 * caller's access filter holds on it: a hidden target matches nothing.
 */
export function chainPredicate(ctx: PredicateContext, scope: Scope, def: SearchParamDef, modifier: string | undefined, chain: string, value: string): SqlNode {
  if (def.type !== 'reference') throw badRequest(`'${def.code}' is not a reference parameter and cannot be chained`, def.code);
  const { code: next } = parseName(chain);
  const candidates = modifier ? [modifier] : def.target.length ? def.target : [];
  const targets = candidates.filter((t) => next.startsWith('_') || searchParameterMap(t, ctx.version).has(next));
  if (!targets.length) throw new UnknownParameter(`${def.code}.${chain}`, `No target of '${def.code}' has a search parameter '${next}'`);
  const branches = targets.map((target) => {
    const ref = new Table('search_reference', ctx.nextIndexAlias());
    const hop = new Table(RESOURCE_TABLE, ctx.nextResourceAlias());
    const inner = ctx.condition({ store: scope.store, type: target, alias: hop.alias }, chain, value);
    const references = [ctx.keyCondition(ref.column('key'), scope.store, scope.type, def.code), eq(ref.column('target_type'), new Param(target))];
    if (ctx.shardedIndex) {
      // On Citus the hop's rows (the coordinator's, with their access filter's correlated subqueries) are
      // found first, as a CTE (see InCte), then the references to them on the shards: a sharded table joined
      // to the coordinator's `resource` beside correlated subqueries has no plan.
      const hops = new SelectQuery({
        columns: [hop.column('type'), hop.column('id')],
        from: hop,
        where: [eq(hop.column('store'), new Param(scope.store)), eq(hop.column('type'), new Param(target)), new IsNull(hop.column('content'), true), inner],
      });
      return new SelectQuery({
        columns: [ref.column('resource_pk')],
        from: ref,
        where: [...references, new InCte([ref.column('target_type'), ref.column('target_id')], hops)],
      });
    }
    return new SelectQuery({
      columns: [ref.column('resource_pk')],
      from: ref,
      joins: [
        { table: hop, on: [eq(hop.column('store'), new Param(scope.store)), eq(hop.column('type'), ref.column('target_type')), eq(hop.column('id'), ref.column('target_id'))] },
      ],
      where: [...references, new IsNull(hop.column('content'), true), inner],
    });
  });
  return new InSubquery(new Column(scope.alias, 'pk'), branches.length === 1 ? branches[0] : new Union(branches));
}
