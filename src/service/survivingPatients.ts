import { relativePatientId } from '../fhir/ids';
import { type OperationOutcome, operationOutcome } from '../fhir/outcome';
import type { Resource } from '../fhir/types';

/**
 * Aggregated Patient ids absorbed by a merge (DESIGN §3.8: "groups that merge keep the oldest aggregated id
 * and the absorbed id answers with a `replaced-by` link"). R4 Patient.link says a Patient carrying
 * `replaced-by` "must no longer be used" and its target is to be used "in lieu of" it, so operations whose
 * subject is a patient — `Patient/[id]/$everything`, the Bulk Data `patient` parameter — answer for the
 * Patient the links lead to, and say so. Searches are not rewritten: a reference parameter matches the
 * references as stored (the aggregator has already repointed them at the survivor), as FHIR search defines.
 *
 * The links are read as the caller reads Patients (`read` is FhirService.readMany: scopes and the access
 * filter apply), so an absorbed id whose survivor the caller may not see resolves to nothing, exactly as an
 * id that exists nowhere. Only the server writes `replaced-by` links (service/writeGuard.ts), so a link is
 * always one of ours.
 */

/** Patients read per query. */
const PATIENTS_PER_READ = 100;
/**
 * Links followed at most: a merge of merged groups leaves a chain (the stub of an earlier absorbed id names the
 * id absorbed later), a few hops long at most; a longer chain (or a cycle) resolves to nothing.
 */
const MAX_HOPS = 8;

/** The Patient id a Patient's `replaced-by` link names, if it has one. */
export function replacedBy(patient: Resource): string | undefined {
  const links = Array.isArray(patient.link) ? (patient.link as { type?: unknown; other?: { reference?: unknown } }[]) : [];
  const reference = links.find((l) => l?.type === 'replaced-by')?.other?.reference;
  return typeof reference === 'string' ? relativePatientId(reference) : undefined;
}

/**
 * Each of `ids` that names a Patient `read` answers, mapped to the Patient it stands for now: itself, or the
 * end of its `replaced-by` links. Ids that are unknown, deleted or hidden, or whose links lead to such a
 * Patient, are absent.
 */
export async function survivingPatients(ids: string[], read: (ids: string[]) => Promise<Resource[]>): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  /** Each asked id still being followed → the id it has reached. */
  const reached = new Map(ids.map((id) => [id, id]));
  /** Every Patient read so far (undefined: not answered). */
  const patients = new Map<string, Resource | undefined>();
  for (let hop = 0; hop <= MAX_HOPS && reached.size; hop++) {
    const unread = [...new Set(reached.values())].filter((id) => !patients.has(id));
    for (let i = 0; i < unread.length; i += PATIENTS_PER_READ) {
      const chunk = unread.slice(i, i + PATIENTS_PER_READ);
      const found = new Map((await read(chunk)).map((p) => [p.id, p]));
      for (const id of chunk) patients.set(id, found.get(id));
    }
    for (const [asked, id] of reached) {
      const patient = patients.get(id);
      const next = patient && replacedBy(patient);
      if (patient && next === undefined) result.set(asked, id);
      if (next === undefined) reached.delete(asked);
      else reached.set(asked, next);
    }
  }
  return result;
}

/** An information issue naming the substitution, for the answer of `operation` on the absorbed id. */
export function replacedByOutcome(asked: string, survivor: string, operation: string): OperationOutcome {
  return operationOutcome([
    {
      severity: 'information',
      code: 'informational',
      diagnostics: `Patient/${asked} was merged into Patient/${survivor} (its link replaced-by): ${operation} holds Patient/${survivor}'s compartment`,
    },
  ]);
}
