/**
 * Server configuration, read once from the environment at start and checked as a whole: every bad variable
 * gets its own message naming it, the value and what is expected, and the process stops before opening
 * anything (`ConfigError`, whose message lists them all).
 */
import { isIP } from 'node:net';
import { aggregatedTypeList } from './aggregator/aggregatedTypeList';
import { SUPPORTED_TYPES } from './aggregator/rules';

export interface Config {
  port: number;
  host: string;
  /** PGlite data folder and home of the generated admin credential and signing keys. */
  dataDir: string;
  /** `postgresql://…` switches the store to PostgreSQL. */
  databaseUrl?: string;
  /**
   * DATABASE_REPLICA_URL: a streaming replica (hot standby) of DATABASE_URL's database; when set, aggregated
   * reads are served from it (store/replicaReads.ts), with read-your-writes for the writing client.
   */
  databaseReplicaUrl?: string;
  /** REPLICA_MAX_WAIT_MS: how long a client's aggregated read waits for the replica to replay its last write before it goes to the primary. */
  replicaMaxWaitMs: number;
  /** `CITUS=on`: after the migrations, place the tables on the Citus cluster DATABASE_URL's coordinator runs (store/citusLayout.ts). */
  citus: boolean;
  /** Absolute base URL clients use to reach us; links and token issuers derive from it. */
  publicUrl: string;
  /** Largest request body accepted, in bytes (larger → 413). */
  bodyLimit: number;
  /** MAX_BODY_DEPTH: deepest nesting of objects and arrays a JSON body may have (deeper → 400). */
  maxBodyDepth: number;
  logLevel: LogLevel;
  poolSize: number;
  /** STATEMENT_TIMEOUT_MS: PostgreSQL cancels any statement of this process running longer (0: never). */
  statementTimeoutMs: number;
  /** SEARCH_TIMEOUT_MS: a search (REST or GraphQL) still running after this is cancelled and answered 503 (0: never). */
  searchTimeoutMs: number;
  /** POOL_WAIT_TIMEOUT_MS: a request waiting longer for a database connection is answered 503 with Retry-After. */
  poolWaitTimeoutMs: number;
  /** CLIENT_MAX_CONCURRENT: requests one API client may have in flight; more are answered 429 (0: no limit). */
  clientMaxConcurrent: number;
  /**
   * TRUST_PROXY: the peers whose X-Forwarded-For names the client's address (the audit log's, the per-address
   * lockout's): `on` (any peer: anyone can then pick the address their guesses are counted under), `off`, or
   * addresses, CIDR ranges and the presets loopback, linklocal, uniquelocal (private networks, where a load
   * balancer sits), comma-separated; the default is those three presets.
   */
  trustProxy: boolean | string;
  /** Token endpoint lockout after failed client authentications (AUTH_MAX_FAILURES_PER_CLIENT, …_PER_ADDRESS, AUTH_FAILURE_WINDOW_MS). */
  authFailures: { perClient: number; perAddress: number; windowMs: number };
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
  /** Bearer token Prometheus presents on /metrics (else the admin token is accepted there). */
  metricsToken?: string;
  /** Serve /metrics on a listener of its own, on this port (and `host`), instead of the main port. */
  metricsPort?: number;
  /**
   * `sandbox`: browser pages for GraphQL on (GRAPHQL_SANDBOX); `explorer`: which one a browser opening /graphql
   * gets (GRAPHQL_EXPLORER): Apollo Sandbox (loaded from Apollo's CDN) or the self-hosted GraphiQL (/graphiql).
   */
  graphql: { maxDepth: number; maxAliases: number; maxCost: number; maxTokens: number; introspection: boolean; sandbox: boolean; explorer: GraphqlExplorer };
  /** Browser origins allowed by CORS (CORS_ORIGINS, comma-separated exact origins, or `*`); none by default. */
  corsOrigins: string[];
  /** NHS Login as an identity provider for patient apps (token exchange at /oauth2/token); off when unset. */
  nhsLogin?: NhsLoginConfig;
  /** AUDIT=off stops the audit log (src/audit/); on by default. */
  audit: boolean;
  /**
   * How long a break-the-glass access (and its token) lasts, in seconds (BREAK_THE_GLASS_SECONDS, default
   * 4 hours; from a minute to a day: an emergency is not a standing grant, and a rotated signing key keeps
   * verifying this long).
   */
  breakGlassSeconds: number;
  /** IDEMPOTENCY_WINDOW: seconds an Idempotency-Key's recorded response is replayed (default one day). */
  idempotencyWindowSeconds: number;
  /** SHUTDOWN_TIMEOUT_MS: how long SIGTERM/SIGINT wait for requests and workers to drain before the process exits anyway. */
  shutdownTimeoutMs: number;
  /** EXPORT_TTL_HOURS: how long a Bulk Data export job and its files are kept (default 24). */
  exportTtlHours: number;
  /**
   * AGGREGATED_TYPES: the types the aggregation takes in (DESIGN §3.1), sorted; default PKB's list. Either the
   * whole list or changes to the default (`+Group` aggregates customers' Groups): aggregator/aggregatedTypeList.ts.
   */
  aggregatedTypes: readonly string[];
  /**
   * AGGREGATED_TYPES_CHANGE=apply: this process's AGGREGATED_TYPES replaces the list recorded in the database
   * instead of being refused for differing from it (aggregator/recordedAggregatedTypes.ts). Default `refuse`.
   */
  applyAggregatedTypesChange: boolean;
}

/** Where NHS Login ID tokens come from and how their signatures are checked. */
export interface NhsLoginConfig {
  /** NHS_LOGIN_ISSUER: the exact `iss` of its ID tokens, e.g. https://auth.login.nhs.uk. */
  issuer: string;
  /** NHS_LOGIN_JWKS_URL: the issuer's published keys (https, or http on a loopback address for a local issuer). */
  jwksUrl?: string;
  /** NHS_LOGIN_JWKS_FILE: the issuer's keys as a local JWKS file, instead of a URL. */
  jwksFile?: string;
  /** NHS_LOGIN_AUDIENCE: the `aud` NHS Login puts in ID tokens (the client id registered there); default: our client's id. */
  audience?: string;
}

export const GRAPHQL_EXPLORERS = ['sandbox', 'graphiql'] as const;
export type GraphqlExplorer = (typeof GRAPHQL_EXPLORERS)[number];

export const LOG_LEVELS = ['silent', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const FLAG_VALUES: Record<string, boolean> = { on: true, true: true, '1': true, yes: true, off: false, false: false, '0': false, no: false };

/** Every problem found in the environment, one line each. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Hides a password in a connection URL before it is shown in a message. */
function redact(value: string): string {
  return value.replace(/\/\/([^@/]*)@/, (_, user: string) => `//${user.split(':')[0]}${user.includes(':') ? ':***' : ''}@`);
}

/** proxy-addr's names for address ranges. */
const PROXY_PRESETS = ['loopback', 'linklocal', 'uniquelocal'];

/** Peers on private networks (a load balancer's place) may name the client; one on the internet may not. */
const DEFAULT_TRUSTED_PROXIES = PROXY_PRESETS.join(',');

/** Reads variables, noting a problem for each bad one and returning the default in its place. */
class EnvReader {
  readonly problems: string[] = [];
  constructor(private readonly env: NodeJS.ProcessEnv) {}

  string(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value === '' ? undefined : value;
  }

  int(name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const value = this.string(name);
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
      this.problems.push(`${name}='${value}' must be a whole number ${max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`}`);
      return fallback;
    }
    return n;
  }

  flag(name: string, fallback: boolean): boolean {
    const value = this.string(name);
    if (value === undefined) return fallback;
    const known = FLAG_VALUES[value.toLowerCase()];
    if (known === undefined) {
      this.problems.push(`${name}='${value}' must be on or off (also true/false, yes/no, 1/0)`);
      return fallback;
    }
    return known;
  }

  /** As Fastify's `trustProxy` takes it (proxy-addr's syntax), checked here so a typo is a named problem. */
  trustProxy(name: string, fallback: string): boolean | string {
    const value = this.string(name)?.trim();
    if (value === undefined) return fallback;
    // Not a flag's 1 or 0: a number here would read as a count of hops, which Fastify's types do not offer.
    if (/^\d+$/.test(value)) {
      this.problems.push(`${name}='${value}' must be on, off, or the load balancers' addresses or ranges (not a number of hops)`);
      return fallback;
    }
    const known = FLAG_VALUES[value.toLowerCase()];
    if (known !== undefined) return known;
    const entries = value.split(',').map((e) => e.trim());
    const valid = (entry: string) => {
      if (PROXY_PRESETS.includes(entry)) return true;
      const [address, bits, extra] = entry.split('/');
      const version = isIP(address);
      return version !== 0 && extra === undefined && (bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (version === 4 ? 32 : 128)));
    };
    if (!entries.every(valid)) {
      this.problems.push(`${name}='${value}' must be on, off, or addresses, CIDR ranges and ${PROXY_PRESETS.join(', ')}, comma-separated`);
      return fallback;
    }
    return entries.join(',');
  }

  oneOf<T extends string>(name: string, values: readonly T[], fallback: T): T {
    const value = this.string(name);
    if (value === undefined) return fallback;
    if (!(values as readonly string[]).includes(value)) {
      this.problems.push(`${name}='${value}' must be one of ${values.join(', ')}`);
      return fallback;
    }
    return value as T;
  }

  url(name: string, protocols: string[], example: string): string | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    // A socket connection names its folder in ?host= instead (postgresql:///db?host=/var/run/postgresql).
    if (!url || !protocols.includes(url.protocol) || !(url.hostname || url.searchParams.get('host'))) {
      this.problems.push(`${name}='${redact(value)}' is not a ${protocols.map((p) => `${p}//`).join(' or ')} URL with a host (e.g. ${example})`);
      return undefined;
    }
    return value;
  }

  /** Exact origins (`https://app.example`), or `*`: a near miss such as a trailing slash would never match. */
  origins(name: string): string[] {
    const list = (this.string(name) ?? '')
      .split(',')
      .map((o) => o.trim())
      .filter((o) => o !== '');
    for (const o of list) {
      let origin: string | undefined;
      try {
        origin = new URL(o).origin;
      } catch {
        origin = undefined;
      }
      if (o !== '*' && origin !== o) this.problems.push(`${name} must be '*' or origins such as https://app.example, got '${o}'`);
    }
    return list;
  }

  secret(name: string, minLength: number): string | undefined {
    const value = this.string(name);
    if (value !== undefined && value.length < minLength) {
      this.problems.push(`${name} must be at least ${minLength} characters (it has ${value.length})`);
      return undefined;
    }
    return value;
  }
}

function absoluteUrl(value: string, name: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`${name} must be an absolute URL, got '${value}'`);
  }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) throw new Error(`${name} must be an https URL (http only on a loopback address), got '${value}'`);
  return url;
}

/** NHS Login is configured by its issuer plus exactly one key source; any NHS_LOGIN_* without the rest is a mistake. */
function nhsLogin(env: NodeJS.ProcessEnv): NhsLoginConfig | undefined {
  const issuer = env.NHS_LOGIN_ISSUER || undefined;
  const jwksUrl = env.NHS_LOGIN_JWKS_URL || undefined;
  const jwksFile = env.NHS_LOGIN_JWKS_FILE || undefined;
  const audience = env.NHS_LOGIN_AUDIENCE || undefined;
  if (!issuer && !jwksUrl && !jwksFile && !audience) return undefined;
  if (!issuer) throw new Error('NHS_LOGIN_ISSUER is required when any other NHS_LOGIN_* setting is given');
  // The issuer is compared with `iss` exactly (OpenID Connect Core §3.1.3.7), so it is kept as written.
  absoluteUrl(issuer, 'NHS_LOGIN_ISSUER');
  if (!jwksUrl === !jwksFile) throw new Error('NHS Login needs exactly one of NHS_LOGIN_JWKS_URL and NHS_LOGIN_JWKS_FILE');
  if (jwksUrl) absoluteUrl(jwksUrl, 'NHS_LOGIN_JWKS_URL');
  return { issuer, ...(jwksUrl ? { jwksUrl } : {}), ...(jwksFile ? { jwksFile } : {}), ...(audience ? { audience } : {}) };
}

/** Reads and checks the configuration; throws a `ConfigError` listing every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const read = new EnvReader(env);
  const port = read.int('PORT', 4000, 0, 65535);
  const host = read.string('HOST') ?? '0.0.0.0';
  const aggregationWorker = read.flag('AGGREGATION_WORKER', true);
  const concurrency = read.int('AGGREGATION_CONCURRENCY', 0, 1);
  const production = env.NODE_ENV === 'production';
  const metricsPort = read.int('METRICS_PORT', 0, 1, 65535);
  const config: Config = {
    port,
    host,
    dataDir: read.string('DATA_DIR') ?? './data',
    databaseUrl: read.url('DATABASE_URL', ['postgres:', 'postgresql:'], 'postgresql://user:password@localhost:5432/tributary'),
    databaseReplicaUrl: read.url('DATABASE_REPLICA_URL', ['postgres:', 'postgresql:'], 'postgresql://user:password@replica:5432/tributary'),
    replicaMaxWaitMs: read.int('REPLICA_MAX_WAIT_MS', 1000, 0, 60_000),
    citus: read.flag('CITUS', false),
    publicUrl: (read.url('PUBLIC_URL', ['http:', 'https:'], 'https://fhir.example.org') ?? `http://localhost:${port}`).replace(/\/+$/, ''),
    bodyLimit: read.int('BODY_LIMIT_BYTES', 16 * 1024 * 1024, 1),
    maxBodyDepth: read.int('MAX_BODY_DEPTH', 100, 10),
    logLevel: read.oneOf('LOG_LEVEL', LOG_LEVELS, 'info'),
    poolSize: read.int('DATABASE_POOL_SIZE', 10, 1),
    statementTimeoutMs: read.int('STATEMENT_TIMEOUT_MS', 60_000),
    searchTimeoutMs: read.int('SEARCH_TIMEOUT_MS', 10_000),
    poolWaitTimeoutMs: read.int('POOL_WAIT_TIMEOUT_MS', 10_000),
    clientMaxConcurrent: read.int('CLIENT_MAX_CONCURRENT', 16),
    trustProxy: read.trustProxy('TRUST_PROXY', DEFAULT_TRUSTED_PROXIES),
    authFailures: {
      perClient: read.int('AUTH_MAX_FAILURES_PER_CLIENT', 10, 1),
      perAddress: read.int('AUTH_MAX_FAILURES_PER_ADDRESS', 50, 1),
      windowMs: read.int('AUTH_FAILURE_WINDOW_MS', 15 * 60_000, 1000),
    },
    bundleMaxEntries: read.int('BUNDLE_MAX_ENTRIES', 10_000, 1),
    metricsToken: read.secret('METRICS_TOKEN', 16),
    metricsPort: metricsPort || undefined,
    graphql: {
      maxDepth: read.int('GRAPHQL_MAX_DEPTH', 15),
      maxAliases: read.int('GRAPHQL_MAX_ALIASES', 50),
      maxCost: read.int('GRAPHQL_MAX_COST', 50_000),
      maxTokens: read.int('GRAPHQL_MAX_TOKENS', 10_000, 100),
      // On by default in development; production turns them on explicitly.
      introspection: read.flag('GRAPHQL_INTROSPECTION', !production),
      sandbox: read.flag('GRAPHQL_SANDBOX', !production),
      // Sandbox stays the default where its CDN is reachable; a closed network sets graphiql.
      explorer: read.oneOf('GRAPHQL_EXPLORER', GRAPHQL_EXPLORERS, 'sandbox'),
    },
    audit: read.flag('AUDIT', true),
    idempotencyWindowSeconds: read.int('IDEMPOTENCY_WINDOW', 86_400, 1),
    shutdownTimeoutMs: read.int('SHUTDOWN_TIMEOUT_MS', 30_000, 1),
    exportTtlHours: read.int('EXPORT_TTL_HOURS', 24, 1),
    corsOrigins: read.origins('CORS_ORIGINS'),
    breakGlassSeconds: read.int('BREAK_THE_GLASS_SECONDS', 4 * 60 * 60, 60, 24 * 60 * 60),
    aggregationConcurrency: concurrency || undefined,
    aggregationThread: read.flag('AGGREGATION_THREAD', true),
    aggregationBatchSize: read.int('AGGREGATION_BATCH_SIZE', 100, 1),
    aggregationMaxBacklog: read.int('AGGREGATION_MAX_BACKLOG', aggregationWorker ? 500 : 0),
    aggregationAdmitWaitMs: read.int('AGGREGATION_ADMIT_WAIT_MS', 30_000),
    aggregationWorker,
    aggregatedTypes: SUPPORTED_TYPES,
    applyAggregatedTypesChange: read.oneOf('AGGREGATED_TYPES_CHANGE', ['refuse', 'apply'], 'refuse') === 'apply',
  };
  try {
    config.aggregatedTypes = aggregatedTypeList(read.string('AGGREGATED_TYPES'));
  } catch (err) {
    read.problems.push((err as Error).message);
  }
  try {
    const nhs = nhsLogin(env);
    if (nhs) config.nhsLogin = nhs;
  } catch (err) {
    read.problems.push((err as Error).message);
  }
  // A replica of nothing: the embedded store has no replicas, and the replica must follow DATABASE_URL's database.
  if (config.databaseReplicaUrl && !config.databaseUrl)
    read.problems.push('DATABASE_REPLICA_URL needs DATABASE_URL (a replica follows a PostgreSQL primary; the embedded store has none)');
  // Read where they are used (the token service), checked here so that every problem shows at once.
  read.int('TOKEN_TTL_SECONDS', 300, 1);
  if (read.problems.length) throw new ConfigError(read.problems);
  return config;
}
