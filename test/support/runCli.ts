import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TestServer } from './testServer';

const run = promisify(execFile);
export const ROOT = path.resolve(__dirname, '../..');

/** The admin CLI exactly as `npm run admin --` runs it, in its own process, against a test server. */
export async function runAdminCli(server: TestServer, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['scripts/run-ts.js', 'src/cli/admin.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, TRIBUTARY_URL: server.url, ADMIN_TOKEN: server.adminToken, NODE_OPTIONS: '' },
      maxBuffer: 50 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
