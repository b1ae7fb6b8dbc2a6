import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Runs the load generator in its own process and returns its measurements. */
export interface LoadRequest {
  method?: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface LoadResult {
  count: number;
  errors: number;
  statusErrors: number;
  seconds: number;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
}

export function runLoad(spec: { requests: LoadRequest[]; concurrency: number; durationMs?: number; total?: number }): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    // The spec goes through a file: request bodies (bundles) can be many megabytes.
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'bench-load-')), 'spec.json');
    writeFileSync(file, JSON.stringify(spec));
    const child = spawn(process.execPath, [path.join(__dirname, '../client/loadClient.mjs'), `@${file}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (err += String(d)));
    child.on('exit', (code) => {
      rmSync(path.dirname(file), { recursive: true, force: true });
      if (code === 0) resolve(JSON.parse(out) as LoadResult);
      else reject(new Error(`load client failed: ${err}`));
    });
  });
}
