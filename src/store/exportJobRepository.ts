import type { SqlClient } from './sql';

/**
 * Bulk Data export jobs (table `bulk_export_job`): what any server process needs to answer a status poll,
 * a file download or a cancellation. A job belongs to the client that started it; every read names the
 * client, so another client's job reads as missing.
 */
export type ExportJobStatus = 'in-progress' | 'completed' | 'failed' | 'cancelled';

export interface ExportOutput {
  type: string;
  /** File name inside the job's folder, e.g. `Observation.ndjson`. */
  file: string;
  count: number;
}

export interface ExportJob {
  id: string;
  clientId: string;
  request: string;
  status: ExportJobStatus;
  transactionTime: Date;
  progress: string | null;
  output: ExportOutput[];
  error: string | null;
  expiresAt: Date;
}

interface Row {
  id: string;
  client_id: string;
  request: string;
  status: ExportJobStatus;
  transaction_time: Date;
  progress: string | null;
  output: ExportOutput[];
  error: string | null;
  expires_at: Date;
}

const toJob = (r: Row): ExportJob => ({
  id: r.id,
  clientId: r.client_id,
  request: r.request,
  status: r.status,
  transactionTime: new Date(r.transaction_time),
  progress: r.progress,
  output: r.output,
  error: r.error,
  expiresAt: new Date(r.expires_at),
});

export class ExportJobRepository {
  constructor(private readonly sql: SqlClient) {}

  async create(job: { id: string; clientId: string; request: string; transactionTime: Date; expiresAt: Date }): Promise<void> {
    await this.sql.execute(
      `INSERT INTO bulk_export_job (id, client_id, request, status, transaction_time, expires_at) VALUES ($1, $2, $3, 'in-progress', $4, $5)`,
      job.id,
      job.clientId,
      job.request,
      job.transactionTime.toISOString(),
      job.expiresAt.toISOString(),
    );
  }

  /** The client's job, unless it was cancelled or has expired. */
  async get(id: string, clientId: string): Promise<ExportJob | undefined> {
    const rows = await this.sql.query<Row[]>(
      `SELECT * FROM bulk_export_job WHERE id = $1 AND client_id = $2 AND status <> 'cancelled' AND expires_at > clock_timestamp()`,
      id,
      clientId,
    );
    return rows[0] && toJob(rows[0]);
  }

  /** Records progress; false when the job is no longer running (cancelled meanwhile): the runner stops. */
  async progress(id: string, progress: string): Promise<boolean> {
    return (await this.sql.execute(`UPDATE bulk_export_job SET progress = $2 WHERE id = $1 AND status = 'in-progress'`, id, progress)) > 0;
  }

  async complete(id: string, output: ExportOutput[]): Promise<boolean> {
    return (
      (await this.sql.execute(
        `UPDATE bulk_export_job SET status = 'completed', progress = NULL, output = $2::jsonb WHERE id = $1 AND status = 'in-progress'`,
        id,
        JSON.stringify(output),
      )) > 0
    );
  }

  async fail(id: string, error: string): Promise<void> {
    await this.sql.execute(`UPDATE bulk_export_job SET status = 'failed', error = $2 WHERE id = $1 AND status = 'in-progress'`, id, error);
  }

  /** Marks the client's job cancelled; false when it has none by that id. */
  async cancel(id: string, clientId: string): Promise<boolean> {
    return (await this.sql.execute(`UPDATE bulk_export_job SET status = 'cancelled' WHERE id = $1 AND client_id = $2 AND status <> 'cancelled'`, id, clientId)) > 0;
  }

  /** Removes expired and cancelled jobs, returning their ids (their files go with them). */
  async sweep(): Promise<string[]> {
    const rows = await this.sql.query<{ id: string }[]>(`DELETE FROM bulk_export_job WHERE expires_at <= clock_timestamp() OR status = 'cancelled' RETURNING id`);
    return rows.map((r) => r.id);
  }
}
