import { readR4Definition } from './definitions';

/**
 * Element facts of R4 resource types from their StructureDefinitions: the order of top-level elements,
 * whether each repeats, and which element paths hold References. The merge rules and the reference checks
 * of the aggregator are driven by these instead of per-type code.
 */
export interface ElementInfo {
  /** Name without `[x]`. */
  name: string;
  repeats: boolean;
  choice: boolean;
}

interface Snapshot {
  resourceType: string;
  id: string;
  kind?: string;
  snapshot?: { element: { path: string; max?: string; type?: { code: string }[] }[] };
}

let byType: Map<string, Snapshot> | undefined;

function definition(type: string): Snapshot | undefined {
  if (!byType) {
    byType = new Map();
    const bundle = readR4Definition<{ entry: { resource: Snapshot }[] }>('profiles-resources.json');
    for (const { resource } of bundle.entry) if (resource.resourceType === 'StructureDefinition' && resource.kind === 'resource') byType.set(resource.id, resource);
  }
  return byType.get(type);
}

const topLevel = new Map<string, ElementInfo[]>();

export function topLevelElements(type: string): ElementInfo[] {
  let list = topLevel.get(type);
  if (!list) {
    list = (definition(type)?.snapshot?.element ?? [])
      .filter((e) => e.path.split('.').length === 2)
      .map((e) => {
        const raw = e.path.split('.')[1];
        return { name: raw.replace('[x]', ''), repeats: e.max === '*', choice: raw.endsWith('[x]') };
      });
    topLevel.set(type, list);
  }
  return list;
}

/** The element a JSON key belongs to: `deceasedBoolean` → deceased (a choice), `_birthDate` → birthDate. */
export function elementOfKey(type: string, key: string): ElementInfo | undefined {
  const name = key.startsWith('_') ? key.slice(1) : key;
  const elements = topLevelElements(type);
  return elements.find((e) => e.name === name) ?? elements.find((e) => e.choice && name.startsWith(e.name) && /^[A-Z]/.test(name.slice(e.name.length)));
}

const referencePaths = new Map<string, Set<string>>();

/** Paths (`Observation.subject`, `Observation.performer`, `Observation.value[x]`…) typed Reference. */
export function referenceElementPaths(type: string): Set<string> {
  let set = referencePaths.get(type);
  if (!set) {
    set = new Set((definition(type)?.snapshot?.element ?? []).filter((e) => e.type?.some((t) => t.code === 'Reference')).map((e) => e.path));
    referencePaths.set(type, set);
  }
  return set;
}

/** Reads the element facts of `types` now rather than on the first resource of each (see warmIndexing). */
export function warmStructure(types: readonly string[]): void {
  for (const type of types) {
    topLevelElements(type);
    referenceElementPaths(type);
  }
}
