import type { Database } from '../store/db';

/**
 * Clients whose tokens are refused although they verify (issue 12: revoking a client revokes its tokens on
 * the next request). Access tokens are checked locally, without the database, so revocation is a set held
 * in memory: loaded at start, added to at once when this process revokes a client, and told by every
 * other server process through PostgreSQL LISTEN/NOTIFY (on PGlite too), so no request pays a query for it.
 * A client is never un-revoked, so the set only grows (by one id per revoked client).
 */
export const REVOCATION_CHANNEL = 'tributary_client_revoked';

export class RevokedClients {
  private readonly ids = new Set<string>();
  private unlisten?: () => Promise<void>;

  constructor(private readonly db: Database) {}

  /** Listens first, then loads, so a revocation made in between is not missed. */
  async start(): Promise<void> {
    this.unlisten = await this.db.listen(REVOCATION_CHANNEL, (id) => this.ids.add(id), () => void this.load().catch(() => undefined));
    await this.load();
  }

  async stop(): Promise<void> {
    await this.unlisten?.();
  }

  has(clientId: string): boolean {
    return this.ids.has(clientId);
  }

  /** Records a revocation made by this process (already committed) and tells the other processes. */
  async revoked(clientId: string): Promise<void> {
    this.ids.add(clientId);
    await this.db.sql.execute(`SELECT pg_notify($1, $2)`, REVOCATION_CHANNEL, clientId);
  }

  private async load(): Promise<void> {
    const rows = await this.db.sql.query<{ id: string }[]>(`SELECT id FROM api_client WHERE revoked_at IS NOT NULL`);
    for (const row of rows) this.ids.add(row.id);
  }
}
