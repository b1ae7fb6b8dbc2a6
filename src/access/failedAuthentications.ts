import { createHash } from 'node:crypto';
import type { Sql } from '../store/sql';
import { OAuthError } from './oauthError';

/**
 * Brute-force protection for the token endpoints (issue 16 item 6): failed client authentications are counted
 * per client id and per source address over a sliding window; once either count reaches its limit, further
 * attempts for that client or from that address are refused with 429 and Retry-After until enough of the
 * oldest failures leave the window, whether or not the credential would be right (else guessing merely slows
 * down). A success clears the client's count. The secret comparison itself stays constant-time (secrets.ts).
 *
 * The counts are in the database (table `auth_failure`, see its migration), so every server behind a load
 * balancer sees every failure, a lockout holds on all of them and a restart does not forget it. An attempt is
 * counted *before* its credential is checked and taken back when it turns out right (or is refused for
 * another reason): guesses sent in parallel are serialised on the row of the current slice of the window, so
 * a burst of 1,000 at once gets the limit's worth of guesses, not 1,000; and a server that dies while
 * checking leaves the attempt counted as a failure. The clock is the server's (NTP-synchronised servers agree
 * to well within a slice).
 */
export interface FailureLimits {
  /** AUTH_MAX_FAILURES_PER_CLIENT: failures of one client id within the window before it is locked out. */
  perClient: number;
  /** AUTH_MAX_FAILURES_PER_ADDRESS: failures from one address (any client ids) before it is locked out. */
  perAddress: number;
  /** AUTH_FAILURE_WINDOW_MS: how long a failure counts. */
  windowMs: number;
}

export const DEFAULT_FAILURE_LIMITS: FailureLimits = { perClient: 10, perAddress: 50, windowMs: 15 * 60_000 };

/** One attempt at client authentication, counted as a failure unless it is settled otherwise. */
export interface AuthenticationAttempt {
  /** The credential was right: the client's failures are forgotten and this attempt is not counted. */
  succeeded(): Promise<void>;
  /** The attempt ended before its credential was judged (a malformed request, an outage): not counted. */
  withdrawn(): Promise<void>;
}

export interface FailedAuthentications {
  /** Counts an attempt for this client id and address; throws 429 with Retry-After when either is locked out. */
  begin(clientId: string | undefined, address: string | undefined): Promise<AuthenticationAttempt>;
}

/** Slices per window: a key costs at most this many rows + 1, and a failure counts for up to a slice longer than the window. */
const SLICES = 10;

/** Expired rows deleted by one attempt at most: a statement's cost stays bounded after a flood, and writers still outpace it (≤ 2 rows each). */
const PRUNE_BATCH = 500;

/** Keys longer than this (or with a NUL, which PostgreSQL text cannot hold) are stored as their SHA-256. */
const MAX_KEY_LENGTH = 200;

type Kind = 'client' | 'address';

interface SliceRow {
  kind: Kind;
  bucket: Date;
  failures: number;
  current: boolean;
}

/** The counts every server shares, in PostgreSQL or the embedded store. */
export class SharedFailedAuthentications implements FailedAuthentications {
  private readonly sliceMs: number;

  constructor(
    private readonly sql: Sql,
    private readonly limits: FailureLimits = DEFAULT_FAILURE_LIMITS,
    private readonly now: () => number = Date.now,
  ) {
    this.sliceMs = Math.max(1000, Math.ceil(limits.windowMs / SLICES));
  }

  async begin(clientId: string | undefined, address: string | undefined): Promise<AuthenticationAttempt> {
    const keys = { client: storedKey(clientId), address: storedKey(address) };
    const now = this.now();
    const bucket = new Date(Math.floor(now / this.sliceMs) * this.sliceMs);
    // A slice counts while any moment of it is inside the window; older slices are pruned by this statement.
    const cutoff = new Date(now - this.limits.windowMs - this.sliceMs);
    const rows = await this.sql.query<SliceRow[]>(
      `WITH keys (kind, key) AS (
         SELECT kind, key FROM (VALUES ('client', $1::text), ('address', $2::text)) AS k (kind, key) WHERE key IS NOT NULL
       ), pruned AS (
         DELETE FROM auth_failure WHERE (kind, key, bucket) IN (
           SELECT kind, key, bucket FROM auth_failure WHERE bucket <= $4 LIMIT ${PRUNE_BATCH} FOR UPDATE SKIP LOCKED)
       ), earlier AS (
         SELECT f.kind, f.bucket, f.failures FROM auth_failure f JOIN keys USING (kind, key) WHERE f.bucket > $4 AND f.bucket < $3
       ), charged AS (
         INSERT INTO auth_failure (kind, key, bucket, failures) SELECT kind, key, $3, 1 FROM keys ORDER BY kind DESC
         ON CONFLICT (kind, key, bucket) DO UPDATE SET failures = auth_failure.failures + 1
         RETURNING kind, bucket, failures
       )
       SELECT kind, bucket, failures, false AS current FROM earlier UNION ALL SELECT kind, bucket, failures, true AS current FROM charged`,
      keys.client,
      keys.address,
      bucket,
      cutoff,
    );
    const attempt = new Attempt(this.sql, keys, bucket);
    for (const [kind, limit, what] of [
      ['client', this.limits.perClient, 'for this client'],
      ['address', this.limits.perAddress, 'from this address'],
    ] as const) {
      const slices = rows.filter((r) => r.kind === kind);
      // The current slice's count comes from the upsert, so parallel attempts each see the ones before them.
      const before = slices.reduce((sum, r) => sum + Number(r.failures), 0) - (slices.some((r) => r.current) ? 1 : 0);
      if (before < limit) continue;
      // A refused attempt is not a guess: it must not lengthen the lockout (nor lock out an address shared with a locked client).
      await attempt.withdrawn();
      const retryAfter = this.retryAfterSeconds(slices, before, limit, now);
      throw new OAuthError('temporarily_unavailable', `Too many failed client authentications ${what}: try again in ${retryAfter} s`, 429, {
        'Retry-After': String(retryAfter),
      });
    }
    return attempt;
  }

  /** Seconds until enough of the oldest slices leave the window for the count to fall below the limit. */
  private retryAfterSeconds(slices: SliceRow[], count: number, limit: number, now: number): number {
    let remaining = count;
    let until = now;
    for (const slice of [...slices].sort((a, b) => a.bucket.getTime() - b.bucket.getTime())) {
      if (remaining < limit) break;
      remaining -= Number(slice.failures) - (slice.current ? 1 : 0);
      until = new Date(slice.bucket).getTime() + this.sliceMs + this.limits.windowMs;
    }
    return Math.max(1, Math.ceil((until - now) / 1000));
  }
}

class Attempt implements AuthenticationAttempt {
  private settled = false;

  constructor(
    private readonly sql: Sql,
    private readonly keys: Record<Kind, string | null>,
    private readonly bucket: Date,
  ) {}

  async succeeded(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    // Separate statements, each locking rows of one key: no lock-order cycle with a concurrent attempt.
    if (this.keys.client) await this.sql.execute(`DELETE FROM auth_failure WHERE kind = 'client' AND key = $1`, this.keys.client);
    if (this.keys.address) await this.uncount('address', this.keys.address);
  }

  async withdrawn(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    // Client before address, the order the attempt's upsert locked them in.
    if (this.keys.client) await this.uncount('client', this.keys.client);
    if (this.keys.address) await this.uncount('address', this.keys.address);
  }

  private async uncount(kind: Kind, key: string): Promise<void> {
    await this.sql.execute(`UPDATE auth_failure SET failures = failures - 1 WHERE kind = $1 AND key = $2 AND bucket = $3 AND failures > 0`, kind, key, this.bucket);
  }
}

/** `value` as stored: as it is when short and storable, else its SHA-256 (a megabyte client_id must not reach an index). */
function storedKey(value: string | undefined): string | null {
  if (!value) return null;
  if (value.length <= MAX_KEY_LENGTH && !value.includes('\u0000')) return value;
  return `sha256:${createHash('sha256').update(value).digest('hex')}`;
}
