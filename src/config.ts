/** Server configuration, read once from the environment at start. */
export interface Config {
  port: number;
  host: string;
  /** PGlite data folder and home of the generated admin credential and signing keys. */
  dataDir: string;
  /** `postgresql://…` switches the store to PostgreSQL. */
  databaseUrl?: string;
  /** Absolute base URL clients use to reach us; links and token issuers derive from it. */
  publicUrl: string;
  /** Largest request body accepted, in bytes (larger → 413). */
  bodyLimit: number;
  logLevel: string;
  poolSize: number;
  /** Most entries a batch or transaction Bundle may carry (more → 413). */
  bundleMaxEntries: number;
  /** Run the aggregation worker in this process (AGGREGATION_WORKER=off when `npm run worker` runs it). */
  aggregationWorker: boolean;
  /** Aggregation batches in flight in this process (default: 2 on PostgreSQL, 1 on the one-connection embedded store). */
  aggregationConcurrency?: number;
  /** On PostgreSQL, run the in-process worker on a thread of its own (AGGREGATION_THREAD=off: on the main one). */
  aggregationThread: boolean;
  /** Outbox items one aggregation batch (one transaction) takes. */
  aggregationBatchSize: number;
  /**
   * Customer writes wait while the aggregation backlog is over this many items (0: never). Default 500
   * when this process runs the worker, else 0 (a server without a worker cannot tell whether one runs).
   */
  aggregationMaxBacklog: number;
  /** How long a write waits for the backlog to shrink before it is answered 503 with Retry-After. */
  aggregationAdmitWaitMs: number;
  graphql: { maxDepth: number; maxAliases: number; maxCost: number; introspection: boolean; sandbox: boolean };
  /** Browser origins allowed by CORS (CORS_ORIGINS, comma-separated exact origins, or `*`); none by default. */
  corsOrigins: string[];
  /** AUDIT=off stops the audit log (src/audit/); on by default. */
  audit: boolean;
}

function int(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got '${value}'`);
  return n;
}

function flag(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  return !['off', 'false', '0', 'no'].includes(value.toLowerCase());
}

/** Exact origins (`https://app.example`), or `*`: a near miss such as a trailing slash would never match. */
function origins(value: string | undefined): string[] {
  const list = (value ?? '').split(',').map((o) => o.trim()).filter((o) => o !== '');
  for (const o of list) {
    let origin: string | undefined;
    try {
      origin = new URL(o).origin;
    } catch {
      origin = undefined;
    }
    if (o !== '*' && origin !== o) throw new Error(`CORS_ORIGINS must be '*' or origins such as https://app.example, got '${o}'`);
  }
  return list;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = int(env.PORT, 4000, 'PORT');
  const host = env.HOST ?? '0.0.0.0';
  return {
    port,
    host,
    dataDir: env.DATA_DIR ?? './data',
    databaseUrl: env.DATABASE_URL || undefined,
    publicUrl: (env.PUBLIC_URL ?? `http://localhost:${port}`).replace(/\/+$/, ''),
    bodyLimit: int(env.BODY_LIMIT_BYTES, 16 * 1024 * 1024, 'BODY_LIMIT_BYTES'),
    logLevel: env.LOG_LEVEL ?? 'info',
    poolSize: int(env.DATABASE_POOL_SIZE, 10, 'DATABASE_POOL_SIZE'),
    bundleMaxEntries: int(env.BUNDLE_MAX_ENTRIES, 10_000, 'BUNDLE_MAX_ENTRIES'),
    graphql: {
      maxDepth: int(env.GRAPHQL_MAX_DEPTH, 15, 'GRAPHQL_MAX_DEPTH'),
      maxAliases: int(env.GRAPHQL_MAX_ALIASES, 50, 'GRAPHQL_MAX_ALIASES'),
      maxCost: int(env.GRAPHQL_MAX_COST, 50_000, 'GRAPHQL_MAX_COST'),
      // On by default in development; production turns them on explicitly.
      introspection: flag(env.GRAPHQL_INTROSPECTION, env.NODE_ENV !== 'production'),
      sandbox: flag(env.GRAPHQL_SANDBOX, env.NODE_ENV !== 'production'),
    },
    corsOrigins: origins(env.CORS_ORIGINS),
    audit: flag(env.AUDIT, true),
    aggregationConcurrency: env.AGGREGATION_CONCURRENCY ? Math.max(1, int(env.AGGREGATION_CONCURRENCY, 1, 'AGGREGATION_CONCURRENCY')) : undefined,
    aggregationThread: flag(env.AGGREGATION_THREAD, true),
    aggregationBatchSize: Math.max(1, int(env.AGGREGATION_BATCH_SIZE, 100, 'AGGREGATION_BATCH_SIZE')),
    aggregationMaxBacklog: int(env.AGGREGATION_MAX_BACKLOG, flag(env.AGGREGATION_WORKER, true) ? 500 : 0, 'AGGREGATION_MAX_BACKLOG'),
    aggregationAdmitWaitMs: int(env.AGGREGATION_ADMIT_WAIT_MS, 30_000, 'AGGREGATION_ADMIT_WAIT_MS'),
    aggregationWorker: flag(env.AGGREGATION_WORKER, true),
  };
}
