#!/usr/bin/env node
'use strict';
/**
 * Builds the browser pages (app/: the record viewer and the offline GraphQL explorer) into dist/web with
 * Vite, from the installed packages only. `--if-stale` builds only when a file under app/ or the lock file
 * changed since the last build (dist/web/.build-stamp.json), so `npm start` on an installed checkout goes
 * straight on. Without the dev dependencies (`npm ci --omit=dev`) an existing build is used as it is and
 * the server answers 503 for pages that were never built. Output goes to stderr, as in build.js.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'dist/web');
const stampFile = path.join(out, '.build-stamp.json');
const INPUTS = ['app', 'package-lock.json'];

function sourceState() {
  let newest = 0;
  let count = 0;
  const visit = (p) => {
    const stat = fs.statSync(p, { throwIfNoEntry: false });
    if (!stat) return;
    if (stat.isDirectory()) for (const e of fs.readdirSync(p)) visit(path.join(p, e));
    else {
      count++;
      newest = Math.max(newest, stat.mtimeMs);
    }
  };
  for (const i of INPUTS) visit(path.join(root, i));
  return { newest, count };
}

function isFresh(state) {
  try {
    const stamp = JSON.parse(fs.readFileSync(stampFile, 'utf8'));
    return stamp.count === state.count && stamp.newest >= state.newest && fs.existsSync(path.join(out, 'viewer/index.html'));
  } catch {
    return false;
  }
}

function build(ifStale) {
  const vite = path.join(root, 'node_modules/vite/bin/vite.js');
  if (!fs.existsSync(vite)) {
    if (!fs.existsSync(path.join(out, 'viewer/index.html'))) console.error('Vite is not installed (dev dependencies omitted): the browser pages are not built.');
    return 0;
  }
  const state = sourceState();
  if (ifStale && isFresh(state)) return 0;
  const started = Date.now();
  console.error('Building the browser pages (app/ → dist/web)…');
  const result = spawnSync(process.execPath, [vite, 'build', '--config', 'app/vite.config.ts'], { cwd: root, stdio: ['ignore', 2, 2] });
  if (result.status !== 0) return result.status ?? 1;
  fs.writeFileSync(stampFile, `${JSON.stringify({ ...state, builtAt: new Date().toISOString(), ms: Date.now() - started })}\n`);
  return 0;
}

process.exitCode = build(process.argv.includes('--if-stale'));
