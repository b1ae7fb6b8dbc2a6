import type { ResourceRepository, Tx } from '../store/resourceRepository';
import { AggregatedIds } from './aggregatedIds';
import { Copies } from './copies';
import { enqueueDependents, setWaiting } from './dependents';
import { Groups } from './groups';
import { Deferred, lockMergedType } from './locks';
import { AGGREGATED_STORE } from './outbox';
import { type Exclusion, exclusionTarget, MERGED_TYPES, parseRelative, SUPPORTED_TYPES } from './rules';
import { isExclusion, keyOf, loadUpstream, prepare, type Upstream, type UpstreamRef } from './upstream';
import { aggregatedType } from './aggregatedType';

/**
 * Brings the aggregated view up to date with upstream resources (DESIGN §3), inside the caller's
 * transaction, always from their current state (so processing is idempotent): unmerged types are copied
 * set-wise (copies.ts), merged types join their group one at a time (groups.ts), deleted ones leave.
 *
 * The work of one transaction is an AggregationPass: its look-up caches and the resources it is in the
 * middle of belong to it alone, so several worker loops can each run their own pass at once.
 */
export class Aggregator {
  readonly supported: ReadonlySet<string>;

  constructor(
    readonly repo: ResourceRepository,
    supportedTypes: readonly string[] = SUPPORTED_TYPES,
  ) {
    this.supported = new Set(supportedTypes);
  }

  /** A fresh pass: one per transaction (a rolled-back savepoint needs `reset`). */
  begin(): AggregationPass {
    return new AggregationPass(this.repo, this.supported);
  }

  /**
   * The current upstream versions of a batch's copied types, with their aggregated state (see upstream.ts).
   * Merged types are left out: each is read when it is merged, under its type's lock.
   */
  loadCopied(tx: Tx, refs: UpstreamRef[]): Promise<Map<string, Upstream>> {
    return loadUpstream(
      tx,
      refs.filter((r) => !MERGED_TYPES[r.type]),
      true,
    );
  }

  /** Whether `copyMany` takes this item: an existing upstream resource of an unmerged type. */
  copiesSetWise(ref: UpstreamRef, upstream: Upstream | undefined): upstream is Upstream {
    return upstream !== undefined && !MERGED_TYPES[ref.type];
  }

  /** Brings the aggregated view up to date with one upstream resource; throws Deferred when it must wait. */
  process(tx: Tx, store: string, type: string, id: string, pass: AggregationPass = this.begin()): Promise<void> {
    return pass.process(tx, { store, type, id }, 0);
  }
}

export class AggregationPass {
  private readonly ids: AggregatedIds;
  private readonly copies: Copies;
  private readonly groups: Groups;
  /** Upstream resources being aggregated further up the stack (a reference cycle must not recurse). */
  private readonly inProgress = new Set<string>();
  /**
   * Upstream resources this pass has aggregated one at a time: what was read of their aggregated state before
   * (a batch's `Upstream.previous`) is out of date for them.
   */
  private readonly touched = new Set<string>();

  constructor(
    private readonly repo: ResourceRepository,
    private readonly supported: ReadonlySet<string>,
  ) {
    this.ids = new AggregatedIds((tx, ref, depth) => this.process(tx, ref, depth));
    this.copies = new Copies(repo, supported, this.ids, this.touched);
    this.groups = new Groups(repo, this.ids);
  }

  /** Forgets what was looked up (after a savepoint was rolled back). */
  reset(): void {
    this.ids.reset();
  }

  /** Aggregates many existing upstream resources of unmerged types at once; returns those deferred. */
  copyMany(tx: Tx, items: Upstream[]): Promise<UpstreamRef[]> {
    return this.copies.copyMany(tx, items, 0);
  }

  async process(tx: Tx, ref: UpstreamRef, depth: number): Promise<void> {
    const key = keyOf(ref);
    if (this.inProgress.has(key)) return;
    this.inProgress.add(key);
    try {
      // Before anything is written: a merged type's groups are changed by one worker at a time.
      if (MERGED_TYPES[ref.type]) await lockMergedType(tx, ref.type);
      const upstream = (await loadUpstream(tx, [ref], !MERGED_TYPES[ref.type])).get(key);
      if (!upstream) await this.remove(tx, ref);
      else if (!MERGED_TYPES[ref.type]) {
        const deferred = await this.copies.copyMany(tx, [upstream], depth);
        if (deferred.length) throw new Deferred(`${ref.type}/${ref.id} waits for a target another worker holds`);
      } else await this.merge(tx, upstream, depth);
    } finally {
      this.inProgress.delete(key);
      this.touched.add(key);
    }
  }

  private async merge(tx: Tx, upstream: Upstream, depth: number): Promise<void> {
    const prepared = prepare(upstream, this.supported);
    if (isExclusion(prepared)) return this.excludeMember(tx, upstream, prepared, []);
    const resolved = await this.ids.resolve(tx, upstream.store, prepared.targets, depth);
    const waiting = [...resolved.values()].find((r) => r.deferred);
    if (waiting) throw new Deferred(waiting.deferred as string);
    for (const site of prepared.sites) {
      const target = parseRelative(site.holder.reference as string) as { type: string; id: string };
      const answer = resolved.get(`${target.type}/${target.id}`);
      if (!answer?.id) {
        const ref = `${target.type}/${target.id}`;
        const reason = `${site.expression} refers to ${ref}, which is not in the aggregated record (${answer?.why ?? 'unknown'})`;
        return this.excludeMember(tx, upstream, { rule: 'target-not-aggregated', reason, expression: site.expression, waitingFor: ref }, prepared.targets);
      }
      site.holder.reference = `${aggregatedType(target.type)}/${answer.id}`;
    }
    await this.groups.join(tx, upstream, prepared.resource, prepared.targets);
  }

  /** Records why a merged-type member is not aggregated, taking it out of its group if it was in one. */
  private async excludeMember(tx: Tx, ref: UpstreamRef, exclusion: Exclusion, dependsOn: string[]): Promise<void> {
    const [before] = await tx.query<{ status: string; agg_id: string | null }[]>(
      `SELECT status, agg_id FROM agg_member WHERE store = $1 AND type = $2 AND res_id = $3 FOR UPDATE`,
      ref.store,
      ref.type,
      ref.id,
    );
    await tx.execute(
      `INSERT INTO agg_member (store, type, res_id, status, reason, expression, depends_on, rule, target_type) VALUES ($1, $2, $3, 'excluded', $4, $5, $6::text[], $7, $8)
       ON CONFLICT (store, type, res_id) DO UPDATE SET status = 'excluded', reason = $4, expression = $5, agg_id = NULL, content = NULL,
         depends_on = $6::text[], rule = $7, target_type = $8, home_id = NULL, updated_at = clock_timestamp()`,
      ref.store,
      ref.type,
      ref.id,
      exclusion.reason,
      exclusion.expression ?? null,
      dependsOn,
      exclusion.rule ?? 'other',
      exclusionTarget(exclusion) ?? null,
    );
    await setWaiting(tx, [{ ref, target: exclusion.waitingFor }]);
    this.ids.forget(ref);
    if (before?.status === 'included' && before.agg_id) await this.groups.leave(tx, ref, before.agg_id);
  }

  /**
   * An upstream resource that was deleted (or never existed): its contribution leaves the aggregated view.
   * The member row stays, excluded, with its dependencies: a copy keeps its aggregated id so that the
   * corrective workflow (delete, then PUT to the same id) brings it back under the same id.
   */
  private async remove(tx: Tx, ref: UpstreamRef): Promise<void> {
    const [before] = await tx.query<{ status: string; agg_id: string | null }[]>(
      `SELECT status, agg_id FROM agg_member WHERE store = $1 AND type = $2 AND res_id = $3 FOR UPDATE`,
      ref.store,
      ref.type,
      ref.id,
    );
    if (!before) return;
    if (MERGED_TYPES[ref.type]) {
      await this.excludeMember(tx, ref, { rule: 'deleted', reason: 'deleted on its endpoint' }, []);
      return;
    }
    await tx.execute(
      `UPDATE agg_member SET status = 'excluded', reason = 'deleted on its endpoint', rule = 'deleted', target_type = NULL, expression = NULL, content = NULL, updated_at = clock_timestamp()
        WHERE store = $1 AND type = $2 AND res_id = $3`,
      ref.store,
      ref.type,
      ref.id,
    );
    await setWaiting(tx, [{ ref }]);
    this.ids.forget(ref);
    if (before.status === 'included' && before.agg_id) {
      await this.repo.delete(AGGREGATED_STORE, aggregatedType(ref.type), before.agg_id, tx);
      await enqueueDependents(tx, { changed: [ref] });
    }
  }
}
