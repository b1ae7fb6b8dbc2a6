import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * Load generators, each in its own process so the load never shares a process with the server or the
 * bench: autocannon for fixed requests (reads, searches, GraphQL) and a small exact-once poster for the
 * ingest (every bundle sent once, every failure reported).
 */
export interface LoadResult {
  count: number;
  errors: number;
  statusErrors: number;
  seconds: number;
  rps: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  firstFailureStatus?: number | null;
  failures?: { index: number; status: number; body: string }[];
  /** Every failed request's index (the ingest poster only). */
  failedIndices?: number[];
}

export interface PostRequest {
  method?: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
}

function runChild(script: string, spec: unknown, feed?: (stdin: NodeJS.WritableStream) => Promise<void>): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    // Through a file: request bodies (bundles) can be tens of megabytes.
    const dir = mkdtempSync(path.join(tmpdir(), 'bench-load-'));
    const file = path.join(dir, 'spec.json');
    writeFileSync(file, JSON.stringify(spec));
    const child = spawn(process.execPath, [path.join(__dirname, '../client', script), `@${file}`], {
      stdio: [feed ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d) => (out += String(d)));
    child.stderr?.on('data', (d) => (err += String(d)));
    child.on('exit', (code) => {
      rmSync(dir, { recursive: true, force: true });
      if (code === 0) resolve(JSON.parse(out) as LoadResult);
      else reject(new Error(`${script} failed (${code}): ${err.slice(-1000)}`));
    });
    if (feed && child.stdin) {
      child.stdin.on('error', () => undefined);
      feed(child.stdin).then(
        () => child.stdin?.end(),
        (e: Error) => {
          child.kill();
          reject(e);
        },
      );
    }
  });
}

/**
 * Sends each request of `source` once, `concurrency` in flight, from one process that receives them as it
 * goes (stdin, one JSON line each, written as the pipe drains): a long load, made up on the fly, with no
 * pause or burst of its own between parts of it.
 */
export function runPostStream(source: AsyncIterable<PostRequest> | Iterable<PostRequest>, concurrency: number): Promise<LoadResult> {
  return runChild('loadClient.mjs', { stream: true, concurrency }, async (stdin) => {
    for await (const req of source) {
      if (!stdin.write(`${JSON.stringify(req)}\n`)) await new Promise((r) => stdin.once('drain', r));
    }
  });
}

/**
 * POSTs every line of `file` (one request body a line, built before the load) to `url` once, `concurrency` in
 * flight, with a token the load client mints for `client` at the server's `tokenUrl`.
 */
export function runPostFile(spec: { file: string; url: string; concurrency: number; token: { url: string; clientId: string; clientSecret: string } }): Promise<LoadResult> {
  return runChild('loadClient.mjs', spec);
}

/** Sends `requests` once each (or round-robin for `durationMs`), `concurrency` in flight. */
export function runPosts(spec: { requests: PostRequest[]; concurrency: number; total?: number; durationMs?: number }): Promise<LoadResult> {
  return runChild('loadClient.mjs', spec);
}

export interface CannonRequest {
  method?: string;
  /** Absolute URL; all requests of one run go to one origin. */
  url: string;
  headers?: Record<string, string>;
  body?: string;
}

/** autocannon: `connections` in flight for `durationMs`, cycling through `requests`. */
export function runCannon(spec: { requests: CannonRequest[]; connections: number; durationMs: number }): Promise<LoadResult> {
  const origin = new URL(spec.requests[0].url).origin;
  const requests = spec.requests.map((r) => {
    const u = new URL(r.url);
    if (u.origin !== origin) throw new Error('one origin per load run');
    return { method: r.method ?? 'GET', path: u.pathname + u.search, headers: r.headers ?? {}, ...(r.body === undefined ? {} : { body: r.body }) };
  });
  return runChild('cannon.mjs', { url: origin, requests, connections: spec.connections, durationMs: spec.durationMs });
}
