import { fairShares } from '../../src/aggregator/fairShares';

/** Max-min fair shares of a batch among the endpoints with queued work (src/aggregator/fairShares.ts). */
const shares = (demand: Record<string, number>, budget: number) => Object.fromEntries(fairShares(new Map(Object.entries(demand)), budget));

test('a claimant asking for little gets all of it beside one asking for much', () => {
  expect(shares({ bulk: 1000, single: 1 }, 100)).toEqual({ bulk: 99, single: 1 });
});

test('what one claimant does not need is shared among the others', () => {
  expect(shares({ a: 50, b: 3, c: 60 }, 100)).toEqual({ a: 49, b: 3, c: 48 });
  expect(shares({ a: 5, b: 3 }, 100)).toEqual({ a: 5, b: 3 });
});

test('what does not divide evenly goes to the first claimants; more claimants than budget leaves the last ones out', () => {
  expect(shares({ a: 100, b: 100, c: 100 }, 10)).toEqual({ a: 4, b: 3, c: 3 });
  expect(shares({ a: 100, b: 100, c: 100 }, 2)).toEqual({ a: 1, b: 1 });
});
