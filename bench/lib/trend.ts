/**
 * How `npm run soak` tells a flat series from a rising one. A point is (minutes since the load began, value).
 *
 * Memory is judged on its lows, not on every sample. A busy server's used V8 heap is a saw-tooth: garbage
 * piles up for a minute or two and one major (mark-compact) GC clears it (on 2026-12-05: 110–160 MB after
 * each GC, 320–440 MB before it, every ~110 s). A straight line through samples of that saw measures where the
 * run happens to cut the last teeth (+24 MB/min over a 10-minute run that leaked nothing it could show), while
 * a leak is what survives collection: it raises the lows. So the heap and RSS series are the server's own
 * figures read just after each major GC (`tributary_heap_used_after_major_gc_bytes`, `…rss_after_major_gc…`,
 * one point per GC, see `afterGcLows`). With fewer than `MIN_POINTS` collections in the judged part of the run,
 * the lows are the minimum of the 10-s samples per window of `LOW_WINDOW_MINUTES` (`windowLows`), longer than
 * a GC cycle at the rates seen.
 *
 * Flat: the least-squares slope extrapolated over an hour raises the series by less than a quarter of its
 * mean (at least 1 unit); a falling series is flat. Fewer than `MIN_POINTS` points are not judged flat.
 * Series sampled from noise (`noisy`: pool connections in use, an integer between 0 and the pool size at one
 * instant; p99 over 10 s on a shared host) are rising only when the slope exceeds that allowance by more than
 * two standard errors of the fit: the quick run's pool use (mean 2, samples 0–4) otherwise "rose" 0.14 per
 * minute by chance. The RSS read just after a GC scatters too (V8's sweeper threads hand pages back after the
 * collection, malloc keeps or returns arenas): on 2026-12-05 its slope was 4.2 ± 4.4 MB/min over 5 GCs while
 * the heap's lows, read at the same moments, were −0.14 ± 0.10. The heap's lows are judged by plain slope.
 */
export interface Point {
  t: number;
  y: number;
}

export interface Trend {
  perMinute: number;
  /** Standard error of the slope (per minute). */
  standardError: number;
  mean: number;
  points: number;
  flat: boolean;
}

export const MIN_POINTS = 3;
export const LOW_WINDOW_MINUTES = 2;

/** Least-squares slope of the points (value per minute). */
export function slope(points: Point[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p.t, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mx) * (p.y - my);
    den += (p.t - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** Standard error of the least-squares slope (0 with fewer than three points). */
export function slopeStandardError(points: Point[]): number {
  const n = points.length;
  if (n < 3) return 0;
  const b = slope(points);
  const mx = points.reduce((a, p) => a + p.t, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const residuals = points.reduce((a, p) => a + (p.y - (my + b * (p.t - mx))) ** 2, 0);
  const spread = points.reduce((a, p) => a + (p.t - mx) ** 2, 0);
  return spread === 0 ? 0 : Math.sqrt(residuals / (n - 2) / spread);
}

export function trend(points: Point[], options: { noisy?: boolean } = {}): Trend {
  const perMinute = slope(points);
  const standardError = slopeStandardError(points);
  const mean = points.reduce((a, p) => a + p.y, 0) / Math.max(1, points.length);
  const rise = options.noisy ? perMinute - 2 * standardError : perMinute;
  return {
    perMinute: Number(perMinute.toFixed(3)),
    standardError: Number(standardError.toFixed(3)),
    mean: Number(mean.toFixed(1)),
    points: points.length,
    flat: points.length >= MIN_POINTS && rise * 60 < Math.max(0.25 * Math.abs(mean), 1),
  };
}

/** A sample of a figure read after the last major GC, with the count of major GCs so far. */
export interface AfterGcSample {
  t: number;
  afterGc: number | null;
  majorGcs: number | null;
}

/**
 * One point per sample that saw a new major GC (the count rose since the previous sample): the figure read
 * after the latest one, at the sample's time (within one sampling interval of the collection).
 */
export function afterGcLows(samples: AfterGcSample[]): Point[] {
  const points: Point[] = [];
  let seen: number | null = null;
  for (const s of samples) {
    if (s.majorGcs === null || s.afterGc === null) continue;
    if (seen !== null && s.majorGcs > seen) points.push({ t: s.t, y: s.afterGc });
    seen = s.majorGcs;
  }
  return points;
}

/** The lowest point of each whole window of `minutes`, counted from the first point (a partial last window is left out). */
export function windowLows(points: Point[], minutes = LOW_WINDOW_MINUTES): Point[] {
  if (!points.length) return [];
  const from = points[0].t;
  const last = points[points.length - 1].t;
  const lows: Point[] = [];
  for (let start = from; start + minutes <= last + 1e-9; start += minutes) {
    const inWindow = points.filter((p) => p.t >= start && p.t < start + minutes);
    if (inWindow.length) lows.push(inWindow.reduce((lo, p) => (p.y < lo.y ? p : lo)));
  }
  return lows;
}

/** The lows of a memory series: after-GC figures when there are enough collections, else per-window minima of the samples. */
export function memoryLows(afterGc: Point[], samples: Point[]): { points: Point[]; from: 'after major GC' | 'window minima' } {
  return afterGc.length >= MIN_POINTS ? { points: afterGc, from: 'after major GC' } : { points: windowLows(samples), from: 'window minima' };
}
