import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The server under test, started as a user starts it: its own process, `node dist/src/server.js`. */
export const ROOT = path.resolve(__dirname, '../..');

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

export interface RunningServer {
  url: string;
  pid: number;
  adminToken: string;
  dataDir: string;
  stop(): Promise<void>;
  /** Peak resident set size of the server so far (VmHWM), in MB. */
  peakRssMb(): number;
  admin<T>(method: string, p: string, body?: unknown): Promise<T>;
  tenant(fhirVersion?: 'R4' | 'STU3', defaultSourceOrg?: string): Promise<{ endpointId: string; base: string; token: string }>;
}

export async function startServer(env: Record<string, string>): Promise<RunningServer> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tributary-bench-'));
  const adminToken = `bench-admin-${Math.random().toString(36).slice(2)}-${Date.now()}`;
  const child: ChildProcess = spawn(process.execPath, [path.join(ROOT, 'dist/src/server.js')], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, ADMIN_TOKEN: adminToken, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += String(d)));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null || i > 600) throw new Error(`server did not start: ${stderr.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const admin = async <T>(method: string, p: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${url}${p}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${p} → ${res.status} ${JSON.stringify(json)}`);
    return json as T;
  };
  return {
    url,
    pid: child.pid as number,
    adminToken,
    dataDir,
    admin,
    peakRssMb() {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        return m ? Math.round(Number(m[1]) / 1024) : NaN;
      } catch {
        return NaN;
      }
    },
    async tenant(fhirVersion = 'R4', defaultSourceOrg = 'Organization/bench-default-org') {
      const customer = await admin<{ id: string }>('POST', '/admin/customers', { name: `bench ${Date.now()}` });
      const endpoint = await admin<{ id: string }>('POST', '/admin/endpoints', { customerId: customer.id, fhirVersion, defaultSourceOrg });
      const client = await admin<{ client_id: string; client_secret: string }>('POST', '/admin/clients', { customerId: customer.id, family: 'fhir' });
      const tokenRes = await fetch(`${url}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: client.client_id, client_secret: client.client_secret }).toString(),
      });
      const { access_token } = (await tokenRes.json()) as { access_token: string };
      return { endpointId: endpoint.id, base: `${url}/fhir/customer/${endpoint.id}`, token: access_token };
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
