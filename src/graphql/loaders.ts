import DataLoader from 'dataloader';
import type { Resource } from '../fhir/types';
import type { GraphqlDataSource } from './dataSource';

/**
 * Per-request batching and caching of every lookup the resolvers make. Reads by id are grouped by
 * (endpoint, type) into one `_id=a,b,c` search, so resolving 100 references costs one query per type.
 */
export interface Loaders {
  byId: DataLoader<string, Resource | null>;
}

const key = (endpoint: string | undefined, type: string, id: string) => `${endpoint ?? ''}|${type}|${id}`;
export const referenceKey = key;

export function createLoaders(source: GraphqlDataSource): Loaders {
  const byId = new DataLoader<string, Resource | null>(
    async (keys) => {
      const groups = new Map<string, string[]>();
      for (const k of keys) {
        const [endpoint, type, id] = k.split('|');
        const g = `${endpoint}|${type}`;
        groups.set(g, [...(groups.get(g) ?? []), id]);
      }
      const found = new Map<string, Resource>();
      await Promise.all(
        [...groups].map(async ([g, ids]) => {
          const [endpoint, type] = g.split('|');
          const unique = [...new Set(ids)];
          const bundle = await source.search(type, [['_id', unique.join(',')], ['_count', String(unique.length)]], endpoint || undefined);
          for (const e of bundle.entry ?? []) if (e.resource) found.set(key(endpoint || undefined, type, e.resource.id as string), e.resource);
        }),
      );
      return keys.map((k) => found.get(k) ?? null);
    },
    { maxBatchSize: 500 },
  );
  return { byId };
}
