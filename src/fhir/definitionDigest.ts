import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The R4 StructureDefinition bundles without their prose. `profiles-resources.json` is 35 MB, most of it
 * documentation (definitions, comments, requirements, mappings, narrative, differentials) that nothing here
 * reads; parsing it cost a quarter of a start and its parsed form stayed in the heap. The digest keeps every
 * structural field (paths, cardinality, types, bindings, constraints with their FHIRPath, flags) and is written
 * once per package version to a cache folder (`npm install` makes it), so later starts parse ≈ 5 MB.
 */
const DIGEST_FORMAT = 1;
const DIGESTED = new Set(['profiles-resources.json', 'profiles-types.json']);
const PROSE_OF_DEFINITION = ['text', 'differential', 'description', 'purpose', 'mapping', 'contact', 'copyright', 'jurisdiction'];
const PROSE_OF_ELEMENT = ['definition', 'comment', 'requirements', 'mapping', 'alias', 'short', 'meaningWhenMissing', 'isModifierReason', 'example', 'orderMeaning'];

type Json = Record<string, unknown>;

export function isDigested(file: string): boolean {
  return DIGESTED.has(file);
}

/** The bundle with the prose of each StructureDefinition and of each of its snapshot elements removed. */
export function digest(bundle: { entry?: { resource: Json }[] }): typeof bundle {
  for (const { resource } of bundle.entry ?? []) {
    for (const key of PROSE_OF_DEFINITION) delete resource[key];
    const elements = (resource.snapshot as { element?: Json[] } | undefined)?.element ?? [];
    for (const element of elements) {
      for (const key of PROSE_OF_ELEMENT) delete element[key];
      const binding = element.binding as Json | undefined;
      if (binding) delete binding.description;
    }
  }
  return bundle;
}

/**
 * The digested file, from the cache when it was made from this package version, else made (and cached when
 * the folder is writable; a read-only install just digests in memory each start).
 */
export function readDigested(sourceDir: string, file: string, cacheDir: string, packageVersion: string): unknown {
  const cached = path.join(cacheDir, `${packageVersion}-v${DIGEST_FORMAT}-${file}`);
  try {
    return JSON.parse(readFileSync(cached, 'utf8'));
  } catch {
    // Not made yet (or unreadable): made below.
  }
  const made = digest(JSON.parse(readFileSync(path.join(sourceDir, file), 'utf8')));
  try {
    mkdirSync(cacheDir, { recursive: true });
    const temporary = `${cached}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify(made));
    renameSync(temporary, cached);
  } catch {
    // A read-only node_modules: nothing cached, nothing lost.
  }
  return made;
}
