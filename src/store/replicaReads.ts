import type { Database } from './db';
import type { SqlClient } from './sql';

/**
 * Where a client's read may run when a streaming replica is configured (DATABASE_REPLICA_URL), and what the
 * replica has replayed. Read-your-writes by WAL position: after a client's write commits, the primary's
 * current WAL position (`pg_current_wal_lsn()`, at or past the write's commit record) is remembered for that
 * client; its next reads wait, at most REPLICA_MAX_WAIT_MS, for the replica's `pg_last_wal_replay_lsn()` to
 * pass it, and go to the primary when it does not in time. Clients with nothing pending read the replica at
 * once, as do all clients while it is healthy. A replica that does not answer sends reads to the primary.
 *
 * The remembered positions are shared by every server on the database: each write's position is sent with
 * `pg_notify` (the statement that reads it), and every server listens, so a client whose next request lands
 * on another server behind a round-robin balancer waits there too (as soon as the notification arrives, a
 * few milliseconds; a balancer that keeps a client on one server closes even that window).
 *
 * Consent changes are the exception to "a client waits for its own writes": a revoked grant must count on
 * everyone's next request. Each change's position is announced the same way to every server, and a read whose
 * access predicate reads consent rows waits for the replica to pass the latest one (as rare as consent
 * changes are, the replica has nearly always passed it). A server that starts takes the primary's position at
 * start as that floor, since it cannot know what changed before.
 *
 * The position is the write's, not its aggregation's: the aggregate of a write is made by a worker a moment
 * later, on the primary and the replica alike, so a read after a write sees at least what the primary held
 * when the write was acknowledged — never less than the same read on the primary would have — and the
 * aggregate of the write arrives afterwards as it does without a replica.
 */
export type ReadTarget = 'replica' | 'primary';

export interface ReplicaLag {
  /** Whether the replica answered (within the probe's time). */
  ok: boolean;
  /** WAL bytes the primary has written that the replica has not replayed yet. */
  bytes?: number;
  /** The primary's own measure of the replica's replay lag (`pg_stat_replication.replay_lag`), ms, when it reports one. */
  replayLagMs?: number | null;
  detail?: string;
}

/** The channel the write positions travel on between servers. */
const CHANNEL = 'tributary_replica_lsn';
/** The "client" of consent changes (no client id is empty). */
const ACCESS = '';
/** How often a waiting read asks the replica again. */
const POLL_MS = 5;
/** Clients remembered at most (the oldest are dropped first; each entry is gone anyway once the replica passes it). */
const MAX_CLIENTS = 100_000;
/** After a failed probe, the replica is left alone this long: reads go to the primary meanwhile. */
const BACKOFF_MS = 2_000;

/** `16/B374D848` → a number that orders as the WAL does. */
export function parseLsn(text: string): bigint {
  const [hi, lo] = text.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

export class ReplicaReads {
  private readonly pending = new Map<string, bigint>();
  /** The position of the latest consent change known here (see above). */
  private accessFloor = 0n;
  private replayProbe?: Promise<bigint>;
  private failedAt = 0;
  private stopListening?: () => Promise<void>;

  constructor(
    private readonly primary: SqlClient,
    private readonly replica: SqlClient,
    private readonly maxWaitMs: number,
  ) {}

  /** Listens for the write positions other servers announce. */
  async start(db: Pick<Database, 'listen'>): Promise<void> {
    this.stopListening = await db.listen(CHANNEL, (payload) => {
      const [clientId, lsn] = splitPayload(payload);
      if (lsn) this.note(clientId, parseLsn(lsn));
    });
    const [row] = await this.primary.query<{ lsn: string }[]>('SELECT pg_current_wal_lsn()::text AS lsn');
    this.note(ACCESS, parseLsn(row.lsn));
  }

  async stop(): Promise<void> {
    await this.stopListening?.();
  }

  /**
   * After a write of `clientId` committed: remembers the primary's WAL position now (at or past the commit)
   * and announces it to the other servers, in one statement.
   */
  async written(clientId: string): Promise<void> {
    await this.announce(clientId);
  }

  /** After a consent change committed: every reader whose access reads consent rows waits for it on the replica. */
  async accessChanged(): Promise<void> {
    await this.announce(ACCESS);
  }

  private async announce(clientId: string): Promise<void> {
    const [row] = await this.primary.query<{ lsn: string }[]>(
      `SELECT lsn::text AS lsn, pg_notify('${CHANNEL}', $1 || ' ' || lsn::text) FROM pg_current_wal_lsn() AS lsn`,
      clientId,
    );
    if (row) this.note(clientId, parseLsn(row.lsn));
  }

  /**
   * Where `clientId`'s read runs: the replica once it has replayed the client's last write, and the latest
   * consent change when the read's access depends on consent (bounded wait); else the primary.
   */
  async target(clientId: string, options: { readsConsent?: boolean } = {}): Promise<ReadTarget> {
    if (Date.now() - this.failedAt < BACKOFF_MS) return 'primary';
    const deadline = Date.now() + this.maxWaitMs;
    for (;;) {
      let replayed: bigint;
      try {
        replayed = await this.replayed();
      } catch {
        this.failedAt = Date.now();
        return 'primary';
      }
      const own = this.pending.get(clientId);
      if (own !== undefined && replayed >= own) this.pending.delete(clientId);
      const wanted = max(own, options.readsConsent ? this.accessFloor : undefined);
      if (wanted === undefined || replayed >= wanted) return 'replica';
      const left = deadline - Date.now();
      if (left <= 0) return 'primary';
      await new Promise((r) => setTimeout(r, Math.min(POLL_MS, left)));
    }
  }

  /** How far behind the replica is, for /readyz and the bench: never throws. */
  async lag(timeoutMs = 2000): Promise<ReplicaLag> {
    try {
      const probe = Promise.all([
        this.primary.query<{ lsn: string; replay_lag_ms: number | null }[]>(
          `SELECT pg_current_wal_lsn()::text AS lsn, (SELECT max(extract(epoch FROM replay_lag)) * 1000 FROM pg_stat_replication)::float8 AS replay_lag_ms`,
        ),
        this.replayed(),
      ]);
      const [[primary], replayed] = await withTimeout(probe, timeoutMs);
      const behind = parseLsn(primary.lsn) - replayed;
      return { ok: true, bytes: Number(behind > 0n ? behind : 0n), replayLagMs: primary.replay_lag_ms === null ? null : Math.round(primary.replay_lag_ms) };
    } catch (err) {
      return { ok: false, detail: (err as Error).message };
    }
  }

  /** The replica's replay position; concurrent readers share one query. */
  private replayed(): Promise<bigint> {
    this.replayProbe ??= this.replica
      .query<{ lsn: string | null }[]>('SELECT pg_last_wal_replay_lsn()::text AS lsn')
      .then(([row]) => {
        if (!row?.lsn) throw new Error('the replica reports no replay position: it is not a streaming standby');
        return parseLsn(row.lsn);
      })
      .finally(() => (this.replayProbe = undefined));
    return this.replayProbe;
  }

  private note(clientId: string, lsn: bigint): void {
    if (clientId === ACCESS) {
      if (lsn > this.accessFloor) this.accessFloor = lsn;
      return;
    }
    const known = this.pending.get(clientId);
    if (known !== undefined && known >= lsn) return;
    this.pending.delete(clientId);
    if (this.pending.size >= MAX_CLIENTS) this.pending.delete(this.pending.keys().next().value as string);
    this.pending.set(clientId, lsn);
  }
}

function max(a: bigint | undefined, b: bigint | undefined): bigint | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}

/** `<client id> <lsn>`: client ids may hold spaces, LSNs never do. */
function splitPayload(payload: string): [string, string] {
  const at = payload.lastIndexOf(' ');
  return at < 0 ? ['', ''] : [payload.slice(0, at), payload.slice(at + 1)];
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}
