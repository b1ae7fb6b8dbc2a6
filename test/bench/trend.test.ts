import { afterGcLows, memoryLows, trend, windowLows, type Point } from '../../bench/lib/trend';

/**
 * The soak's rule for "flat" (bench/lib/trend.ts), on series shaped like the ones it measured: a heap
 * saw-tooth whose lows stay put is flat even where a straight line through every sample rises; lows that
 * climb are a leak; sampled noise is not a rise.
 */
const minutes = (n: number, every = 1 / 6) => Array.from({ length: Math.round(n / every) }, (_, i) => i * every);

/** Used heap every 10 s: 110 MB after each GC, +2.2 MB per sample until the next, every 110 s; `leak` MB per minute under it all. */
function sawTooth(leak: number) {
  return minutes(10).map((t) => {
    const cycle = Math.floor((t * 60) / 110);
    const sinceGc = ((t * 60) % 110) / 10;
    return { t, heap: 110 + leak * t + sinceGc * 22, afterGc: 110 + leak * ((cycle * 110) / 60), majorGcs: cycle };
  });
}

test('a saw-tooth whose lows stay put is flat; a line through every sample can say it rises', () => {
  const samples = sawTooth(0).filter((s) => s.t >= 10 / 3 && s.t < 9.2);
  const lows = afterGcLows(samples.map((s) => ({ t: s.t, afterGc: s.afterGc, majorGcs: s.majorGcs })));
  expect(lows.length).toBeGreaterThanOrEqual(3);
  expect(trend(lows)).toMatchObject({ perMinute: 0, flat: true });
  // The window ends near a peak: every sample's slope follows where the window cuts the teeth.
  expect(trend(samples.map((s) => ({ t: s.t, y: s.heap }))).flat).toBe(false);
});

test('lows that climb 5 MB a minute are not flat', () => {
  const samples = sawTooth(5).filter((s) => s.t >= 10 / 3);
  const lows = afterGcLows(samples.map((s) => ({ t: s.t, afterGc: s.afterGc, majorGcs: s.majorGcs })));
  const judged = trend(lows);
  expect(judged.perMinute).toBeGreaterThan(4);
  expect(judged.flat).toBe(false);
});

test('with too few collections the lows are window minima; fewer than three points are never flat', () => {
  const samples: Point[] = sawTooth(0).map((s) => ({ t: s.t, y: s.heap }));
  expect(windowLows(samples, 2).map((p) => p.y)).toEqual([110, 110, 110, 110]);
  expect(memoryLows([{ t: 1, y: 100 }], samples).from).toBe('window minima');
  expect(
    trend([
      { t: 1, y: 100 },
      { t: 2, y: 100 },
    ]).flat,
  ).toBe(false);
});

test('noise is not a rise, for noisy series only', () => {
  // Pool connections in use, 0–4 at each instant, with a chance upward drift of the kind the quick soak saw.
  const pool = minutes(6.7).map((t, i) => ({ t, y: [1, 3, 0, 2, 4, 1, 2, 0, 3, 2][i % 10] + (i % 7 === 0 ? 1 : 0) + (t > 5 ? 1 : 0) }));
  expect(trend(pool).flat).toBe(false);
  expect(trend(pool, { noisy: true }).flat).toBe(true);
  // A steady climb stays a climb, noisy or not.
  const climbing = minutes(6.7).map((t, i) => ({ t, y: 2 + t + (i % 2) }));
  expect(trend(climbing, { noisy: true }).flat).toBe(false);
});
