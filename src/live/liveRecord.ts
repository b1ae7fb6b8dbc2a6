import { RECORD_CHANGE_CHANNEL, type RecordChangeNotice } from '../aggregator/recordChanges';
import { badRequest, OperationOutcomeError } from '../fhir/outcome';
import type { Resource } from '../fhir/types';
import type { Caller } from '../access/caller';
import type { AggregatedAccess } from '../service/authorization';
import type { Database } from '../store/db';
import { ChangeQueue } from './changeQueue';

/**
 * The live aggregated record (issue 18): GraphQL subscriptions' source of events. One LISTEN per server
 * process on the change feed (aggregator/recordChanges.ts) fans each committed change out to the
 * subscriptions it may concern; each subscription then asks the one authorisation point, as its caller and
 * at that moment, whether the caller may see it (a re-read through the caller's FhirService), so a revoked
 * grant, client or token stops its events at once. A subscription can start from a cursor (`since`): the
 * change log is replayed after it, then live events follow, in log order and without repeats.
 */
export interface RecordChange {
  /** Position in the change log: give it as `since` to resume after it. */
  cursor: string;
  type: string;
  id: string;
  versionId: string;
  change: 'create' | 'update' | 'delete';
  /** The aggregated Patient whose record it belongs to, if any. */
  patient: string | null;
  /** The resource as the subscriber sees it now; null for a delete. */
  resource: Resource | null;
}

/** Which changes a subscription wants: one patient's record, or one type (optionally narrowed by search criteria). */
export type ChangeFilter = { patient: string } | { type: string; criteria: [string, string][] };

/** A subscriber's access, asked again for each change (Authorization.aggregatedNow). */
export type AccessNow = (caller: Caller) => Promise<AggregatedAccess>;

/** Changes a slow subscriber may have waiting before it is ended (it can resume from its last cursor). */
const QUEUE_LIMIT = 1_000;
/** The most changes one resumption replays; older ones need a fresh read of the record. */
const REPLAY_LIMIT = 10_000;
/** How long the change log keeps entries (pruned hourly by every server process). */
const RETENTION_DAYS = 7;
/**
 * Changes judged together for one subscription: one access check, and for a type subscription one search
 * (`_id` with every changed id, and the criteria) instead of one per change — a subscriber to a busy type
 * would otherwise fall behind a bulk load by a search per row. Also the search's OR-list limit.
 */
const DELIVERY_BATCH = 100;

interface Subscription {
  filter: ChangeFilter;
  caller: Caller;
  queue: ChangeQueue<RecordChange>;
  /** Serialises this subscription's deliveries (and its replay before them), so events stay in log order. */
  chain: Promise<void>;
  lastSeq: bigint;
  /** Resources this subscription delivered: the only ones whose deletes it is told of (see `deliver`). */
  seen: Set<string>;
  /** Announced changes not yet judged, in log order; `draining` while a task on the chain works them off. */
  pending: RecordChangeNotice[];
  draining: boolean;
}

interface LogRow {
  seq: string;
  type: string;
  res_id: string;
  version_id: number;
  kind: RecordChange['change'];
  patient_id: string | null;
}

export class LiveRecord {
  private readonly byPatient = new Map<string, Set<Subscription>>();
  private readonly byType = new Map<string, Set<Subscription>>();
  private unlisten?: () => Promise<void>;
  private pruner?: NodeJS.Timeout;

  constructor(
    private readonly db: Database,
    private readonly accessNow: AccessNow,
  ) {}

  async start(): Promise<void> {
    this.unlisten = await this.db.listen(RECORD_CHANGE_CHANNEL, (payload) => this.announce(JSON.parse(payload) as RecordChangeNotice));
    this.pruner = setInterval(() => void this.prune().catch(() => undefined), 3_600_000);
    this.pruner.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.pruner);
    await this.unlisten?.();
    for (const subs of [...this.byPatient.values(), ...this.byType.values()])
      for (const sub of subs) sub.queue.fail(new Error('The server is shutting down: reconnect and resume from your last cursor'));
  }

  /** How many subscriptions this process holds (metrics, tests). */
  get size(): number {
    let n = 0;
    for (const subs of [...this.byPatient.values(), ...this.byType.values()]) n += subs.size;
    return n;
  }

  /**
   * A subscription's events. Checked first as a read would be: the patient must be visible to the caller,
   * the type searchable by it with these criteria (a bad parameter is a 400 now, not silence later).
   */
  async subscribe(caller: Caller, filter: ChangeFilter, since?: string | null): Promise<AsyncIterableIterator<RecordChange>> {
    if (since != null && !/^\d{1,18}$/.test(since)) throw badRequest(`'since' must be a cursor from an earlier event (digits), got '${since}'`, 'since');
    const { service, baseUrl } = await this.accessNow(caller);
    if ('patient' in filter) await service.read('Patient', filter.patient);
    else await service.search(filter.type, [...filter.criteria, ['_count', '0']], { baseUrl, handling: 'strict' });

    const key = 'patient' in filter ? filter.patient : filter.type;
    const index = 'patient' in filter ? this.byPatient : this.byType;
    const sub: Subscription = {
      filter,
      caller,
      lastSeq: since != null ? BigInt(since) : -1n,
      seen: new Set(),
      pending: [],
      draining: false,
      chain: Promise.resolve(),
      queue: new ChangeQueue<RecordChange>(QUEUE_LIMIT, () => {
        const set = index.get(key);
        set?.delete(sub);
        if (set?.size === 0) index.delete(key);
      }),
    };
    let set = index.get(key);
    if (!set) index.set(key, (set = new Set()));
    set.add(sub);
    // Registered before the replay is read, so nothing committed meanwhile is missed; the chain keeps order.
    if (since != null) this.enqueue(sub, () => this.replay(sub));
    return sub.queue;
  }

  private announce(notice: RecordChangeNotice): void {
    const targets = [...(notice.p ? (this.byPatient.get(notice.p) ?? []) : []), ...(this.byType.get(notice.t) ?? [])];
    for (const sub of targets) {
      sub.pending.push(notice);
      if (sub.draining) continue;
      sub.draining = true;
      this.enqueue(sub, () => this.drain(sub));
    }
  }

  /** Judges what was announced, a batch at a time, until nothing is left (more may arrive meanwhile). */
  private async drain(sub: Subscription): Promise<void> {
    try {
      while (sub.pending.length && !sub.queue.closed) await this.deliver(sub, sub.pending.splice(0, DELIVERY_BATCH));
    } finally {
      if (sub.queue.closed) sub.pending.length = 0;
      sub.draining = false;
    }
  }

  private enqueue(sub: Subscription, task: () => Promise<void>): void {
    sub.chain = sub.chain.then(async () => {
      if (sub.queue.closed) return;
      try {
        await task();
      } catch (err) {
        sub.queue.fail(err as Error);
      }
    });
  }

  private async replay(sub: Subscription): Promise<void> {
    const where = 'patient' in sub.filter ? 'patient_id = $2' : 'type = $2';
    const rows = await this.db.sql.query<LogRow[]>(
      // Ordered by the bigint column, not by the text alias (which would put '35' before '6').
      `SELECT c.seq::text AS seq, c.type, c.res_id, c.version_id, c.kind, c.patient_id FROM agg_change c WHERE c.seq > $1::bigint AND c.${where} ORDER BY c.seq LIMIT ${REPLAY_LIMIT}`,
      String(sub.lastSeq),
      'patient' in sub.filter ? sub.filter.patient : sub.filter.type,
    );
    const notices = rows.map((r): RecordChangeNotice => ({ s: r.seq, t: r.type, i: r.res_id, v: r.version_id, k: r.kind, p: r.patient_id }));
    for (let i = 0; i < notices.length; i += DELIVERY_BATCH) await this.deliver(sub, notices.slice(i, i + DELIVERY_BATCH));
  }

  /**
   * Changes (in log order) to one subscriber, as far as its caller may see them now: created and updated
   * resources are re-read (or searched with the criteria) as the caller; a delete cannot be judged that way
   * (the deleted resource has no access row left), so it is told only to a subscription that was shown the
   * resource before. The caller's access is asked once per batch: a revoked grant stops the next batch.
   */
  private async deliver(sub: Subscription, notices: RecordChangeNotice[]): Promise<void> {
    const fresh: RecordChangeNotice[] = [];
    for (const notice of notices) {
      const seq = BigInt(notice.s);
      if (seq <= sub.lastSeq) continue;
      sub.lastSeq = seq;
      fresh.push(notice);
    }
    if (!fresh.length) return;
    // Throws when the caller's token expired or what it acts for was revoked: the subscription ends.
    const access = await this.accessNow(sub.caller);
    const visible = await this.visible(sub, access, fresh);
    for (const notice of fresh) {
      const key = `${notice.t}/${notice.i}`;
      const resource = notice.k === 'delete' ? null : (visible.get(key) ?? null);
      if (!resource) {
        // Deleted, no longer visible or no longer matching: a subscriber shown it before learns it left its view.
        if (!sub.seen.delete(key)) continue;
        sub.queue.push({ cursor: notice.s, type: notice.t, id: notice.i, versionId: String(notice.v), change: 'delete', patient: notice.p, resource: null });
        continue;
      }
      sub.seen.add(key);
      sub.queue.push({ cursor: notice.s, type: notice.t, id: notice.i, versionId: String(notice.v), change: notice.k, patient: notice.p, resource });
    }
  }

  /** The current view, as the subscriber's caller, of the resources `notices` created or updated, by `Type/id`. */
  private async visible(sub: Subscription, { service, baseUrl }: AggregatedAccess, notices: RecordChangeNotice[]): Promise<Map<string, Resource>> {
    const out = new Map<string, Resource>();
    const changed = [...new Map(notices.filter((n) => n.k !== 'delete').map((n) => [`${n.t}/${n.i}`, n])).values()];
    if (!changed.length) return out;
    // 403: what the caller's scopes do not cover is not sent (nor does it end the subscription); 404/410: gone.
    const hidden = (err: unknown) => err instanceof OperationOutcomeError && (err.status === 403 || err.status === 404 || err.status === 410);
    if ('criteria' in sub.filter) {
      // A type subscription was allowed as a search (scope s), so its events are re-checked as one search.
      const { type, criteria } = sub.filter;
      const ids = changed.map((n) => n.i);
      const params: [string, string][] = [['_id', ids.join(',')], ...criteria.filter(([name]) => name !== '_count'), ['_count', String(ids.length)]];
      try {
        const bundle = await service.search(type, params, { baseUrl, handling: 'strict' });
        for (const e of bundle.entry ?? []) if (e.resource?.id && (e.search?.mode ?? 'match') === 'match') out.set(`${type}/${e.resource.id}`, e.resource);
      } catch (err) {
        if (!hidden(err)) throw err;
      }
      return out;
    }
    for (const n of changed) {
      try {
        const { resource } = await service.read(n.t, n.i);
        if (resource) out.set(`${n.t}/${n.i}`, resource);
      } catch (err) {
        if (!hidden(err)) throw err;
      }
    }
    return out;
  }

  private async prune(): Promise<void> {
    await this.db.sql.execute(`DELETE FROM agg_change WHERE at < now() - make_interval(days => ${RETENTION_DAYS})`);
  }
}
