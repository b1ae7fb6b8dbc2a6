/**
 * Max-min fair shares of a whole-number budget (the "water-filling" of fair queueing): each claimant gets
 * an equal share, and what a claimant needs less than its share of is shared among the others. So a
 * claimant asking for little (an endpoint's single write) gets all of it, however much the others ask for
 * (a bulk load's hundreds of items). What does not divide evenly goes one by one to the claimants in the
 * map's order (the aggregation passes its stores oldest first). Claimants left with nothing are omitted.
 */
export function fairShares(demand: ReadonlyMap<string, number>, budget: number): Map<string, number> {
  const open = [...demand.values()].filter((want) => want > 0).sort((a, b) => a - b);
  const total = Math.max(0, Math.floor(budget));
  // The water level: claimants asking for less than it get what they ask; the rest get the level.
  let left = total;
  let level = Infinity;
  for (let i = 0; i < open.length; i++) {
    if (open[i] * (open.length - i) > left) {
      level = left / (open.length - i);
      break;
    }
    left -= open[i];
  }
  const shares = new Map<string, number>();
  let given = 0;
  for (const [key, want] of demand) {
    const share = Math.max(0, Math.min(want, Math.floor(level)));
    shares.set(key, share);
    given += share;
  }
  for (const [key, want] of demand) {
    if (given >= total) break;
    const share = shares.get(key) ?? 0;
    if (share >= want) continue;
    shares.set(key, share + 1);
    given++;
  }
  for (const [key, share] of shares) if (share <= 0) shares.delete(key);
  return shares;
}
