import { createHash } from 'node:crypto';

/**
 * The key of an index row: one bigint standing for (store, resource type, parameter), the first 64 bits of
 * md5('store|type|param') read as a signed integer — the same as SQL's `search_index_key()` (migration
 * 20261202000000_lean_index). Deterministic, so no lookup table and no write to mint one; 64 bits make a
 * collision between two parameters of the same deployment as unlikely as one between two UUIDs.
 */
const cache = new Map<string, string>();
const MAX_CACHED = 100_000;

export function indexKey(store: string, type: string, param: string): string {
  const text = `${store}|${type}|${param}`;
  let key = cache.get(text);
  if (key === undefined) {
    const hex = createHash('md5').update(text, 'utf8').digest('hex').slice(0, 16);
    key = BigInt.asIntN(64, BigInt(`0x${hex}`)).toString();
    if (cache.size >= MAX_CACHED) cache.clear();
    cache.set(text, key);
  }
  return key;
}
