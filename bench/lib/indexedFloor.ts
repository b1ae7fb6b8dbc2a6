import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Resource } from '../../src/fhir/types';
import { indexKey } from '../../src/search/indexKey';
import { indexRows, type IndexRows } from '../../src/search/indexValues';
import { migrate } from '../../src/store/migrator';
import type { Database } from '../../src/store/db';
import { freshDatabase } from './database';
import { bundles } from './dataset';
import type { StoreKind } from './floors';

/**
 * The indexed ingest floor: the rows the server writes for each resource of a transaction Bundle of creates
 * (its `resource` row with the stamped body, its search-index rows, its `agg_outbox` item; a create writes
 * no `resource_history` row), written by a bare script into a fresh database migrated with our migrations,
 * one statement per Bundle (multi-row `INSERT … SELECT FROM unnest(…)` in data-modifying CTEs, one
 * transaction like the server's), several Bundles in flight. The rows are built before the clock starts with
 * the server's own pure functions (indexRows, indexKey), after the Bundle's `urn:uuid:` references are
 * resolved to `Type/id` as the server resolves them, so the floor writes the same rows and only the
 * database's cost is timed: ingest over this floor is our code's share.
 */
export interface IndexedFloor {
  rate: number;
  resources: number;
  /** Search-index rows written, all tables together. */
  indexRows: number;
}

/** The search tables and their columns after (key, resource_pk), with their SQL types (src/search/indexer.ts). */
export const TABLES: { [K in keyof IndexRows]: { table: string; columns: [string, string][] } } = {
  string: {
    table: 'search_string',
    columns: [
      ['value', 'text'],
      ['exact', 'text'],
    ],
  },
  token: {
    table: 'search_token',
    columns: [
      ['system', 'text'],
      ['code', 'text'],
      ['text', 'text'],
    ],
  },
  reference: {
    table: 'search_reference',
    columns: [
      ['target_type', 'text'],
      ['target_id', 'text'],
      ['url', 'text'],
    ],
  },
  date: {
    table: 'search_date',
    columns: [
      ['low', 'timestamptz'],
      ['high', 'timestamptz'],
    ],
  },
  number: { table: 'search_number', columns: [['value', 'numeric']] },
  quantity: {
    table: 'search_quantity',
    columns: [
      ['value', 'numeric'],
      ['system', 'text'],
      ['code', 'text'],
    ],
  },
  uri: { table: 'search_uri', columns: [['value', 'text']] },
  composite: {
    table: 'search_composite',
    columns: [
      ['system1', 'text'],
      ['code1', 'text'],
      ['system2', 'text'],
      ['code2', 'text'],
      ['number2', 'numeric'],
      ['low2', 'timestamptz'],
      ['high2', 'timestamptz'],
    ],
  },
};
const KINDS = Object.keys(TABLES) as (keyof IndexRows)[];

/**
 * One statement for one Bundle: its resource rows, then every table's index rows joined to their new pks, then the
 * outbox. `returnOutbox`: it answers the outbox items' ids (the aggregation floor deletes them as the worker does).
 */
export function statementSql(returnOutbox = false): string {
  let n = 5; // $1 store, $2 types, $3 ids, $4 bodies, $5 lastUpdated
  const ctes = [
    `u AS (SELECT * FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u(type, id, content, n))`,
    `ins AS (INSERT INTO resource (store, type, id, version_id, last_updated, deleted, content)
       SELECT $1, type, id, 1, $5::timestamptz, false, content::jsonb FROM u ORDER BY n RETURNING pk, id)`,
  ];
  for (const kind of KINDS) {
    const { table, columns } = TABLES[kind];
    const arrays = [`$${++n}::bigint[]`, `$${++n}::text[]`, ...columns.map(([, type]) => `$${++n}::${type}[]`)];
    const names = columns.map(([c]) => c);
    ctes.push(
      `i_${table} AS (INSERT INTO ${table} (key, resource_pk, ${names.join(', ')})
         SELECT x.key, ins.pk, ${names.map((c) => `x.${c}`).join(', ')} FROM unnest(${arrays.join(', ')}) AS x(key, res_id, ${names.join(', ')}) JOIN ins ON ins.id = x.res_id)`,
    );
  }
  ctes.push(`o AS (INSERT INTO agg_outbox (store, type, res_id) SELECT $1, type, id FROM u ORDER BY n${returnOutbox ? ' RETURNING id' : ''})`);
  return `WITH ${ctes.join(',\n')} ${returnOutbox ? 'SELECT array_agg(id)::text[] AS outbox FROM o' : 'SELECT 1'}`;
}
const STATEMENT = statementSql();

/** Every `reference` string in a resource, rewritten in place (as the bundle processor does). */
function rewriteReferences(node: unknown, map: Map<string, string>): void {
  if (Array.isArray(node)) return node.forEach((n) => rewriteReferences(n, map));
  if (!node || typeof node !== 'object') return;
  const obj = node as Record<string, unknown>;
  for (const [key, value] of Object.entries(obj)) {
    if (key === 'reference' && typeof value === 'string') obj[key] = map.get(value) ?? value;
    else rewriteReferences(value, map);
  }
}

/** The parameters of one Bundle's statement, built untimed; `rows` counts its index rows. */
export function bundleParams(bundleText: string, store: string, now: Date): { params: unknown[]; resources: number; rows: number } {
  const entries = (JSON.parse(bundleText) as { entry: { fullUrl?: string; resource: Resource }[] }).entry;
  const ids = entries.map(() => randomUUID());
  const map = new Map<string, string>();
  entries.forEach((e, i) => e.fullUrl && map.set(e.fullUrl, `${e.resource.resourceType}/${ids[i]}`));
  const types: string[] = [];
  const bodies: string[] = [];
  const columns = Object.fromEntries(KINDS.map((k) => [k, [[], [], ...TABLES[k].columns.map(() => [])] as unknown[][]])) as Record<keyof IndexRows, unknown[][]>;
  let rows = 0;
  entries.forEach((e, i) => {
    const { resourceType, id: _id, meta, ...rest } = e.resource;
    rewriteReferences(rest, map);
    const body = { resourceType, id: ids[i], meta: { ...(meta ?? {}), versionId: '1', lastUpdated: now.toISOString() }, ...rest } as Resource;
    types.push(resourceType);
    bodies.push(JSON.stringify(body));
    const index = indexRows(body);
    for (const kind of KINDS) {
      for (const [param, ...values] of index[kind] as [string, ...unknown[]][]) {
        const cols = columns[kind];
        cols[0].push(indexKey(store, resourceType, param));
        cols[1].push(ids[i]);
        values.forEach((v, c) => cols[c + 2].push(v));
        rows++;
      }
    }
  });
  return { params: [store, types, ids, bodies, now.toISOString(), ...KINDS.flatMap((k) => columns[k])], resources: entries.length, rows };
}

export interface FloorDb {
  query(sql: string, params: unknown[]): Promise<unknown>;
  /** The same, committed without waiting for its WAL flush (as the aggregation worker commits; PGlite: the same). */
  asyncCommit(sql: string, params: unknown[]): Promise<unknown>;
  /** The fresh database's URL (PostgreSQL), for counting what was written. */
  url?: string;
  close(): Promise<void>;
}

/** The `Database` part the migrator uses (one session running scripts), over a bare connection. */
function migratorView(session: { exec(script: string): Promise<void>; query<R>(sql: string): Promise<R[]> }): Database {
  return { withSession: (fn: (s: typeof session) => Promise<unknown>) => fn(session) } as unknown as Database;
}

export async function open(store: StoreKind, adminUrl: string, concurrency: number): Promise<FloorDb> {
  if (store === 'postgres') {
    const db = await freshDatabase(adminUrl);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await migrate(
        migratorView({
          exec: async (script) => void (await client.query(script)),
          query: async <R>(sql: string) => (await client.query(sql)).rows as R[],
        }),
      );
    } finally {
      await client.end();
    }
    // The database is dropped WITH (FORCE) at the end: a connection still closing then hears it terminated, an
    // 'error' event on its pool that would end the bench process with no listener.
    const quiet = (p: pg.Pool) => p.on('error', () => undefined);
    const pool = quiet(new pg.Pool({ connectionString: db.url, max: concurrency }));
    let lazy: pg.Pool | undefined;
    const asyncPool = () => (lazy ??= quiet(new pg.Pool({ connectionString: db.url, max: concurrency, options: '-c synchronous_commit=off' })));
    return {
      query: (sql, params) => pool.query(sql, params),
      asyncCommit: (sql, params) => asyncPool().query(sql, params),
      url: db.url,
      close: async () => {
        await pool.end();
        await lazy?.end();
        await db.drop();
      },
    };
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-indexed-floor-'));
  const lite = new PGlite(dir);
  await lite.waitReady;
  await migrate(
    migratorView({
      exec: async (script) => void (await lite.exec(script)),
      query: async <R>(sql: string) => (await lite.query<R>(sql)).rows,
    }),
  );
  return {
    query: (sql, params) => lite.query(sql, params),
    asyncCommit: (sql, params) => lite.query(sql, params),
    close: async () => {
      await lite.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resources/s writing the server's rows for patients `from`..`to`, `concurrency` Bundles in flight (write time only). */
export async function indexedIngestFloor(store: StoreKind, adminUrl: string, from: number, to: number, concurrency = 4): Promise<IndexedFloor> {
  const db = await open(store, adminUrl, concurrency);
  const endpoint = randomUUID(); // a customer endpoint's store id
  try {
    let seconds = 0;
    let resources = 0;
    let rows = 0;
    // In chunks of patients, so a million bodies never sit in memory at once; only writing is timed.
    for (let start = from; start < to; start += 50) {
      const now = new Date();
      const batches = [...bundles(start, Math.min(to, start + 50))].map((text) => bundleParams(text, endpoint, now));
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < batches.length) await db.query(STATEMENT, batches[next++].params);
        }),
      );
      seconds += (performance.now() - t0) / 1000;
      for (const b of batches) {
        resources += b.resources;
        rows += b.rows;
      }
    }
    return { rate: resources / seconds, resources, indexRows: rows };
  } finally {
    await db.close();
  }
}

/**
 * What the server wrote for one store on PostgreSQL: its current resources and their search-index rows, to
 * set beside the floor's (the two must match per resource for the floor to mean anything).
 */
export async function serverRows(databaseUrl: string, store: string): Promise<{ resources: number; indexRows: number }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const counts = KINDS.map((k) => `(SELECT count(*) FROM ${TABLES[k].table} x JOIN resource r ON r.pk = x.resource_pk WHERE r.store = $1)`);
    const { rows } = await client.query(`SELECT (SELECT count(*) FROM resource WHERE store = $1) AS resources, ${counts.join(' + ')} AS index_rows`, [store]);
    return { resources: Number(rows[0].resources), indexRows: Number(rows[0].index_rows) };
  } finally {
    await client.end();
  }
}
