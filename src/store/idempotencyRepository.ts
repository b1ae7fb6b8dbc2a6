import type { Sql, Tx } from './sql';
import { stringifyStoredJson } from '../fhir/losslessJson';

/**
 * The recorded answers of idempotent writes (table `idempotency_key`, see its migration). A key is claimed
 * inside the write's own transaction: a concurrent request with the same key waits on the primary key until
 * the first commits (then finds its answer) or rolls back (then runs itself). A key older than the window
 * counts as unused and is claimed afresh.
 */
export interface RecordedResponse {
  status: number;
  headers: Record<string, string>;
  body?: unknown;
}

export type Claim = { kind: 'claimed' } | { kind: 'replay'; response: RecordedResponse } | { kind: 'mismatch' };

export class IdempotencyRepository {
  constructor(private readonly sql: Sql) {}

  async claim(tx: Tx, scope: string, key: string, fingerprint: string, windowSeconds: number): Promise<Claim> {
    const claimed = await tx.query<unknown[]>(
      `INSERT INTO idempotency_key (scope, key, fingerprint, created_at) VALUES ($1, $2, $3, now())
       ON CONFLICT (scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, created_at = now(), status = NULL, headers = NULL, body = NULL
        WHERE idempotency_key.created_at < now() - make_interval(secs => $4::int)
       RETURNING 1 AS claimed`,
      scope,
      key,
      fingerprint,
      windowSeconds,
    );
    if (claimed.length) return { kind: 'claimed' };
    const rows = await tx.query<{ fingerprint: string; status: number | null; headers: Record<string, string> | null; body: unknown }[]>(
      `SELECT fingerprint, status, headers, body FROM idempotency_key WHERE scope = $1 AND key = $2`,
      scope,
      key,
    );
    const row = rows[0];
    if (!row || row.fingerprint !== fingerprint) return { kind: 'mismatch' };
    // A claimed row always gets its answer in the same transaction, so a committed one has it.
    return { kind: 'replay', response: { status: row.status ?? 200, headers: row.headers ?? {}, body: row.body ?? undefined } };
  }

  async record(tx: Tx, scope: string, key: string, response: RecordedResponse): Promise<void> {
    await tx.execute(
      `UPDATE idempotency_key SET status = $3, headers = $4::jsonb, body = $5::jsonb WHERE scope = $1 AND key = $2`,
      scope,
      key,
      response.status,
      JSON.stringify(response.headers),
      // The replayed answer keeps its decimals' digits as the first one did (fhir/losslessJson.ts).
      response.body === undefined ? null : stringifyStoredJson(response.body),
    );
  }

  /** Forgets answers older than the window. */
  async purge(windowSeconds: number): Promise<number> {
    return this.sql.execute(`DELETE FROM idempotency_key WHERE created_at < now() - make_interval(secs => $1::int)`, windowSeconds);
  }
}
