import { createHash } from 'node:crypto';

/**
 * The key of an index row: one bigint standing for (store, resource type, parameter), the first 64 bits of
 * md5('store|type|param') read as a signed integer — the same as SQL's `search_index_key()` (migration
 * 20261202000000_lean_index). Deterministic, so no lookup table and no write to mint one; 64 bits make a
 * collision between two parameters of the same deployment as unlikely as one between two UUIDs.
 */
const cache = new Map<string, Map<string, Map<string, string>>>();
let cached = 0;
const MAX_CACHED = 100_000;

/** Looked up store, then type, then parameter: no key text is built for the rows of a parameter already met. */
export function indexKey(store: string, type: string, param: string): string {
  let byType = cache.get(store);
  if (byType === undefined) cache.set(store, (byType = new Map()));
  let byParam = byType.get(type);
  if (byParam === undefined) byType.set(type, (byParam = new Map()));
  let key = byParam.get(param);
  if (key === undefined) {
    const hex = createHash('md5').update(`${store}|${type}|${param}`, 'utf8').digest('hex').slice(0, 16);
    key = BigInt.asIntN(64, BigInt(`0x${hex}`)).toString();
    if (cached >= MAX_CACHED) {
      cache.clear();
      cached = 0;
      cache.set(store, (byType = new Map()));
      byType.set(type, (byParam = new Map()));
    }
    byParam.set(param, key);
    cached++;
  }
  return key;
}
