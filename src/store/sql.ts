import { currentQueryScope, poolExhausted, queryCancelled } from './queryScope';
import { parseStoredJson } from '../fhir/losslessJson';
import { preparedName } from './preparedStatements';
import { namedQueryRunner } from './namedQuery';

/**
 * Raw SQL straight to the database driver — `pg` for PostgreSQL, PGlite for the embedded store — for the
 * resource store, search, aggregation and access filters, which are hand-written SQL throughout. They used to
 * go through the Prisma client's `$queryRawUnsafe`, which costs about 0.3 ms of CPU per statement and
 * several nanoseconds per byte of parameters on this machine (it serialises every parameter to JSON and
 * back on its way to the same driver): more than the statement itself for a primary-key read, and a quarter
 * of a bulk load's server time. Prisma stays for the typed tenancy models and the migrations layout.
 *
 * Values come back as the Prisma client returned them (`bigint` for int8, `Date` for timestamps, parsed
 * JSON), so callers see no difference; JSON keeps its decimals' digits (fhir/losslessJson.ts).
 */
export interface Sql {
  query<T = unknown>(sql: string, ...values: unknown[]): Promise<T>;
  /** Runs a statement; returns the number of rows it affected. */
  execute(sql: string, ...values: unknown[]): Promise<number>;
}

/** Work inside one transaction. */
export type Tx = Sql;

export interface TransactionOptions {
  /**
   * `false`: the commit returns before its WAL record is flushed. Only for work that can be recomputed
   * from durable state (the aggregation, from the upstream resources and the outbox): a crash then loses
   * the last such commits, never data, and their work items come back with them.
   */
  synchronousCommit?: boolean;
}

export interface SqlClient extends Sql {
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Tx) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** Called with the text of every statement (tests that count them). */
  onQuery(listener: (sql: string) => void): void;
  /** Connection pool use (metrics); absent for the embedded store, which is one connection. */
  poolStats?(): PoolStats;
  close(): Promise<void>;
}

export interface PoolStats {
  /** Open connections, idle ones, requests waiting for one, and the pool's size. */
  total: number;
  idle: number;
  waiting: number;
  max: number;
}

/** json and jsonb are read with their decimals exact (`1.50` stays `1.50`: see fhir/losslessJson.ts). */
const JSON_OID = 114;
const JSONB_OID = 3802;

/** Statements a transaction starts with: a lock wait never hangs a request or a worker for ever. */
const begin = (options?: TransactionOptions) => `BEGIN; SET LOCAL lock_timeout = '30s'${options?.synchronousCommit === false ? '; SET LOCAL synchronous_commit = off' : ''}`;

type Listener = (sql: string) => void;

function listeners(): { add(l: Listener): void; emit(sql: string): void } {
  const all: Listener[] = [];
  return {
    add: (l) => void all.push(l),
    emit: (sql) => {
      for (const l of all) l(sql);
    },
  };
}

/** Bounds on how long statements run and requests wait for a connection (0: none). */
export interface PoolLimits {
  /** STATEMENT_TIMEOUT_MS: the server cancels any statement running longer (PostgreSQL `statement_timeout`). */
  statementTimeoutMs?: number;
  /** POOL_WAIT_TIMEOUT_MS: a request waiting longer for a connection is answered 503 instead of queueing for ever. */
  poolWaitMs?: number;
}

/** SQLSTATE query_canceled: a statement_timeout, or a cancel request (a client gone, a deadline passed). */
const QUERY_CANCELED = '57014';

export async function postgresSql(url: string, poolSize: number, limits: PoolLimits = {}): Promise<SqlClient> {
  const pg = (await import('pg')).default;
  const int8 = (value: string) => BigInt(value);
  const getTypeParser = (oid: number, format?: string): ((raw: string) => unknown) =>
    oid === 20 ? int8 : oid === JSON_OID || oid === JSONB_OID ? parseStoredJson : pg.types.getTypeParser(oid, format as 'text');
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    ...(limits.statementTimeoutMs ? { statement_timeout: limits.statementTimeoutMs } : {}),
    ...(limits.poolWaitMs ? { connectionTimeoutMillis: limits.poolWaitMs } : {}),
    types: { getTypeParser: getTypeParser as typeof pg.types.getTypeParser },
  });
  const runNamed = namedQueryRunner(pg.Query, getTypeParser);
  // An idle connection the server dropped must not take the process down.
  pool.on('error', () => undefined);
  // No JIT compilation: our statements are short keyed reads and writes, and the planner's estimates on tables
  // without fresh statistics (a bulk load, autovacuum behind) can pass jit_above_cost, whereupon compiling a
  // large statement (the aggregated copies' index CTEs: ~150 functions) costs ~250 ms to save nothing. A
  // session setting, queued on the new connection before its first query; the server's own config is untouched.
  pool.on('connect', (client) => {
    client.query('SET jit = off').catch(() => undefined);
  });
  const events = listeners();
  /**
   * PostgreSQL's cancel request (protocol §53.2.9), sent on a connection of its own since the pool may have
   * none to spare: it cancels whatever the backend of `client` is running, and needs no authentication.
   */
  const cancelBackend = (client: import('pg').PoolClient) => {
    const target = client as unknown as { processID: number | null; secretKey: number | null };
    if (target.processID === null || target.secretKey === null) return;
    const canceller = new pg.Client({ connectionString: url }) as unknown as {
      host: string;
      port: number;
      connection: NodeJS.EventEmitter & { connect(...args: unknown[]): void; cancel(pid: number, key: number): void };
    };
    const con = canceller.connection;
    con.on('error', () => undefined);
    con.once('connect', () => con.cancel(target.processID as number, target.secretKey as number));
    if (canceller.host?.startsWith('/')) con.connect(`${canceller.host}/.s.PGSQL.${canceller.port}`);
    else con.connect(canceller.port, canceller.host);
  };
  const connect = async (): Promise<import('pg').PoolClient> => {
    try {
      return await pool.connect();
    } catch (err) {
      // Waiting for a free connection, or for a new one to be accepted, took longer than the pool's wait timeout.
      if (limits.poolWaitMs && /timeout exceeded when trying to connect|terminated due to connection timeout/i.test((err as Error).message)) throw poolExhausted(limits.poolWaitMs);
      throw err;
    }
  };
  /**
   * Runs one statement on `client`, cancelling it on the server when the request's scope aborts (queryScope.ts).
   * A connection that was sent a cancel is not reused: the cancel could land on its next statement.
   */
  const cancellable = async (client: import('pg').PoolClient, text: string, values: unknown[], spoil: () => void) => {
    // A registered statement goes by its name, so the connection parses and plans it once (preparedStatements.ts).
    const name = preparedName(text);
    const run = () => (name ? runNamed(client, name, text, values) : client.query(text, values));
    const scope = currentQueryScope();
    if (!scope) return translated(run);
    if (scope.aborted) throw queryCancelled(scope.describe());
    const unfollow = scope.onAbort(() => {
      spoil();
      cancelBackend(client);
    });
    try {
      return await translated(run, scope.describe);
    } finally {
      unfollow();
    }
  };
  const over = (run: (text: string, values: unknown[]) => Promise<{ rows: unknown[]; rowCount: number | null }>): Sql => ({
    async query<T>(sql: string, ...values: unknown[]) {
      events.emit(sql);
      return (await run(sql, values)).rows as T;
    },
    async execute(sql: string, ...values: unknown[]) {
      events.emit(sql);
      return (await run(sql, values)).rowCount ?? 0;
    },
  });
  const direct = over(async (text, values) => {
    const client = await connect();
    let spoiled = false;
    try {
      return await cancellable(client, text, values, () => (spoiled = true));
    } finally {
      client.release(spoiled);
    }
  });
  return {
    ...direct,
    async transaction(fn, options) {
      const client = await connect();
      let broken: unknown;
      const spoil = () => (broken ??= new Error('cancelled'));
      // The pool listens for errors on idle connections only. One checked out here can be told by the server
      // that it is going away (57P01 on shutdown) between two statements: without a listener that 'error'
      // event would end the process. The next statement fails with it and the transaction rolls back.
      const lost = (err: Error) => (broken = err);
      client.on('error', lost);
      try {
        await client.query(begin(options));
        const result = await fn(over((text, values) => cancellable(client, text, values, spoil)));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch((e: unknown) => (broken = e));
        throw err;
      } finally {
        client.removeListener('error', lost);
        // A connection whose rollback failed, that was sent a cancel or that the server dropped is in an unknown state: discard it.
        client.release(broken instanceof Error ? broken : undefined);
      }
    },
    onQuery: events.add,
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: poolSize }),
    close: () => pool.end(),
  };
}

/** A statement cancelled by statement_timeout or a cancel request becomes a 503 with Retry-After, not a 500. */
async function translated<T>(run: () => Promise<T>, describe?: () => string): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if ((err as { code?: string }).code === QUERY_CANCELED) {
      throw queryCancelled(describe?.() ?? 'The statement ran longer than STATEMENT_TIMEOUT_MS and was cancelled; narrow the request or try again later');
    }
    throw err;
  }
}

/** The embedded store: PGlite is one connection, and its `transaction` holds it for the whole transaction. */
export function pgliteSql(pglite: import('@electric-sql/pglite').PGlite): SqlClient {
  const parsers = { 20: (value: string) => BigInt(value), [JSON_OID]: parseStoredJson, [JSONB_OID]: parseStoredJson };
  const events = listeners();
  type Runner = Pick<import('@electric-sql/pglite').Transaction, 'query'>;
  const over = (db: Runner): Sql => ({
    async query<T>(sql: string, ...values: unknown[]) {
      events.emit(sql);
      return (await db.query(sql, values, { parsers })).rows as T;
    },
    async execute(sql: string, ...values: unknown[]) {
      events.emit(sql);
      return (await db.query(sql, values, { parsers })).affectedRows ?? 0;
    },
  });
  return {
    ...over(pglite),
    transaction: (fn) => pglite.transaction((tx) => fn(over(tx))),
    onQuery: events.add,
    close: async () => undefined,
  };
}
