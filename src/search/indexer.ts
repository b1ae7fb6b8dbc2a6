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

/** One statement that replaces a resource's index rows. Exported for the bulk path and for tests. */
export function indexStatement(pk: bigint, store: string, type: string, rows: IndexRows | undefined, replace: boolean): { sql: string; params: unknown[] } | undefined {
  const params: unknown[] = [pk.toString()];
  const ctes: string[] = [];
  const hasRows = rows !== undefined && Object.values(rows).some((r) => r.length > 0);
  // Every bind parameter must be used, or PostgreSQL cannot type it: store and type only with inserts.
  if (hasRows) params.push(store, type);
  if (replace) for (const { table } of Object.values(TABLES)) ctes.push(`d_${table} AS (DELETE FROM ${table} WHERE resource_pk = $1::bigint)`);
  if (rows && hasRows) {
    for (const [kind, spec] of Object.entries(TABLES) as [keyof IndexRows, (typeof TABLES)[keyof IndexRows]][]) {
      const data = rows[kind] as unknown[][];
      if (!data.length) continue;
      // Arrays are passed as text[] and cast in SQL: a date 'infinity' or a NUMERIC beyond float range stays exact.
      const cols = spec.columns.map((_, i) => {
        params.push(data.map((row) => (row[i] === null || row[i] === undefined ? null : String(row[i]))));
        return `$${params.length}::text[]`;
      });
      const select = spec.columns.map((c, i) => `u.c${i}::${spec.casts[i]}`).join(', ');
      const alias = spec.columns.map((_, i) => `c${i}`).join(', ');
      ctes.push(
        `i_${spec.table} AS (INSERT INTO ${spec.table} (resource_pk, store, type, ${spec.columns.join(', ')}) ` +
          `SELECT $1::bigint, $2, $3, ${select} FROM unnest(${cols.join(', ')}) AS u(${alias}))`,
      );
    }
  }
  if (!ctes.length) return undefined;
  return { sql: `WITH ${ctes.join(', ')} SELECT 1`, params };
}

export interface SearchIndexerOptions {
  /** The FHIR version of a store (endpoint); resources are indexed with that version's parameters. */
  fhirVersionOf?(store: string, tx: Tx): Promise<FhirVersion>;
}

export function createSearchIndexer(_options: SearchIndexerOptions = {}): WriteHook {
  return async (tx: Tx, change: ResourceChange) => {
    const rows = change.resource && !change.deleted ? indexRows(change.resource) : undefined;
    const statement = indexStatement(change.pk, change.store, change.type, rows, change.kind !== 'create');
    if (statement) await tx.$executeRawUnsafe(statement.sql, ...statement.params);
  };
}
