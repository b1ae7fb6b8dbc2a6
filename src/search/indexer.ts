import type { FhirVersion } from '../fhir/types';
import type { ResourceChange, Tx, WriteHook } from '../store/resourceRepository';
import { indexRows, type IndexRows } from './indexValues';

/**
 * The write hook that keeps the search tables in step with the current version of each resource, inside
 * the write's own transaction: old rows out, new rows in, in one statement (data-modifying CTEs), so
 * indexing costs one round trip per write whatever the number of parameters.
 */
const TABLES: { [K in keyof IndexRows]: { table: string; columns: string[]; casts: string[] } } = {
  string: { table: 'search_string', columns: ['param', 'value', 'exact'], casts: ['text', 'text', 'text'] },
  token: { table: 'search_token', columns: ['param', 'system', 'code', 'text'], casts: ['text', 'text', 'text', 'text'] },
  reference: { table: 'search_reference', columns: ['param', 'target_type', 'target_id', 'url'], casts: ['text', 'text', 'text', 'text'] },
  date: { table: 'search_date', columns: ['param', 'low', 'high'], casts: ['text', 'timestamptz', 'timestamptz'] },
  number: { table: 'search_number', columns: ['param', 'value'], casts: ['text', 'numeric'] },
  quantity: { table: 'search_quantity', columns: ['param', 'value', 'system', 'code'], casts: ['text', 'numeric', 'text', 'text'] },
  uri: { table: 'search_uri', columns: ['param', 'value'], casts: ['text', 'text'] },
  composite: {
    table: 'search_composite',
    columns: ['param', 'system1', 'code1', 'system2', 'code2', 'number2', 'low2', 'high2'],
    casts: ['text', 'text', 'text', 'text', 'text', 'numeric', 'timestamptz', 'timestamptz'],
  },
};

export const SEARCH_TABLES = Object.values(TABLES).map((t) => t.table);

export interface IndexItem {
  pk: bigint;
  store: string;
  type: string;
  /** Undefined for a deletion: only the old rows go. */
  rows?: IndexRows;
}

/**
 * One statement that replaces the index rows of one or many resources: a DELETE per table when `replace`,
 * and one INSERT … SELECT FROM unnest(…) per table that has rows. Exported for tests.
 */
export function indexStatement(items: IndexItem[], replace: boolean): { sql: string; params: unknown[] } | undefined {
  const params: unknown[] = [];
  const add = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  const ctes: string[] = [];
  if (replace) {
    const pks = add(items.map((i) => i.pk.toString()));
    for (const { table } of Object.values(TABLES)) ctes.push(`d_${table} AS (DELETE FROM ${table} WHERE resource_pk = ANY(${pks}::bigint[]))`);
  }
  for (const [kind, spec] of Object.entries(TABLES) as [keyof IndexRows, (typeof TABLES)[keyof IndexRows]][]) {
    const pk: string[] = [];
    const store: string[] = [];
    const type: string[] = [];
    const columns: (string | null)[][] = spec.columns.map(() => []);
    for (const item of items) {
      for (const row of (item.rows?.[kind] ?? []) as unknown[][]) {
        pk.push(item.pk.toString());
        store.push(item.store);
        type.push(item.type);
        // Everything travels as text[] and is cast in SQL, so 'infinity' dates and exact decimals survive.
        row.forEach((v, i) => columns[i].push(v === null || v === undefined ? null : String(v)));
      }
    }
    if (!pk.length) continue;
    const arrays = [add(pk), add(store), add(type), ...columns.map((c) => add(c))].map((ref) => `${ref}::text[]`);
    const select = spec.columns.map((_, i) => `u.c${i}::${spec.casts[i]}`).join(', ');
    const alias = spec.columns.map((_, i) => `c${i}`).join(', ');
    ctes.push(
      `i_${spec.table} AS (INSERT INTO ${spec.table} (resource_pk, store, type, ${spec.columns.join(', ')}) ` +
        `SELECT u.pk::bigint, u.store, u.type, ${select} FROM unnest(${arrays.join(', ')}) AS u(pk, store, type, ${alias}))`,
    );
  }
  if (!ctes.length) return undefined;
  return { sql: `WITH ${ctes.join(', ')} SELECT 1`, params };
}

function item(change: ResourceChange): IndexItem {
  return { pk: change.pk, store: change.store, type: change.type, rows: change.resource && !change.deleted ? indexRows(change.resource) : undefined };
}

export interface SearchIndexerOptions {
  /** The FHIR version of a store (endpoint); resources are indexed with that version's parameters. */
  fhirVersionOf?(store: string, tx: Tx): Promise<FhirVersion>;
}

export function createSearchIndexer(_options: SearchIndexerOptions = {}): WriteHook {
  const hook: WriteHook = async (tx: Tx, change: ResourceChange) => {
    const statement = indexStatement([item(change)], change.kind !== 'create');
    if (statement) await tx.$executeRawUnsafe(statement.sql, ...statement.params);
  };
  hook.many = async (tx: Tx, changes: ResourceChange[]) => {
    const statement = indexStatement(changes.map(item), changes.some((c) => c.kind !== 'create'));
    if (statement) await tx.$executeRawUnsafe(statement.sql, ...statement.params);
  };
  return hook;
}
