import DataLoader from 'dataloader';
import { compileExpression } from '../fhir/pathExpression';
import { searchParameter } from '../fhir/searchParameters';
import type { Resource } from '../fhir/types';
import { parseReference } from '../search/indexValues';
import type { GraphqlDataSource } from './dataSource';
import { hasNext, listCountParam, listOf, type ListPage, matches, slicePage } from './listSearch';

/**
 * Per-request batching and caching of every lookup the resolvers make, so a query's SQL statement count
 * does not grow with the number of resources it walks through:
 * - `byId`: reads by id are grouped by (endpoint, type) into one read of several ids; what it found (or
 *   did not) is also kept in `settled`, so a resolver can answer a reference loaded before without
 *   a promise (referencePrefetch.ts loads a list's references ahead for that);
 * - `reverse`: reverse references (`ObservationList(_reference: subject)` inside N Patients) are grouped
 *   into one `subject=Patient/a,Patient/b,…` search, split back per Patient by the parameter's own
 *   expression (the one search indexing uses). When the combined result is more than one page, each
 *   Patient gets its own search instead, so every List stays complete.
 */
export interface ReverseLookup extends ListPage {
  endpoint?: string;
  /** The type whose resources refer to `target`, and the reference search parameter (its FHIR code). */
  source: string;
  param: string;
  /** `Type/id` of the resource that has focus. */
  target: string;
  /** Further criteria in URL form, and `_sort`. */
  query?: string;
  sort?: string;
}

export interface Loaders {
  byId: DataLoader<string, Resource | null>;
  /** `byId` keys whose search has answered: the resource, or null when there is none. */
  settled: Map<string, Resource | null>;
  reverse: DataLoader<ReverseLookup, Resource[], string>;
}

const key = (endpoint: string | undefined, type: string, id: string) => `${endpoint ?? ''}|${type}|${id}`;
export const referenceKey = key;

/** Lookups that may share one search: everything but the target and the page. */
const groupOf = (l: ReverseLookup) => JSON.stringify([l.endpoint ?? '', l.source, l.param, l.query ?? '', l.sort ?? '']);
const reverseKey = (l: ReverseLookup) => JSON.stringify([groupOf(l), l.target, l.count ?? null, l.offset ?? null]);

function criteria(l: ReverseLookup, targets: string[]): [string, string][] {
  const params: [string, string][] = [[l.param, targets.join(',')]];
  if (l.query) params.push(...new URLSearchParams(l.query).entries());
  if (l.sort) params.push(['_sort', l.sort]);
  return params;
}

/** The `Type/id` targets a resource refers to through one search parameter. */
function targetsOf(resource: Resource, param: string): Set<string> {
  const def = searchParameter(resource.resourceType, param);
  const out = new Set<string>();
  if (!def?.expression) return out;
  for (const value of compileExpression(def.expression)(resource)) {
    const reference = typeof value === 'string' ? value : (value as { reference?: unknown } | null)?.reference;
    if (typeof reference !== 'string') continue;
    const { targetType, targetId } = parseReference(reference);
    if (targetType && targetId) out.add(`${targetType}/${targetId}`);
  }
  return out;
}

export function createLoaders(source: GraphqlDataSource): Loaders {
  const settled = new Map<string, Resource | null>();
  const byId = new DataLoader<string, Resource | null>(
    async (keys) => {
      const groups = new Map<string, string[]>();
      for (const k of keys) {
        const [endpoint, type, id] = k.split('|');
        const g = `${endpoint}|${type}`;
        groups.set(g, [...(groups.get(g) ?? []), id]);
      }
      const found = new Map<string, Resource>();
      // A group that fails (a type the caller may not read) fails its own keys only.
      const failed = new Map<string, Error>();
      await Promise.all(
        [...groups].map(async ([g, ids]) => {
          const [endpoint, type] = g.split('|');
          try {
            for (const r of await source.readMany(type, [...new Set(ids)], endpoint || undefined)) found.set(key(endpoint || undefined, type, r.id as string), r);
          } catch (err) {
            failed.set(g, err as Error);
          }
        }),
      );
      return keys.map((k) => {
        const error = failed.get(k.slice(0, k.lastIndexOf('|')));
        if (error) return error;
        const resource = found.get(k) ?? null;
        settled.set(k, resource);
        return resource;
      });
    },
    { maxBatchSize: 500 },
  );

  const one = async (l: ReverseLookup): Promise<Resource[]> => {
    const bundle = await source.search(l.source, [...criteria(l, [l.target]), ['_count', listCountParam(l.source, l)]], l.endpoint);
    return listOf(l.source, bundle, l);
  };

  const reverse = new DataLoader<ReverseLookup, Resource[], string>(
    async (lookups) => {
      const groups = new Map<string, ReverseLookup[]>();
      for (const l of lookups) groups.set(groupOf(l), [...(groups.get(groupOf(l)) ?? []), l]);
      const results = new Map<ReverseLookup, Resource[] | Error>();
      await Promise.all(
        [...groups.values()].map(async (group) => {
          const settle = async (l: ReverseLookup) => results.set(l, await one(l).catch((err: Error) => err));
          if (group.length === 1) return settle(group[0]);
          const targets = [...new Set(group.map((l) => l.target))];
          const first = group[0];
          const bundle = await source.search(first.source, [...criteria(first, targets), ['_count', listCountParam(first.source, {})]], first.endpoint);
          if (hasNext(bundle)) return void (await Promise.all(group.map(settle)));
          // One page holds every match: split it per target, keeping search order, then cut each page.
          const byTarget = new Map<string, Resource[]>(targets.map((t) => [t, []]));
          for (const resource of matches(bundle)) for (const t of targetsOf(resource, first.param)) byTarget.get(t)?.push(resource);
          for (const l of group) results.set(l, slicePage(byTarget.get(l.target) ?? [], l));
        }),
      );
      return lookups.map((l) => results.get(l) as Resource[] | Error);
    },
    { cacheKeyFn: reverseKey, maxBatchSize: 200 },
  );

  return { byId, settled, reverse };
}
