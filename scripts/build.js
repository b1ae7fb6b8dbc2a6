#!/usr/bin/env node
'use strict';
/**
 * Compiles the TypeScript sources into dist/ (`tsc -p tsconfig.build.json`, incremental).
 * `--if-stale` compiles only when a source or compiler setting changed since the last build, so `npm start`
 * and `npm run admin` on an installed checkout go straight to the compiled JavaScript (a few milliseconds to
 * check, against seconds to compile). The check compares modification times and the number of sources with
 * the stamp the last successful build left in dist/.build-stamp.json.
 *
 * Builds are serialised by a lock folder, so two commands started together (two admin calls, parallel
 * tests) never write dist/ at the same time; the second finds the first's build fresh and does nothing.
 * Compiler output goes to stderr: stdout belongs to the command that runs after the build (the admin CLI
 * prints JSON there). Without TypeScript (`npm ci --omit=dev`) an existing build is used as it is.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');
const stampFile = path.join(dist, '.build-stamp.json');
const lockDir = path.join(dist, '.build-lock');
const SOURCE_DIRS = ['src', 'bench'];
const SETTINGS = ['tsconfig.json', 'tsconfig.build.json'];
// A lock older than this was left by a killed build.
const STALE_LOCK_MS = 5 * 60_000;

/** The newest modification time and the number of the build's inputs. */
function sourceState() {
  let newest = 0;
  let count = 0;
  const visit = (dir) => {
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) visit(full);
      else if (/\.(ts|json)$/.test(e.name)) {
        count++;
        newest = Math.max(newest, fs.statSync(full).mtimeMs);
      }
    }
  };
  for (const d of SOURCE_DIRS) visit(path.join(root, d));
  for (const f of SETTINGS) newest = Math.max(newest, fs.statSync(path.join(root, f)).mtimeMs);
  return { newest, count };
}

function isFresh(state) {
  try {
    const stamp = JSON.parse(fs.readFileSync(stampFile, 'utf8'));
    return stamp.count === state.count && stamp.newest >= state.newest && fs.existsSync(path.join(dist, 'src/server.js'));
  } catch {
    return false;
  }
}

function typescriptCompiler() {
  try {
    return require.resolve('typescript/bin/tsc', { paths: [root] });
  } catch {
    return undefined;
  }
}

function acquireLock() {
  fs.mkdirSync(dist, { recursive: true });
  const deadline = Date.now() + STALE_LOCK_MS;
  for (;;) {
    try {
      fs.mkdirSync(lockDir);
      return;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      try {
        if (Date.now() - fs.statSync(lockDir).mtimeMs > STALE_LOCK_MS) fs.rmSync(lockDir, { recursive: true, force: true });
      } catch {
        // released meanwhile
      }
      if (Date.now() > deadline) throw new Error(`${lockDir} is held by another build; remove it if no build is running`, { cause: err });
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
}

function build(ifStale) {
  if (ifStale && isFresh(sourceState())) return 0;
  const tsc = typescriptCompiler();
  if (!tsc) {
    if (fs.existsSync(path.join(dist, 'src/server.js'))) {
      if (!ifStale) console.error('TypeScript is not installed (production install): using the existing build in dist/.');
      return 0;
    }
    console.error("dist/ has no build and TypeScript is not installed: run 'npm install' (with dev dependencies) to build.");
    return 1;
  }
  acquireLock();
  try {
    // Sampled before compiling: an edit made during the build leaves the stamp behind, so the next run rebuilds.
    const state = sourceState();
    if (ifStale && isFresh(state)) return 0;
    const started = Date.now();
    if (ifStale) console.error('Compiling the TypeScript sources (changed since the last build)…');
    const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: ['ignore', 2, 2] });
    if (result.status !== 0) return result.status ?? 1;
    fs.writeFileSync(stampFile, `${JSON.stringify({ ...state, builtAt: new Date().toISOString(), ms: Date.now() - started })}\n`);
    return 0;
  } finally {
    fs.rmSync(lockDir, { recursive: true, force: true });
  }
}

process.exitCode = build(process.argv.includes('--if-stale'));
