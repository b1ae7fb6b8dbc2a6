import type { Sql } from '../store/sql';

/**
 * The jti of every client assertion accepted, kept until the assertion expires (RFC 7523 §3 item 7; SMART
 * Backend Services: "the authorization server SHALL reject an authentication JWT whose jti has been used").
 * Recording is insert-or-refuse on (client_id, jti), so two processes given the same assertion at once accept
 * it once. Rows past their expiry can never match a valid assertion again and are pruned now and then.
 */
const PRUNE_INTERVAL_MS = 60_000;

export class AssertionJtis {
  private lastPrune = 0;

  constructor(private readonly sql: Sql) {}

  /** True when this jti was not seen before for this client (and is now recorded); false for a replay. */
  async firstUse(clientId: string, jti: string, expiresAt: Date): Promise<boolean> {
    await this.prune();
    const inserted = await this.sql.execute(
      `INSERT INTO client_assertion_jti (client_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT (client_id, jti) DO NOTHING`,
      clientId,
      jti,
      expiresAt,
    );
    return inserted === 1;
  }

  private async prune(): Promise<void> {
    const now = Date.now();
    if (now - this.lastPrune < PRUNE_INTERVAL_MS) return;
    this.lastPrune = now;
    await this.sql.execute(`DELETE FROM client_assertion_jti WHERE expires_at < now()`);
  }
}
