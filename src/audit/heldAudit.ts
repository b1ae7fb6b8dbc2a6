import type { AuditActivity } from './auditEvent';
import type { AuditSink } from './auditLog';

/**
 * The audit events of one GraphQL request, written together just before its response. A patient-record query
 * makes its service calls one after another (the Patient, then its lists, then the references they hold), and
 * each call used to wait for a durable write of its own event: five batch INSERTs and five commits for one
 * query (`pg_stat_statements`, the bench's patient-record query). Held here, they reach the audit log in one
 * turn of the event loop, which writes them as one batch.
 *
 * Nothing leaves unaudited: the door sends the response only once `release` has resolved, and answers with
 * the log's error (503) and no data when it rejects. Each event is still one event per service call.
 */
export class HeldAudit implements AuditSink {
  private held: AuditActivity[] = [];

  constructor(private readonly log: AuditSink) {}

  get enabled(): boolean {
    return this.log.enabled;
  }

  record(activity: AuditActivity): Promise<void> {
    this.held.push(activity);
    return Promise.resolve();
  }

  /** Records every event held so far; resolves when all are durable, rejects when any cannot be written. */
  async release(): Promise<void> {
    const events = this.held;
    this.held = [];
    await Promise.all(events.map((a) => this.log.record(a)));
  }
}
