import type { FhirVersion } from '../fhir/types';
import type { IndexSource, ResourceChange, Tx, WriteHook } from '../store/resourceRepository';
import { indexKey } from './indexKey';
import { indexRows, type IndexRows, type SharedParameter, type SharedTable, sharedParameters } from './indexValues';

/**
 * The write hook that keeps the search tables in step with the current version of each resource, inside
 * the write's own transaction: old rows out, new rows in, in one statement (data-modifying CTEs), so
 * indexing costs one round trip per write whatever the number of parameters. A copy of an R4 resource (an
 * aggregated copy, `ResourceChange.indexedLike`) extracts only its reference and meta parameters; the rows of the
 * others equal its original's and are copied from them in the same statement (INSERT … SELECT), so the aggregation
 * neither re-extracts them nor ships them to the database a second time.
 */
// The columns after `key` and `resource_pk`, in the order of the IndexRows tuples after their parameter.
const TABLES: { [K in keyof IndexRows]: { table: string; columns: string[]; casts: string[] } } = {
  string: { table: 'search_string', columns: ['value', 'exact'], casts: ['text', 'text'] },
  token: { table: 'search_token', columns: ['system', 'code', 'text'], casts: ['text', 'text', 'text'] },
  reference: { table: 'search_reference', columns: ['target_type', 'target_id', 'url'], casts: ['text', 'text', 'text'] },
  date: { table: 'search_date', columns: ['low', 'high'], casts: ['timestamptz', 'timestamptz'] },
  number: { table: 'search_number', columns: ['value'], casts: ['numeric'] },
  quantity: { table: 'search_quantity', columns: ['value', 'system', 'code'], casts: ['numeric', 'text', 'text'] },
  uri: { table: 'search_uri', columns: ['value'], casts: ['text'] },
  composite: {
    table: 'search_composite',
    columns: ['system1', 'code1', 'system2', 'code2', 'number2', 'low2', 'high2'],
    casts: ['text', 'text', 'text', 'text', 'numeric', 'timestamptz', 'timestamptz'],
  },
};

export const SEARCH_TABLES = Object.values(TABLES).map((t) => t.table);

/** A string needs quoting marks escaped in an array literal when it holds `"` or `\`. */
const ESCAPED = /["\\]/g;

/**
 * The columns of one index table's rows as PostgreSQL array literals (`{"a","b",NULL}`), built as the rows
 * come: `key` and `pk` (integers, unquoted), then the row's values after its parameter name, each quoted
 * with `"` and `\` escaped, or `NULL`. Exported for tests.
 */
export class ColumnLiterals {
  count = 0;
  private readonly parts: string[];

  constructor(width: number) {
    this.parts = new Array<string>(width).fill('');
  }

  /** One row: its key, its resource's pk, and `values[1…]` (values[0] is the parameter name). */
  row(key: string, pk: string, values: readonly (string | null)[]): void {
    const sep = this.count++ ? ',' : '';
    const parts = this.parts;
    parts[0] += sep + key;
    parts[1] += sep + pk;
    for (let i = 1; i < values.length; i++) {
      const v = values[i];
      if (v === null || v === undefined) {
        parts[i + 1] += `${sep}NULL`;
        continue;
      }
      const s = String(v);
      parts[i + 1] += `${sep}"${s.includes('"') || s.includes('\\') ? s.replace(ESCAPED, '\\$&') : s}"`;
    }
  }

  literals(): string[] {
    return this.parts.map((p) => `{${p}}`);
  }
}

export interface IndexItem {
  pk: bigint;
  store: string;
  type: string;
  /** Undefined for a deletion: only the old rows go. */
  rows?: IndexRows;
  /** The rows of these parameters are copied from this resource's (rewritten to this item's keys and pk); `rows` has the others. */
  copyFrom?: IndexSource & { params: readonly SharedParameter[] };
}

export interface IndexStatementOptions {
  /** The index tables are sharded (Citus, `CITUS=on`): the copy reads its source rows with a plain join. */
  shardedIndex?: boolean;
}

/**
 * One statement that replaces the index rows of one or many resources: a DELETE per table when `replace`,
 * and one INSERT … SELECT FROM unnest(…) per table that has rows. Exported for tests.
 */
export function indexStatement(items: IndexItem[], replace: boolean, options: IndexStatementOptions = {}): { sql: string; params: unknown[] } | undefined {
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
    // One array per column, each sent as the text of a PostgreSQL array literal built here: one string
    // through the driver per column (the driver's own array encoding costs per element), read by the
    // database's array input, which costs it less than taking the same values out of a jsonb array.
    const columns = new ColumnLiterals(spec.columns.length + 2);
    for (const item of items) {
      const pk = item.pk.toString();
      for (const row of (item.rows?.[kind] ?? []) as [string, ...(string | null)[]][]) columns.row(indexKey(item.store, item.type, row[0]), pk, row);
    }
    if (!columns.count) continue;
    const arrays = columns.literals().map((literal, i) => `${add(literal)}::${i < 2 ? 'bigint' : spec.casts[i - 2]}[]`);
    const names = spec.columns.map((c) => `x.${c}`).join(', ');
    // Everything travels as text and is cast in SQL, so 'infinity' dates and exact decimals survive.
    ctes.push(
      `i_${spec.table} AS (INSERT INTO ${spec.table} (key, resource_pk, ${spec.columns.join(', ')}) ` +
        `SELECT x.key, x.pk, ${names} FROM unnest(${arrays.join(', ')}) AS x(key, pk, ${spec.columns.join(', ')}))`,
    );
  }
  // Shared rows, copied in SQL: each source row of a shared parameter, under the copy's key and pk. The key map
  // spans the batch (a key names its store, type and parameter, so one map serves every pair).
  const copies = items.filter((i) => i.copyFrom);
  if (copies.length) {
    // One key map per table, of the parameters whose rows are in it: a table none of the batch's types has a
    // shared parameter in gets no statement at all, so no probe per copy into it (most types have rows in
    // only some of the tables: an Observation has no number or uri parameter to share).
    const keys = new Map<SharedTable, Map<string, string>>();
    for (const { store, type, copyFrom } of copies) {
      for (const { code, table } of copyFrom!.params) {
        const map = keys.get(table) ?? keys.set(table, new Map()).get(table)!;
        map.set(indexKey(copyFrom!.store, type, code), indexKey(store, type, code));
      }
    }
    if (keys.size) {
      const pairs = `unnest(${add(copies.map((i) => i.copyFrom!.pk.toString()))}::bigint[], ${add(copies.map((i) => i.pk.toString()))}::bigint[]) AS c(from_pk, to_pk)`;
      for (const kind of Object.keys(TABLES) as SharedTable[]) {
        const map = keys.get(kind);
        if (!map) continue;
        const { table, columns } = TABLES[kind];
        const cols = columns.map((c) => `s.${c}`).join(', ');
        const keyMap = `unnest(${add([...map.keys()])}::bigint[], ${add([...map.values()])}::bigint[]) AS m(from_key, to_key)`;
        // One index probe per source resource (OFFSET 0 keeps the planner from flattening the probes into a join).
        // As a plain join, the planner, knowing nothing of how few rows the unnest gives (a fresh or bulk-loaded
        // table without statistics), hashed the pairs and read the whole index table for every batch: a cost that
        // grew with the table, 0.4 s a batch at a million rows. Citus plans the plain join on each shard instead.
        const source = options.shardedIndex
          ? `JOIN ${table} s ON s.resource_pk = c.from_pk`
          : `CROSS JOIN LATERAL (SELECT * FROM ${table} WHERE resource_pk = c.from_pk OFFSET 0) s`;
        ctes.push(
          `c_${table} AS (INSERT INTO ${table} (key, resource_pk, ${columns.join(', ')}) ` +
            `SELECT m.to_key, c.to_pk, ${cols} FROM ${pairs} ${source} JOIN ${keyMap} ON m.from_key = s.key)`,
        );
      }
    }
  }
  if (!ctes.length) return undefined;
  return { sql: `WITH ${ctes.join(', ')} SELECT 1`, params };
}

function item(change: ResourceChange, version: FhirVersion): IndexItem {
  const like = change.indexedLike;
  if (like && change.resource && !change.deleted && version === 'R4') {
    return {
      pk: change.pk,
      store: change.store,
      type: change.type,
      rows: indexRows(change.resource, 'R4', { copy: true }),
      copyFrom: { ...like, params: sharedParameters(change.type) },
    };
  }
  return { pk: change.pk, store: change.store, type: change.type, rows: change.resource && !change.deleted ? indexRows(change.resource, version) : undefined };
}

export interface SearchIndexerOptions extends IndexStatementOptions {
  /** The FHIR version of a store (endpoint); resources are indexed with that version's parameters. */
  fhirVersionOf?(store: string, tx: Tx): Promise<FhirVersion>;
}

/**
 * A store's FHIR version: an endpoint's own; the aggregated record, or any store that is no endpoint, is R4.
 * Remembered per process: an endpoint's version is fixed when it is created, before anything is written to it.
 */
function endpointVersions(): (store: string, tx: Tx) => Promise<FhirVersion> {
  const known = new Map<string, FhirVersion>();
  return async (store, tx) => {
    const hit = known.get(store);
    if (hit) return hit;
    const [row] = await tx.query<{ fhir_version: string }[]>('SELECT fhir_version FROM endpoint WHERE id = $1', store);
    const version: FhirVersion = row?.fhir_version === 'STU3' ? 'STU3' : 'R4';
    known.set(store, version);
    return version;
  };
}

export function createSearchIndexer(options: SearchIndexerOptions = {}): WriteHook {
  const versionOf = options.fhirVersionOf ?? endpointVersions();
  const hook: WriteHook = async (tx: Tx, change: ResourceChange) => {
    const statement = indexStatement([item(change, await versionOf(change.store, tx))], change.kind !== 'create', options);
    if (statement) await tx.execute(statement.sql, ...statement.params);
  };
  hook.many = async (tx: Tx, changes: ResourceChange[]) => {
    const versions = new Map<string, FhirVersion>();
    for (const c of changes) if (!versions.has(c.store)) versions.set(c.store, await versionOf(c.store, tx));
    const statement = indexStatement(
      changes.map((c) => item(c, versions.get(c.store) as FhirVersion)),
      changes.some((c) => c.kind !== 'create'),
      options,
    );
    if (statement) await tx.execute(statement.sql, ...statement.params);
  };
  return hook;
}
