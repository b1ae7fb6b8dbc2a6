import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * The README's quick start, run as written on a fresh copy of the checkout: the files a clone has (git
 * ls-files), the dependencies and generated clients of an install (node_modules linked, src/generated
 * copied: the download is the only part skipped), no data folder and no dist/. The first shell block is
 * started as the reader starts it (without `npm install`), the walkthrough block is run with bash, and every
 * status the README announces (`… → 201`) must be the one the server answers, in order.
 */
const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const START_TIMEOUT_MS = 240_000;
const WALKTHROUGH_TIMEOUT_MS = 180_000;

interface ReadmeQuickStart {
  start: string[];
  walkthrough: string;
}

/** The shell blocks of the README's "Quick start" section: the first starts the server, the one with curl uses it. */
function readQuickStart(): ReadmeQuickStart {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = /^## Quick start\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1];
  if (!section) throw new Error('README.md has no "## Quick start" section');
  const blocks = [...section.matchAll(/^```sh\n([\s\S]*?)^```/gm)].map((m) => m[1]);
  const walkthrough = blocks.find((b) => b.includes('curl '));
  if (blocks.length < 2 || !walkthrough) throw new Error('the quick start needs a block that starts the server and one that uses it with curl');
  const start = blocks[0]
    .split('\n')
    .map((line) => line.replace(/#.*$/, '').trim())
    .filter(Boolean);
  return { start, walkthrough };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Every file under `dir` except the install's and the build's, relative to it. */
function checkoutFiles(dir: string, skip: string[]): string[] {
  const out: string[] = [];
  const visit = (rel: string) => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (skip.includes(child)) continue;
      if (e.isDirectory()) visit(child);
      else out.push(child);
    }
  };
  visit('');
  return out.sort();
}

/** A clone-like copy: tracked and new unignored files, node_modules linked, generated clients copied. */
async function cloneLikeCopy(): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tributary-quickstart-'));
  const { stdout } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
  for (const file of stdout.split('\0').filter(Boolean)) {
    if (!existsSync(path.join(ROOT, file))) continue; // deleted in the working tree
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    cpSync(path.join(ROOT, file), path.join(dir, file));
  }
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  cpSync(path.join(ROOT, 'src/generated'), path.join(dir, 'src/generated'), { recursive: true });
  return dir;
}

/** A plain environment, as a newcomer's shell has: none of this machine's Tributary or test settings. */
function shellEnv(port: number): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'LANG', 'TMPDIR', 'USER'];
  return { ...Object.fromEntries(keep.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]])), PORT: String(port) };
}

function stopGroup(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null || !child.pid) return resolve();
    const force = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, 10_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      clearTimeout(force);
      resolve();
    }
  });
}

describe('the README quick start', () => {
  const quickStart = readQuickStart();
  let dir: string;
  let port: number;
  let server: ChildProcess | undefined;
  let serverOutput = '';
  let initialFiles: string[];

  beforeAll(async () => {
    dir = await cloneLikeCopy();
    port = await freePort();
    initialFiles = checkoutFiles(dir, ['node_modules', 'dist', 'data']);
  }, 120_000);

  afterAll(async () => {
    if (server) await stopGroup(server);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  test(
    'starts as written: the install step, then the server on $PORT with a data folder that does not exist yet',
    async () => {
      expect(quickStart.start[0]).toBe('npm install');
      expect(existsSync(path.join(dir, 'data'))).toBe(false);
      const startedAt = Date.now();
      // Its own process group, so that stopping it stops npm, the build and the server alike.
      server = spawn('bash', ['-c', quickStart.start.slice(1).join('\n')], { cwd: dir, env: shellEnv(port), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      const started = server;
      started.stdout?.on('data', (d) => (serverOutput = (serverOutput + String(d)).slice(-20_000)));
      started.stderr?.on('data', (d) => (serverOutput = (serverOutput + String(d)).slice(-20_000)));
      for (;;) {
        const health = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
        if (health?.ok) break;
        if (started.exitCode !== null) throw new Error(`npm start exited with ${started.exitCode}:\n${serverOutput}`);
        if (Date.now() - startedAt > START_TIMEOUT_MS) throw new Error(`npm start did not answer within ${START_TIMEOUT_MS} ms:\n${serverOutput}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      // The data folder holds the database and secrets: the owner's only.
      expect(statSync(path.join(dir, 'data')).mode & 0o777).toBe(0o700);
      expect(statSync(path.join(dir, 'data/admin-credential.json')).mode & 0o777).toBe(0o600);
    },
    START_TIMEOUT_MS + 10_000,
  );

  test(
    'the walkthrough runs as pasted and every request answers the status the README announces',
    async () => {
      if (!server || server.exitCode !== null) throw new Error('the server is not running (see the test before)');
      const expected = [...quickStart.walkthrough.matchAll(/#[^\n]*→ (\d{3})/g)].map((m) => Number(m[1]));
      expect(expected.length).toBeGreaterThanOrEqual(10);

      let result: { stdout: string; stderr: string };
      try {
        result = await run('bash', ['-eo', 'pipefail', '-c', quickStart.walkthrough], {
          cwd: dir,
          env: shellEnv(port),
          timeout: WALKTHROUGH_TIMEOUT_MS,
          maxBuffer: 64 * 1024 * 1024,
        });
      } catch (err) {
        const e = err as { code: number; stdout: string; stderr: string };
        throw new Error(`the walkthrough failed (exit ${e.code}):\n${e.stderr}\n--- stdout (end) ---\n${e.stdout?.slice(-4000)}\n--- server ---\n${serverOutput.slice(-4000)}`, {
          cause: err,
        });
      }
      const statuses = [...result.stdout.matchAll(/HTTP\/[\d.]+ (\d{3})/g)].map((m) => Number(m[1]));
      expect(statuses).toEqual(expected);

      // The merged record has the patient the walkthrough created.
      const responses = result.stdout.split(/(?=HTTP\/[\d.]+ \d{3})/);
      const aggregated = responses.find((r) => /^HTTP[^\n]*\n[\s\S]*?\r?\n\r?\n\{"resourceType":"Bundle"[^\n]*\/fhir\/aggregated\/Patient\?identifier=/.test(r));
      expect(aggregated).toBeDefined();
      const bundle = JSON.parse(aggregated!.slice(aggregated!.indexOf('{'))) as { entry?: { resource: { identifier?: { value?: string }[] } }[] };
      expect(bundle.entry?.map((e) => e.resource.identifier?.[0]?.value)).toEqual(['12345']);
      // (curl -si prints no newline after a body: the version follows the search's JSON on its line)
      expect(result.stdout).toMatch(/(^|\})4\.0\.1$/m);

      // Secrets stay in the shell or under DATA_DIR: the start and the walkthrough add nothing else to the checkout.
      expect(checkoutFiles(dir, ['node_modules', 'dist', 'data'])).toEqual(initialFiles);
    },
    WALKTHROUGH_TIMEOUT_MS + 10_000,
  );
});
