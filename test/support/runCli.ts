import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TestServer } from './testServer';

const run = promisify(execFile);
export const ROOT = path.resolve(__dirname, '../..');

// `npm run admin` compiles first when the sources changed (scripts/build.js); once per test file is enough.
let built: Promise<unknown> | undefined;

/** The admin CLI exactly as `npm run admin --` runs it (compiled), in its own process, against a test server. */
export async function runAdminCli(server: TestServer, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  built ??= run(process.execPath, ['scripts/build.js', '--if-stale'], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } });
  await built;
  try {
    const { stdout, stderr } = await run(process.execPath, ['dist/src/cli/admin.js', ...args], {
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
