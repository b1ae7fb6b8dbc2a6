/**
 * FHIR search parameters → conditions of the search's SQL tree (search.html). Each condition constrains one
 * `resource` row alias (`r`, `r1`, … for chain hops and `_has` levels); the per-type predicate builders in
 * predicates/ turn a parameter's values into index lookups. Values travel as bind parameters, never as SQL
 * text; the caller's access filter is added to every `resource` row by the tree when it is rendered.
 */
import { badRequest } from '../fhir/outcome';
import { indexedAs, searchParameter } from '../fhir/searchParameters';
import type { FhirVersion } from '../fhir/types';
import { indexKey } from './indexKey';
import { chainPredicate } from './predicates/chainPredicate';
import { compositePredicate } from './predicates/compositePredicate';
import { datePredicate } from './predicates/datePredicate';
import { hasPredicate } from './predicates/hasPredicate';
import { idPredicate } from './predicates/idPredicate';
import { IndexLookup } from './predicates/indexLookup';
import { lastUpdatedPredicate } from './predicates/lastUpdatedPredicate';
import { missingPredicate } from './predicates/missingPredicate';
import { numberPredicate } from './predicates/numberPredicate';
import type { PredicateContext, PredicateInput, Scope } from './predicates/predicateContext';
import { quantityPredicate } from './predicates/quantityPredicate';
import { referencePredicate } from './predicates/referencePredicate';
import { sortKey, type SortKey } from './predicates/sortKey';
import { parseName, splitKeepingEscapes } from './predicates/searchValue';
import { stringPredicate } from './predicates/stringPredicate';
import { tokenPredicate } from './predicates/tokenPredicate';
import { UnknownParameter } from './predicates/unknownParameter';
import { uriPredicate } from './predicates/uriPredicate';
import { AnyOf, Column, eq, Param, type SqlNode, Table } from './sql/sqlTree';

const BY_TYPE: Record<string, (ctx: PredicateContext, input: PredicateInput) => SqlNode> = {
  token: tokenPredicate,
  string: stringPredicate,
  uri: uriPredicate,
  date: datePredicate,
  number: numberPredicate,
  quantity: quantityPredicate,
  reference: referencePredicate,
  composite: compositePredicate,
};

export class ConditionBuilder implements PredicateContext {
  private resourceAliases = 0;
  private indexAliases = 0;

  readonly shardedIndex: boolean;

  /** `version`: the searched store's FHIR version, whose search parameters apply; `shardedIndex`: see PredicateContext. */
  constructor(
    readonly version: FhirVersion = 'R4',
    options: { shardedIndex?: boolean } = {},
  ) {
    this.shardedIndex = options.shardedIndex ?? false;
  }

  /**
   * The condition for `name=value` on the scope's rows, and the index lookup it is when it is exactly one
   * positive lookup on those rows (no chain, no :not, no :missing): such a lookup can drive the query in pk order.
   */
  conditionWithDriver(scope: Scope, name: string, value: string): { condition: SqlNode; driver?: IndexLookup } {
    const condition = this.condition(scope, name, value);
    const driver = condition instanceof IndexLookup && condition.owner === scope.alias && condition.type === scope.type ? condition : undefined;
    return { condition, driver };
  }

  nextResourceAlias(): string {
    return `r${++this.resourceAliases}`;
  }

  nextIndexAlias(): string {
    return `i${++this.indexAliases}`;
  }

  keyCondition(column: Column, store: string, type: string, code: string, suffix = ''): SqlNode {
    const keys = indexedAs(type, code, this.version).map((c) => indexKey(store, type, `${c}${suffix}`));
    return keys.length === 1 ? eq(column, new Param(keys[0], 'bigint')) : new AnyOf(column, new Param(keys, 'bigint[]'));
  }

  lookup(table: string, scope: Scope, code: string, where: (column: (name: string) => Column) => SqlNode, suffix = ''): IndexLookup {
    const t = new Table(table, this.nextIndexAlias());
    return new IndexLookup(
      t,
      scope.type,
      scope.alias,
      this.keyCondition(t.column('key'), scope.store, scope.type, code, suffix),
      where((name) => t.column(name)),
    );
  }

  /** The predicate for one `name=value` pair (value may hold comma-separated alternatives). */
  condition(scope: Scope, name: string, value: string): SqlNode {
    if (name.startsWith('_has:')) return hasPredicate(this, scope, name, value);
    const { code, modifier, chain } = parseName(name);
    if (code === '_id') return idPredicate(scope, modifier, value);
    if (code === '_lastUpdated') return lastUpdatedPredicate(scope, value);
    const def = searchParameter(scope.type, code, this.version);
    // The version is named: STU3 and R4 endpoints (and GraphQL arguments serving both) differ in their parameters.
    if (!def) throw new UnknownParameter(name, `Unknown search parameter '${code}' for ${scope.type} in FHIR ${this.version}`);
    if (chain) return chainPredicate(this, scope, def, modifier, chain, value);
    if (modifier === 'missing') return missingPredicate(this, scope, def, name, value);
    const alternatives = splitKeepingEscapes(value, ',');
    if (alternatives.some((a) => a === '')) throw badRequest(`Empty value in parameter '${name}'`, name);
    const build = BY_TYPE[def.type];
    if (!build) throw new UnknownParameter(name, `Search parameter '${code}' (${def.type}) is not supported`);
    return build(this, { scope, def, name, modifier, alternatives });
  }

  /** A sort key for `_sort` (lowest value ascending, highest descending): the row's own index rows only. */
  sortKey(scope: Scope, code: string, descending: boolean): SortKey {
    return sortKey(this, scope, code, descending);
  }
}
