import { readR4Definition } from './definitions';
import type { Resource } from './types';

/**
 * `_summary` and `_elements` (search.html#summary, #elements): projections of a resource to the elements
 * the StructureDefinition marks `isSummary`, or to the ones the client names. The result is tagged
 * SUBSETTED so nobody mistakes it for the whole resource.
 */
const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED', display: 'subsetted' };

let summaries: Map<string, Set<string>> | undefined;

function summaryElements(type: string): Set<string> {
  if (!summaries) {
    summaries = new Map();
    const bundle = readR4Definition<{
      entry: { resource: { resourceType: string; id: string; kind?: string; snapshot?: { element: { path: string; isSummary?: boolean; min?: number }[] } } }[];
    }>('profiles-resources.json');
    for (const { resource } of bundle.entry) {
      if (resource.resourceType !== 'StructureDefinition' || resource.kind !== 'resource' || !resource.snapshot) continue;
      const top = new Set<string>();
      for (const e of resource.snapshot.element) {
        const parts = e.path.split('.');
        if (parts.length !== 2 || !(e.isSummary || (e.min ?? 0) > 0)) continue;
        top.add(parts[1].replace('[x]', ''));
      }
      summaries.set(resource.id, top);
    }
  }
  return summaries.get(type) ?? new Set(['id', 'meta']);
}

function keep(resource: Resource, wanted: (key: string) => boolean): Resource {
  const out: Resource = { resourceType: resource.resourceType };
  for (const [key, value] of Object.entries(resource)) {
    if (key === 'resourceType') continue;
    const base = key.replace(/^_/, '');
    const choiceBase = base.replace(/[A-Z].*$/, '');
    if (key === 'id' || key === 'meta' || wanted(base) || wanted(choiceBase)) out[key] = value;
  }
  const meta = { ...(out.meta ?? {}) };
  meta.tag = [...(meta.tag ?? []), SUBSETTED];
  out.meta = meta;
  return out;
}

export type SummaryMode = 'true' | 'text' | 'data' | 'count' | 'false';

export function applySummary(resource: Resource, mode: SummaryMode | undefined, elements: string[] | undefined): Resource {
  if (elements?.length) {
    const set = new Set(elements);
    return keep(resource, (k) => set.has(k));
  }
  switch (mode) {
    case 'true': {
      const set = summaryElements(resource.resourceType);
      return keep(resource, (k) => set.has(k));
    }
    case 'text':
      return keep(resource, (k) => k === 'text');
    case 'data': {
      const { text: _text, ...rest } = resource;
      return keep(rest as Resource, () => true);
    }
    default:
      return resource;
  }
}
