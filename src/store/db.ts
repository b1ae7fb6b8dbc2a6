import { PrismaClient } from '../generated/prisma/client';
import { pgliteSql, type PoolLimits, postgresSql, type SqlClient } from './sql';

/**
 * One database handle for the whole process: raw SQL on the driver (`sql`, see sql.ts), the Prisma client
 * for the typed tenancy models, and a multi-statement `exec` for migrations, which the extended query
 * protocol cannot run.
 */
export interface Database {
  readonly sql: SqlClient;
  readonly prisma: PrismaClient;
  readonly kind: 'pglite' | 'postgres';
  /** The PostgreSQL connection URL (for threads and processes that open their own connections). */
  readonly url?: string;
  /**
   * A read-only pool on a streaming replica of the same database (DATABASE_REPLICA_URL), when one is
   * configured: only what replicaReads.ts routes there runs on it; everything else, writes first, runs on `sql`.
   */
  readonly replica?: SqlClient;
  /**
   * Runs `fn` on one dedicated connection that accepts multi-statement scripts (migrations, admin tasks):
   * the extended query protocol Prisma uses cannot, and session state such as advisory locks needs one session.
   */
  withSession<T>(fn: (session: ScriptSession) => Promise<T>): Promise<T>;
  /** Called for every SQL statement the client runs (only when opened with `queryEvents`). */
  onQuery(listener: (sql: string) => void): void;
  /**
   * LISTENs on `channel` (a lower-case identifier) on a connection of its own: `onMessage` gets each NOTIFY
   * payload, from this process or any other. Notifications sent while a dropped connection is being
   * re-established are lost, so `onReconnected` is called each time it is back. Resolves when listening;
   * the function it resolves to stops.
   */
  listen(channel: string, onMessage: (payload: string) => void, onReconnected?: () => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export interface ScriptSession {
  exec(script: string): Promise<void>;
  query<R>(sql: string): Promise<R[]>;
}

export interface DatabaseOptions {
  /** `postgresql://…` selects PostgreSQL; otherwise the embedded store in `dataDir`. */
  databaseUrl?: string;
  /** PGlite data folder; `memory://` keeps it in memory (tests). */
  dataDir?: string;
  /** Pool size for PostgreSQL (raw SQL; the Prisma client keeps a small pool of its own). */
  poolSize?: number;
  /** Emit an event per SQL statement (tests that count queries); off in production for speed. */
  queryEvents?: boolean;
  /** Statement timeout and pool wait timeout on PostgreSQL (sql.ts). */
  limits?: PoolLimits;
  /** A hot standby of `databaseUrl` for reads (PostgreSQL only): opened beside it, checked to be in recovery. */
  replicaUrl?: string;
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.databaseUrl && /^postgres(ql)?:\/\//.test(options.databaseUrl)) {
    const db = await openPostgres(options.databaseUrl, options.poolSize ?? 10, options.queryEvents ?? false, options.limits);
    if (!options.replicaUrl) return db;
    try {
      const replica = await openReplica(options.replicaUrl, options.poolSize ?? 10, options.limits);
      return {
        ...db,
        replica,
        async close() {
          await replica.close();
          await db.close();
        },
      };
    } catch (err) {
      await db.close();
      throw err;
    }
  }
  return openPglite(options.dataDir ?? './data', options.queryEvents ?? false);
}

/** Prisma's interactive transactions' wait for a connection when no pool limit is configured. */
const DEFAULT_TRANSACTION_WAIT_MS = 10_000;

async function openPostgres(url: string, poolSize: number, queryEvents: boolean, limits?: PoolLimits): Promise<Database> {
  const { PrismaPg } = await import('@prisma/adapter-pg');
  const pg = await import('pg');
  const adapter = new PrismaPg({ connectionString: url, max: Math.min(4, poolSize) });
  // Prisma gives a transaction 2 s to get a connection and 5 s to finish; on a loaded host the first admin
  // write after start missed the 2 s (P2028, answered 500). The documented limits apply instead: the pool wait
  // (POOL_WAIT_TIMEOUT_MS) and the statement timeout (STATEMENT_TIMEOUT_MS); 0 there means no limit, and
  // without a configured pool wait it is DEFAULT_TRANSACTION_WAIT_MS.
  const noLimit = 2 ** 31 - 1;
  const transactionOptions = {
    maxWait: limits?.poolWaitMs === 0 ? noLimit : (limits?.poolWaitMs ?? DEFAULT_TRANSACTION_WAIT_MS),
    timeout: limits?.statementTimeoutMs || noLimit,
  };
  const prisma = new PrismaClient({ adapter, transactionOptions, ...logOptions(queryEvents) });
  const sql = await postgresSql(url, poolSize, limits);
  return {
    sql,
    prisma,
    kind: 'postgres',
    url,
    onQuery: queryListener(prisma, sql),
    async listen(channel, onMessage, onReconnected) {
      requireChannel(channel);
      let client: import('pg').Client | undefined;
      let stopped = false;
      let retry: NodeJS.Timeout | undefined;
      const schedule = () => {
        if (!stopped) retry = setTimeout(() => void connect().then(onReconnected, schedule), 1_000);
      };
      const connect = async () => {
        const c = new pg.Client({ connectionString: url });
        let lost = false;
        const drop = () => {
          if (lost) return;
          lost = true;
          c.end().catch(() => undefined);
          schedule();
        };
        c.on('notification', (n) => n.channel === channel && onMessage(n.payload ?? ''));
        c.on('error', drop);
        c.on('end', drop);
        try {
          await c.connect();
          await c.query(`LISTEN ${channel}`);
        } catch (err) {
          lost = true;
          await c.end().catch(() => undefined);
          throw err;
        }
        client = c;
      };
      await connect();
      return async () => {
        stopped = true;
        clearTimeout(retry);
        await client?.end().catch(() => undefined);
      };
    },
    async withSession(fn) {
      const client = new pg.Client({ connectionString: url });
      // A server going away mid-session must fail the session's statement, not end the process.
      client.on('error', () => undefined);
      await client.connect();
      try {
        return await fn({
          exec: async (script) => void (await client.query(script)),
          query: async <R>(sql: string) => (await client.query(sql)).rows as R[],
        });
      } finally {
        await client.end();
      }
    },
    async close() {
      await sql.close();
      await prisma.$disconnect();
    },
  };
}

/**
 * The embedded store's buffer cache. initdb's default (128 MB) is all resident in the WASM heap from the first
 * query on, most of an idle server's memory; the data files are read through the operating system's page cache
 * in any case, so a small cache costs little (issue 19: idle RSS ≤ 300 MB).
 */
const PGLITE_SHARED_BUFFERS = '16MB';

/**
 * The replica's pool. A primary given by mistake would take reads that never wait for anything (its own
 * LSNs are not a replica's replay position), so anything not in recovery is refused at start.
 */
async function openReplica(url: string, poolSize: number, limits?: PoolLimits): Promise<SqlClient> {
  const sql = await postgresSql(url, poolSize, limits);
  try {
    const [row] = await sql.query<{ standby: boolean }[]>('SELECT pg_is_in_recovery() AS standby');
    if (!row?.standby) throw new Error('DATABASE_REPLICA_URL is not a replica: its server is not in recovery (pg_is_in_recovery() is false)');
    return sql;
  } catch (err) {
    await sql.close();
    throw err;
  }
}

async function openPglite(dataDir: string, queryEvents: boolean): Promise<Database> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PrismaPGlite } = await import('pglite-prisma-adapter');
  const options = { startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${PGLITE_SHARED_BUFFERS}`] };
  const pglite = dataDir.startsWith('memory://') ? new PGlite(options) : new PGlite(dataDir, options);
  await pglite.waitReady;
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pglite), ...logOptions(queryEvents) });
  const sql = pgliteSql(pglite);
  return {
    sql,
    prisma,
    kind: 'pglite',
    onQuery: queryListener(prisma, sql),
    async listen(channel, onMessage) {
      requireChannel(channel);
      // One in-process connection: it is never dropped, so there is nothing to re-establish.
      const unlisten = await pglite.listen(channel, onMessage);
      // A store closed first (an outage, a test closing it) has no listener left to remove.
      return async () => {
        if (!pglite.closed) await unlisten();
      };
    },
    async withSession(fn) {
      return fn({
        exec: async (script) => void (await pglite.exec(script)),
        query: async <R>(sql: string) => (await pglite.query<R>(sql)).rows,
      });
    },
    async close() {
      await prisma.$disconnect();
      await pglite.close();
    },
  };
}

/** Channel names are spliced into LISTEN, which takes no parameters: only plain identifiers pass. */
function requireChannel(channel: string): void {
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`'${channel}' is not a plain lower-case channel name`);
}

function logOptions(queryEvents: boolean) {
  return queryEvents ? { log: [{ emit: 'event' as const, level: 'query' as const }] } : {};
}

function queryListener(prisma: PrismaClient, sql: SqlClient) {
  return (listener: (sql: string) => void) => {
    (prisma as unknown as { $on(event: 'query', fn: (e: { query: string }) => void): void }).$on('query', (e) => listener(e.query));
    sql.onQuery(listener);
  };
}
