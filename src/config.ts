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
  /** Outbox items one aggregation batch (one transaction) takes. */
  aggregationBatchSize: number;
  graphql: { maxDepth: number; maxAliases: number; maxCost: number; introspection: boolean; sandbox: boolean };
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
    aggregationConcurrency: env.AGGREGATION_CONCURRENCY ? Math.max(1, int(env.AGGREGATION_CONCURRENCY, 1, 'AGGREGATION_CONCURRENCY')) : undefined,
    aggregationBatchSize: Math.max(1, int(env.AGGREGATION_BATCH_SIZE, 100, 'AGGREGATION_BATCH_SIZE')),
    aggregationWorker: !['off', 'false', '0'].includes((env.AGGREGATION_WORKER ?? 'on').toLowerCase()),
  };
}
