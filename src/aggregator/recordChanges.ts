import type { Resource } from '../fhir/types';
import type { ResourceChange, Tx, WriteHook } from '../store/resourceRepository';
import { AGGREGATED_STORE } from './outbox';
import { patientOf } from './upstream';

/**
 * The aggregated record's change feed (issue 18): the write hook that logs every committed version of an
 * aggregated resource in `agg_change` and announces it with NOTIFY, both in the aggregation's own
 * transaction, so an announcement reaches every listening server process exactly when (and only if) the
 * aggregate commits, whichever worker process wrote it. The payload names the change, never its content:
 * each subscriber re-reads the resource with its own access (src/live/liveRecord.ts).
 *
 * Positions are taken under one lock held until the transaction ends (see `write`), so a transaction that
 * logs early holds every other aggregation off the log for the rest of its work. The worker's batch
 * transaction therefore logs late: it opens a `PendingChanges` for its transaction, the hook collects into it
 * (dropping what a rolled-back savepoint wrote), and the worker flushes it just before it commits. A
 * transaction without one (a consent written to the aggregated store, a test's own) logs at once, as before.
 */
export const RECORD_CHANGE_CHANNEL = 'tributary_record_changed';

/** What a NOTIFY on the channel carries (short keys: NOTIFY payloads are capped at 8,000 bytes). */
export interface RecordChangeNotice {
  /** Position in the change log. */
  s: string;
  t: string;
  i: string;
  v: number;
  k: ResourceChange['kind'];
  /** The aggregated Patient whose compartment it is in, if any. */
  p: string | null;
}

/** The Patient a version belongs to; for a delete, the one its last content belonged to. */
async function patientOfChange(tx: Tx, change: ResourceChange): Promise<string | null> {
  let resource: Resource | null = change.resource;
  if (!resource) {
    const rows = await tx.query<{ content: Resource | null }[]>(
      `SELECT content FROM resource_history WHERE resource_pk = $1::bigint AND version_id = $2`,
      String(change.pk),
      change.versionId - 1,
    );
    resource = rows[0]?.content ?? null;
  }
  if (!resource) return null;
  if (resource.resourceType === 'Patient') return change.id;
  return patientOf(resource) ?? null;
}

/** One row of the log to write (only what it needs: a pending change must not keep its resource's content alive). */
interface Logged {
  type: string;
  id: string;
  versionId: number;
  kind: ResourceChange['kind'];
  patient: string | null;
}

/**
 * Writes the log rows and their NOTIFYs. Positions must follow commit order: a subscriber skips what is at or
 * below the last position it judged, so a transaction that took positions 100–199 but committed after one
 * holding 200–299 would never be heard (two aggregation loops run side by side on PostgreSQL). The lock, held
 * until this transaction ends, makes every later position belong to a transaction that commits later.
 */
async function write(tx: Tx, logged: Logged[]): Promise<void> {
  if (!logged.length) return;
  await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended('agg_change', 0))`);
  // One statement: the log rows, and a NOTIFY each (delivered by PostgreSQL when the transaction commits).
  await tx.query(
    `WITH c AS (
       INSERT INTO agg_change (type, res_id, version_id, kind, patient_id)
       SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[])
       RETURNING seq, type, res_id, version_id, kind, patient_id)
     SELECT pg_notify($6, json_build_object('s', seq::text, 't', type, 'i', res_id, 'v', version_id, 'k', kind, 'p', patient_id)::text) FROM c`,
    logged.map((l) => l.type),
    logged.map((l) => l.id),
    logged.map((l) => l.versionId),
    logged.map((l) => l.kind),
    logged.map((l) => l.patient),
    RECORD_CHANGE_CHANNEL,
  );
}

/** The open PendingChanges of each transaction that has one (a Tx object lives for one transaction). */
const pendingOf = new WeakMap<Tx, PendingChanges>();

/**
 * The changes a transaction has written so far, logged together by `flush` just before it commits: the change
 * log's lock is then held only for the log's insert and the commit. Savepoints are mirrored with `mark` and
 * `rollbackTo`, so that the change of a rolled-back item is never logged.
 */
export class PendingChanges {
  private logged: Logged[] = [];

  private constructor(private readonly tx: Tx) {}

  /** Collects the hook's changes in `tx` from now until `flush`. */
  static open(tx: Tx): PendingChanges {
    const pending = new PendingChanges(tx);
    pendingOf.set(tx, pending);
    return pending;
  }

  static of(tx: Tx): PendingChanges | undefined {
    return pendingOf.get(tx);
  }

  add(logged: Logged[]): void {
    this.logged.push(...logged);
  }

  /** Where the log stands: take one alongside each SAVEPOINT. */
  mark(): number {
    return this.logged.length;
  }

  /** Forgets what was collected since `mark` (its savepoint was rolled back). */
  rollbackTo(mark: number): void {
    if (mark < this.logged.length) this.logged.length = mark;
  }

  /** Logs what was collected; call it last in the transaction. Changes written after it are logged at once. */
  async flush(): Promise<void> {
    pendingOf.delete(this.tx);
    const logged = this.logged;
    this.logged = [];
    await write(this.tx, logged);
  }
}

export function createRecordChangeHook(): WriteHook {
  const log = async (tx: Tx, changes: ResourceChange[]) => {
    const ours = changes.filter((c) => c.store === AGGREGATED_STORE);
    if (!ours.length) return;
    // The Patient is read now, outside the lock: a deletion's last content is at hand in this transaction.
    const logged: Logged[] = [];
    for (const c of ours) logged.push({ type: c.type, id: c.id, versionId: c.versionId, kind: c.kind, patient: await patientOfChange(tx, c) });
    const pending = pendingOf.get(tx);
    if (pending) pending.add(logged);
    else await write(tx, logged);
  };
  const hook: WriteHook = (tx, change) => log(tx, [change]);
  hook.many = log;
  return hook;
}
