/**
 * What a predicate builder gets: the row it constrains, and the builder's services — index lookups that know
 * their table alias, key conditions, fresh `resource` aliases, and the whole condition for recursion (chains,
 * `_has`).
 */
import { badRequest } from '../../fhir/outcome';
import type { SearchParamDef } from '../../fhir/searchParameters';
import type { FhirVersion } from '../../fhir/types';
import type { Column, SqlNode } from '../sql/sqlTree';
import type { IndexLookup } from './indexLookup';

export interface Scope {
  store: string;
  type: string;
  /** The `resource` row alias the predicate constrains. */
  alias: string;
}

export interface PredicateContext {
  /** The FHIR version of the searched store: its search parameters are the ones that exist. */
  readonly version: FhirVersion;
  /** The index tables are sharded away from `resource` (Citus): no correlated subquery into them. */
  readonly shardedIndex: boolean;
  /** The index rows of parameter `code` of the scope's type (`suffix`: e.g. a reference's `:identifier` rows) satisfying `where`. */
  lookup(table: string, scope: Scope, code: string, where: (column: (name: string) => Column) => SqlNode, suffix?: string): IndexLookup;
  /** `column = key` (or `= ANY(keys)` for a derived parameter) for parameter `code` of `type` in `store`. */
  keyCondition(column: Column, store: string, type: string, code: string, suffix?: string): SqlNode;
  /** A fresh alias for another `resource` row (chain hops, `_has` levels). */
  nextResourceAlias(): string;
  /** A fresh alias for an index table. */
  nextIndexAlias(): string;
  /** The predicate for `name=value` on the scope's rows. */
  condition(scope: Scope, name: string, value: string): SqlNode;
}

/** One parameter's predicate: the parameter, its definition, modifier and comma-separated alternatives. */
export interface PredicateInput {
  scope: Scope;
  def: SearchParamDef;
  name: string;
  modifier?: string;
  alternatives: string[];
}

export function noModifier(name: string, modifier: string | undefined): void {
  if (modifier) throw badRequest(`Modifier ':${modifier}' is not valid for parameter '${name.split(':')[0]}'`, name);
}
