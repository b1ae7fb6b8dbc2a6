import { OperationOutcomeError, operationOutcome } from '../fhir/outcome';
import { preparedStatement } from '../store/preparedStatements';
import type { Sql } from '../store/sql';
import { type AuditActivity, type AuditEntry, auditEntry } from './auditEvent';

/**
 * The audit log: `record` resolves once the event is durable (committed), so a request can answer only
 * after its audit is written. Cheap by group commit: the events recorded while a write is in flight wait
 * for the next one, and go together as one multi-row INSERT (one round trip and one WAL flush for the
 * lot), so under load the cost per event is a fraction of a statement. A write that fails rejects every
 * event of its batch with a 503: the request that needed the audit is refused rather than served unaudited
 * (the chosen policy — a read whose audit cannot be written is not answered; a write already committed is
 * answered 503 too, its caller told that the outcome is uncertain).
 */
export interface AuditSink {
  /** Resolves when the activity is durably recorded; rejects with a 503 OperationOutcomeError when it cannot be. */
  record(activity: AuditActivity): Promise<void>;
  readonly enabled: boolean;
}

/** AUDIT=off: nothing is recorded. */
export const NO_AUDIT: AuditSink = { enabled: false, record: async () => undefined };

interface Pending {
  entry: AuditEntry;
  resolve(): void;
  reject(err: unknown): void;
}

export interface AuditLogOptions {
  /** This server's base URL (the observer of every event). */
  serverUrl: () => string;
  /** Most events per INSERT. */
  maxBatch?: number;
  /** Told about every failed write (the requests see a 503). */
  onError?: (err: unknown) => void;
}

/**
 * One batch of events, their rows given as one JSON array. The aggregated Patients of an event: those known up
 * front, and those of its resources' agg_access rows (one indexed lookup per resource, in the same statement).
 * The AuditEvent itself is written when the event is read (auditEvent.ts `auditEventResource`). Prepared:
 * planning it cost as much as running it.
 */
const INSERT_EVENTS = preparedStatement(
  `INSERT INTO "audit_event" ("id", "recorded", "patient_ids", "client", "action", "subtype", "outcome", "activity")
       SELECT e.id, e.recorded, p.ids, e.client, e.action, e.subtype, e.outcome, e.activity
       FROM jsonb_to_recordset($1::jsonb) AS e("id" text, "recorded" timestamptz, "store" text, "refs" text[], "patients" text[],
                                               "client" text, "action" text, "subtype" text, "outcome" text, "activity" jsonb)
       CROSS JOIN LATERAL (
         SELECT COALESCE(array_agg(DISTINCT q.pid ORDER BY q.pid), '{}') AS ids FROM (
           SELECT unnest(e.patients) AS pid
           UNION ALL
           SELECT a.patient_id FROM unnest(e.refs) AS ref
             JOIN "resource" r ON r.store = e.store AND r.type = split_part(ref, '/', 1) AND r.id = split_part(ref, '/', 2)
             JOIN "agg_access" a ON a.resource_pk = r.pk
            WHERE e.store = 'aggregated' AND a.patient_id IS NOT NULL
         ) q
       ) p`,
);

export class AuditLog implements AuditSink {
  readonly enabled = true;
  private queue: Pending[] = [];
  private writing = false;

  constructor(
    private readonly sql: Sql,
    private readonly options: AuditLogOptions,
  ) {}

  record(activity: AuditActivity): Promise<void> {
    const entry = auditEntry(activity, this.options.serverUrl());
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ entry, resolve, reject });
      if (!this.writing) {
        this.writing = true;
        // Let the requests of this turn of the event loop join the first batch.
        setImmediate(() => void this.drain());
      }
    });
  }

  /** Writes batches until the queue is empty; one write in flight at a time, so the next batch grows meanwhile. */
  private async drain(): Promise<void> {
    const max = this.options.maxBatch ?? 500;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, max);
        try {
          await this.insert(batch.map((p) => p.entry));
          for (const p of batch) p.resolve();
        } catch (err) {
          this.options.onError?.(err);
          const refusal = auditUnavailable();
          for (const p of batch) p.reject(refusal);
        }
      }
    } finally {
      this.writing = false;
    }
  }

  private async insert(entries: AuditEntry[]): Promise<void> {
    const rows = entries.map((e) => ({ ...e, recorded: e.recorded.toISOString(), store: e.store ?? null, client: e.client ?? null }));
    await this.sql.execute(INSERT_EVENTS, JSON.stringify(rows));
  }
}

export function auditUnavailable(): OperationOutcomeError {
  return new OperationOutcomeError(
    503,
    operationOutcome([{ severity: 'error', code: 'transient', diagnostics: 'The audit log cannot be written, so the request was refused; try again later' }]),
    { 'Retry-After': '5' },
  );
}
