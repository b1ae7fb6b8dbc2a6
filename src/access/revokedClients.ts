import type { Database } from '../store/db';
import type { Caller } from './caller';

/**
 * Clients whose tokens are refused although they verify (issue 12: revoking a client revokes its tokens on
 * the next request). Access tokens are checked locally, without the database, so revocation is a set held
 * in memory: loaded at start, added to at once when this process revokes a client, and told by every
 * other server process through PostgreSQL LISTEN/NOTIFY (on PGlite too), so no request pays a query for it.
 * A client is never un-revoked, so the set only grows (by one id per revoked client).
 * Issue 13: the same holds for the organisations, teams and practitioners a token acts for — disabling one is
 * for good too, and stops the tokens naming it in a claim (`org`, `team`, `practitioner`). Their ids carry
 * distinct prefixes (`cli-`, `org-`, `team-`, `prac-`), so one set holds them all.
 */
export const REVOCATION_CHANNEL = 'tributary_client_revoked';

export class RevokedClients {
  private readonly ids = new Set<string>();
  private unlisten?: () => Promise<void>;

  constructor(private readonly db: Database) {}

  /** Listens first, then loads, so a revocation made in between is not missed. */
  async start(): Promise<void> {
    this.unlisten = await this.db.listen(
      REVOCATION_CHANNEL,
      (id) => this.ids.add(id),
      () => void this.load().catch(() => undefined),
    );
    await this.load();
  }

  async stop(): Promise<void> {
    await this.unlisten?.();
  }

  has(clientId: string): boolean {
    return this.ids.has(clientId);
  }

  /** Why a verified token must be refused all the same: what it acts for that is revoked or disabled, if any. */
  refusal(caller: Caller): 'client' | 'organisation' | 'team' | 'practitioner' | undefined {
    if (this.ids.has(caller.clientId)) return 'client';
    if (caller.organizationId && this.ids.has(caller.organizationId)) return 'organisation';
    if (caller.teamId && this.ids.has(caller.teamId)) return 'team';
    if (caller.practitionerId && this.ids.has(caller.practitionerId)) return 'practitioner';
    return undefined;
  }

  /** Records a revocation or disabling made by this process (already committed) and tells the other processes. */
  async revoked(clientId: string): Promise<void> {
    this.ids.add(clientId);
    await this.db.sql.execute(`SELECT pg_notify($1, $2)`, REVOCATION_CHANNEL, clientId);
  }

  private async load(): Promise<void> {
    const rows = await this.db.sql.query<{ id: string }[]>(
      `SELECT id FROM api_client WHERE revoked_at IS NOT NULL
       UNION ALL SELECT id FROM organization WHERE disabled_at IS NOT NULL
       UNION ALL SELECT id FROM team WHERE disabled_at IS NOT NULL
       UNION ALL SELECT id FROM practitioner WHERE disabled_at IS NOT NULL`,
    );
    for (const row of rows) this.ids.add(row.id);
  }
}
