/**
 * A bounded cache of slow-changing lookups (endpoint ownership, FHIR version) that every request needs:
 * entries live `ttlMs`, so a change made elsewhere (another server process) is seen within that time.
 * Concurrent misses for one key share a single load.
 */
export class TtlCache<K, V> {
  private readonly entries = new Map<K, { value: Promise<V>; expires: number }>();

  constructor(
    private readonly load: (key: K) => Promise<V>,
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  get(key: K): Promise<V> {
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && hit.expires > now) return hit.value;
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as K);
    const value = this.load(key);
    this.entries.set(key, { value, expires: now + this.ttlMs });
    // A failed load is not remembered.
    value.catch(() => this.entries.delete(key));
    return value;
  }

  delete(key: K): void {
    this.entries.delete(key);
  }
}
