import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { resourceBodies } from './dataset';
import { freePort } from './server';

/**
 * The floors: the same work as plainly as the database and driver allow, measured in the same run as the
 * server so a slow or noisy machine moves both. Ingest: the same resource bodies as rows of one jsonb
 * table, batched INSERTs, several in flight. Read: a bare node:http server doing one primary-key SELECT.
 */
export type StoreKind = 'postgres' | 'pglite';

interface SqlRunner {
  query(sql: string, params?: unknown[]): Promise<unknown>;
  close(): Promise<void>;
}

async function runners(store: StoreKind, databaseUrl: string | undefined, n: number): Promise<{ all: SqlRunner[]; cleanup(): Promise<void> }> {
  if (store === 'postgres') {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: n });
    const run: SqlRunner = { query: (sql, params) => pool.query(sql, params as unknown[]), close: async () => undefined };
    return { all: Array.from({ length: n }, () => run), cleanup: () => pool.end() };
  }
  // PGlite is one connection per store: "several in flight" queue on it, as they do in the server.
  const { PGlite } = await import('@electric-sql/pglite');
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-floor-pglite-'));
  const db = new PGlite(dir);
  await db.waitReady;
  const run: SqlRunner = { query: (sql, params) => db.query(sql, params as unknown[]), close: async () => undefined };
  return {
    all: Array.from({ length: n }, () => run),
    cleanup: async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resources/s for inserting the bodies of patients `from`..`to` into one jsonb table (insert time only). */
export async function ingestFloor(
  store: StoreKind,
  databaseUrl: string | undefined,
  from: number,
  to: number,
  concurrency = 4,
  batch = 250,
): Promise<{ rate: number; resources: number }> {
  const { all, cleanup } = await runners(store, databaseUrl, concurrency);
  try {
    await all[0].query('DROP TABLE IF EXISTS bench_floor');
    await all[0].query('CREATE TABLE bench_floor (id BIGSERIAL PRIMARY KEY, content JSONB NOT NULL)');
    let seconds = 0;
    let resources = 0;
    // In chunks of patients, so a million bodies never sit in memory at once; only inserting is timed.
    for (let start = from; start < to; start += 100) {
      const bodies = resourceBodies(start, Math.min(to, start + 100));
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        all.map(async (runner) => {
          while (next < bodies.length) {
            const slice = bodies.slice(next, next + batch);
            next += batch;
            await runner.query('INSERT INTO bench_floor (content) SELECT unnest($1::text[])::jsonb', [slice]);
          }
        }),
      );
      seconds += (performance.now() - t0) / 1000;
      resources += bodies.length;
    }
    await all[0].query('DROP TABLE bench_floor');
    return { rate: resources / seconds, resources };
  } finally {
    await cleanup();
  }
}

export interface FloorServer {
  /** URL of one resource on the floor: `${url}/${store}/${type}/${id}`. */
  url: string;
  /** Its process, for CPU figures (bench/readCost.ts). */
  pid: number;
  stop(): Promise<void>;
}

/**
 * Starts the read floor in its own process. On PostgreSQL it reads the server's own `resource` table; on
 * PGlite (one process per store) it gets its own store loaded with `rows`.
 */
export async function startFloorServer(
  store: StoreKind,
  databaseUrl: string | undefined,
  rows: { store: string; type: string; id: string; content: unknown }[],
): Promise<FloorServer> {
  const port = await freePort();
  const dir = store === 'pglite' ? mkdtempSync(path.join(tmpdir(), 'bench-floor-read-')) : undefined;
  const args = [path.join(__dirname, '../client/floorServer.mjs'), String(port)];
  if (store === 'postgres') args.push('pg', databaseUrl as string);
  else {
    const file = path.join(dir as string, 'rows.json');
    writeFileSync(file, JSON.stringify(rows));
    args.push('pglite', path.join(dir as string, 'db'), file);
  }
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += String(d)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`floor server exited ${code}: ${stderr.slice(-1000)}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid as number,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
