/** Small numeric helpers shared by the scenarios; exact percentiles over every recorded sample. */

/** The p-th percentile (nearest rank) of ascending-sorted samples; null without samples. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (!sorted.length) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function summarize(samples: readonly number[]): { count: number; p50: number | null; p95: number | null; p99: number | null; max: number | null } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { count: sorted.length, p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), max: sorted.length ? sorted[sorted.length - 1] : null };
}

/** Rounds to `digits` decimals; null for anything that is not a finite number (so tables show a blank). */
export function round(n: number | null | undefined, digits = 0): number | null {
  if (n === null || n === undefined || !Number.isFinite(n)) return null;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** value / floor to two decimals; null when either is missing or the floor is zero. */
export function ratio(value: number | null | undefined, floor: number | null | undefined): number | null {
  if (value === null || value === undefined || floor === null || floor === undefined || !floor) return null;
  return round(value / floor, 2);
}

/** A duration in ms for labels: 1 decimal under 10 ms, whole ms above. */
export function ms(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return n < 10 ? n.toFixed(1) : String(Math.round(n));
}
