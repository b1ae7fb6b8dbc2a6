#!/usr/bin/env node
'use strict';
/**
 * Runs a TypeScript entry point of the developer tools: `node scripts/run-ts.js bench/run.ts [args…]`.
 * With dev dependencies installed it runs the source through `tsx`, so the tool never lags behind an edit
 * and needs no build. Production installs (`npm ci --omit=dev`) have no tsx: there it runs the compiled
 * `dist/<same path>.js` from `npm run build` (which `npm start` performs). Exit code and signals pass through.
 */
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const [entry, ...args] = process.argv.slice(2);
if (!entry || !entry.endsWith('.ts')) {
  console.error('usage: node scripts/run-ts.js <file.ts> [args…]');
  process.exit(2);
}

let tsxCli;
try {
  tsxCli = require.resolve('tsx/cli', { paths: [root] });
} catch {
  tsxCli = undefined;
}

let command;
if (tsxCli) {
  // tsconfig.tools.json: the project's settings minus a path mapping that is for the type checker only.
  command = [tsxCli, '--tsconfig', path.join(root, 'tsconfig.tools.json'), path.resolve(root, entry), ...args];
} else {
  const compiled = path.join(root, 'dist', entry.replace(/\.ts$/, '.js'));
  if (!existsSync(compiled)) {
    console.error(`${compiled} is missing and tsx is not installed: run 'npm run build' first (or install dev dependencies).`);
    process.exit(1);
  }
  command = [compiled, ...args];
}

const result = spawnSync(process.execPath, command, { stdio: 'inherit' });
if (result.error) {
  console.error(result.error.message);
  process.exit(1);
}
if (result.signal) process.kill(process.pid, result.signal);
process.exit(result.status ?? 1);
