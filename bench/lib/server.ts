import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { npmNodeCommand } from './npmScript';

/**
 * The server under test, started as a user starts it: its own process, `node dist/src/server.js` (after
 * `npm run build`), configured only through its documented environment variables.
 */
export const ROOT = path.resolve(__dirname, '../..');
export const SERVER_ENTRY = path.join(ROOT, 'dist/src/server.js');

/** The environment and node options `npm start` gives the server (package.json), so the bench runs it as deployed. */
const START = npmNodeCommand(ROOT, 'start', 'dist/src/server.js');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export interface Tenant {
  customerId: string;
  endpointId: string;
  base: string;
  token: string;
  mintedAt: number;
  clientId: string;
  clientSecret: string;
}

export interface RunningServer {
  readonly url: string;
  readonly pid: number;
  readonly adminToken: string;
  readonly dataDir: string;
  /** The environment the process was started with (beyond the bench's own defaults). */
  readonly env: Record<string, string>;
  /** Stops the process; the data folder stays unless `removeData`. */
  stop(options?: { removeData?: boolean }): Promise<void>;
  /** Stops and starts the process again on the same port and data, with `env` changed. */
  restart(env: Record<string, string>): Promise<void>;
  /** Resident set size now (VmRSS), MB. */
  rssMb(): number | null;
  /** The exit code of the last process, null while it runs (or when a signal ended it). */
  readonly exitCode: number | null;
  /** Sends `signal` to the server's whole process group (started with `detached`), or to the process. */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** Peak resident set size (VmHWM) since start or the last `resetPeak`, over restarts, MB. */
  peakRssMb(): number | null;
  /** Resets the kernel's high-water mark to the current RSS (`echo 5 > /proc/<pid>/clear_refs`). */
  resetPeak(): void;
  admin<T>(method: string, p: string, body?: unknown): Promise<T>;
  /** A customer, an R4 endpoint and a `fhir` client with a fresh access token. */
  tenant(name: string): Promise<Tenant>;
  /** A fresh token for the tenant's client (tokens expire; long loads re-mint). */
  remint(tenant: Tenant): Promise<Tenant>;
}

function procStatusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number | null {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export interface StartOptions {
  /** Extra environment (DATABASE_URL, AGGREGATION_WORKER, …). */
  env?: Record<string, string>;
  /** Reuse a data folder (signing keys, credential, embedded store) instead of a fresh temporary one. */
  dataDir?: string;
  port?: number;
  /** Starts the server as the leader of a process group of its own, so `kill` reaches every process it has. */
  detached?: boolean;
}

/** A private EC P-256 JWK, as TOKEN_SIGNING_KEYS_* take it. */
const signingKey = (): string => JSON.stringify(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }));

/** Shared by every server process of one bench run so tokens verify on all of them (documented variables). */
export const TOKEN_SECRETS = { TOKEN_SIGNING_KEYS_FHIR: signingKey(), TOKEN_SIGNING_KEYS_LEGACY: signingKey() };

export async function startServer(options: StartOptions = {}): Promise<RunningServer> {
  if (!existsSync(SERVER_ENTRY)) throw new Error(`${SERVER_ENTRY} is missing: run 'npm run build' first`);
  const port = options.port ?? (await freePort());
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'tributary-bench-'));
  const adminToken = `bench-admin-${randomBytes(12).toString('hex')}`;
  const url = `http://127.0.0.1:${port}`;
  let env = { ...(options.env ?? {}) };
  let child: ChildProcess | undefined;
  let stderr = '';
  let peakBeforeRestartKb = 0;

  const launch = async () => {
    stderr = '';
    // BENCH_SERVER_NODE_ARGS (e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof') profiles the server under load.
    const nodeArgs = [...START.nodeArgs, ...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean)];
    child = spawn(process.execPath, [...nodeArgs, SERVER_ENTRY], {
      cwd: ROOT,
      // As deployed: NODE_ENV=production (graphql-js skips its development-mode checks on every value).
      env: {
        ...process.env,
        ...START.env,
        NODE_ENV: 'production',
        NODE_OPTIONS: '',
        PORT: String(port),
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        ADMIN_TOKEN: adminToken,
        LOG_LEVEL: 'warn',
        ...TOKEN_SECRETS,
        // The bench's load is one API client on up to 32 connections: the per-client limit (16 in flight by
        // default) would answer the rest 429 at once and the bench would time refusals, not the server.
        CLIENT_MAX_CONCURRENT: '0',
        ...env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: options.detached ?? false,
    });
    const started = child;
    started.stderr?.on('data', (d) => {
      stderr = (stderr + String(d)).slice(-8000);
      if (process.env.BENCH_SERVER_STDERR) process.stderr.write(d);
    });
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${url}/healthz`)).ok) return;
      } catch {
        // not listening yet
      }
      if (started.exitCode !== null || i > 1200) throw new Error(`server did not start: ${stderr.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const halt = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await launch();
  } catch (err) {
    await halt();
    if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }

  const api = serverApi(url, adminToken);

  return {
    url,
    get pid() {
      return child?.pid ?? -1;
    },
    adminToken,
    dataDir,
    get env() {
      return env;
    },
    ...api,
    get exitCode() {
      return child?.exitCode ?? null;
    },
    async kill(signal) {
      const c = child;
      if (!c?.pid || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      if (options.detached) process.kill(-c.pid, signal);
      else c.kill(signal);
      await exited;
    },
    rssMb() {
      const kb = child?.pid ? procStatusKb(child.pid, 'VmRSS') : null;
      return kb === null ? null : Math.round(kb / 1024);
    },
    peakRssMb() {
      const kb = child?.pid ? procStatusKb(child.pid, 'VmHWM') : null;
      const peak = Math.max(kb ?? 0, peakBeforeRestartKb);
      return peak ? Math.round(peak / 1024) : null;
    },
    resetPeak() {
      peakBeforeRestartKb = 0;
      try {
        if (child?.pid) writeFileSync(`/proc/${child.pid}/clear_refs`, '5');
      } catch {
        // Not Linux, or not allowed: the peak then counts from the process start.
      }
    },
    async stop({ removeData = true } = {}) {
      await halt();
      if (removeData && !options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
    async restart(changes) {
      const kb = child?.pid ? procStatusKb(child.pid, 'VmHWM') : null;
      peakBeforeRestartKb = Math.max(peakBeforeRestartKb, kb ?? 0);
      await halt();
      env = { ...env, ...changes };
      await launch();
    },
  };
}

/** The public API calls the bench makes on any server: admin (bearer ADMIN_TOKEN), tenants and tokens. */
export function serverApi(url: string, adminToken: string): Pick<RunningServer, 'admin' | 'tenant' | 'remint'> {
  const admin = async <T>(method: string, p: string, body?: unknown): Promise<T> => {
    let res: Response;
    let text: string;
    // A 503 with Retry-After (a database busy or briefly away, e.g. the first transaction after a start on a
    // loaded host) is answered as its contract says: wait and retry; a few times, then it is an error.
    for (let attempt = 1; ; attempt++) {
      res = await fetch(`${url}${p}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      text = await res.text();
      const retryAfter = Number(res.headers.get('retry-after'));
      if (res.status !== 503 || !(retryAfter > 0) || attempt >= 5) break;
      await new Promise((r) => setTimeout(r, Math.min(retryAfter, 5) * 1000));
    }
    if (!res.ok) throw Object.assign(new Error(`${method} ${p} → ${res.status} ${text.slice(0, 300)}`), { status: res.status });
    return (text ? JSON.parse(text) : {}) as T;
  };
  const token = async (clientId: string, clientSecret: string): Promise<string> => {
    const res = await fetch(`${url}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }).toString(),
    });
    const json = (await res.json()) as { access_token?: string };
    if (!res.ok || !json.access_token) throw new Error(`token request → ${res.status} ${JSON.stringify(json).slice(0, 300)}`);
    return json.access_token;
  };
  return {
    admin,
    async tenant(name) {
      const customer = await admin<{ id: string }>('POST', '/admin/customers', { name });
      // A default source organisation lets the aggregator attribute resources without managingOrganization.
      const endpoint = await admin<{ id: string }>('POST', '/admin/endpoints', {
        customerId: customer.id,
        fhirVersion: 'R4',
        defaultSourceOrg: `Organization/${name.replace(/\W+/g, '-')}`,
      });
      const client = await admin<{ client_id: string; client_secret: string }>('POST', '/admin/clients', { customerId: customer.id, family: 'fhir' });
      const bearer = await token(client.client_id, client.client_secret);
      // …and it must be an aggregated Organization (with an identifier), or the copies it would source are excluded.
      const orgId = name.replace(/\W+/g, '-');
      const org = await fetch(`${url}/fhir/customer/${endpoint.id}/Organization/${orgId}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/fhir+json' },
        body: JSON.stringify({ resourceType: 'Organization', id: orgId, identifier: [{ system: 'urn:tributary:bench', value: orgId }], name }),
      });
      if (!org.ok) throw new Error(`PUT Organization/${orgId} → ${org.status} ${(await org.text()).slice(0, 300)}`);
      return {
        customerId: customer.id,
        endpointId: endpoint.id,
        base: `${url}/fhir/customer/${endpoint.id}`,
        token: bearer,
        mintedAt: Date.now(),
        clientId: client.client_id,
        clientSecret: client.client_secret,
      };
    },
    async remint(tenant) {
      return { ...tenant, token: await token(tenant.clientId, tenant.clientSecret), mintedAt: Date.now() };
    },
  };
}
