#!/usr/bin/env node
'use strict';
/**
 * `npm install` hook: generates the Prisma client (offline, see prisma-generate.js) and, when the dev
 * dependencies are there, the typed GraphQL documents from schema/ (GraphQL Code Generator) and the compiled
 * server and CLI in dist/ (scripts/build.js) and the browser pages in dist/web (scripts/build-web.js), and the
 * pre-migrated embedded database a new data folder starts from (scripts/pglite-template.js).
 */
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const run = (args) => {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

run([path.join(__dirname, 'prisma-generate.js')]);
// The package's exports hide its bin from require.resolve: find it by path.
const codegen = path.join(root, 'node_modules/@graphql-codegen/cli/cjs/bin.js');
if (existsSync(codegen)) run([codegen, '--config', 'codegen.yml', '--silent']);
// Compile now, so the first `npm start` and every `npm run admin` run JavaScript at once (see build.js).
if (existsSync(path.join(root, 'node_modules/typescript'))) run([path.join(__dirname, 'build.js'), '--if-stale']);
// The browser pages (record viewer, offline GraphQL explorer), when Vite is there (see build-web.js).
run([path.join(__dirname, 'build-web.js'), '--if-stale']);
// Digest the large FHIR StructureDefinition bundles once (src/fhir/definitionDigest.ts), so starts skip their prose.
const definitions = path.join(root, 'dist/src/fhir/definitions.js');
if (existsSync(definitions)) {
  run(['-e', `const d = require(${JSON.stringify(definitions)}); d.readR4Definition('profiles-types.json'); d.readR4Definition('profiles-resources.json');`]);
}
// A pre-migrated embedded database, so a first start copies files instead of creating and migrating one.
if (existsSync(path.join(root, 'dist/src/store/pgliteTemplate.js'))) run([path.join(__dirname, 'pglite-template.js')]);
