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

export function createRecordChangeHook(): WriteHook {
  const log = async (tx: Tx, changes: ResourceChange[]) => {
    const ours = changes.filter((c) => c.store === AGGREGATED_STORE);
    if (!ours.length) return;
    const patients: (string | null)[] = [];
    for (const c of ours) patients.push(await patientOfChange(tx, c));
    // Positions must follow commit order: a subscriber skips what is at or below the last position it judged, so
    // a transaction that took positions 100–199 but committed after one holding 200–299 would never be heard
    // (two aggregation loops run side by side on PostgreSQL). The lock, held until this transaction ends, makes
    // every later position belong to a transaction that commits later.
    await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended('agg_change', 0))`);
    // One statement: the log rows, and a NOTIFY each (delivered by PostgreSQL when the transaction commits).
    await tx.query(
      `WITH c AS (
         INSERT INTO agg_change (type, res_id, version_id, kind, patient_id)
         SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[])
         RETURNING seq, type, res_id, version_id, kind, patient_id)
       SELECT pg_notify($6, json_build_object('s', seq::text, 't', type, 'i', res_id, 'v', version_id, 'k', kind, 'p', patient_id)::text) FROM c`,
      ours.map((c) => c.type),
      ours.map((c) => c.id),
      ours.map((c) => c.versionId),
      ours.map((c) => c.kind),
      patients,
      RECORD_CHANGE_CHANNEL,
    );
  };
  const hook: WriteHook = (tx, change) => log(tx, [change]);
  hook.many = log;
  return hook;
}
