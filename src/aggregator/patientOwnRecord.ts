import type { AccessFilter } from '../service/ports';

/**
 * What a patient-scoped token (NHS Login) sees of the aggregated record until the patient-compartment
 * predicate of the consent work replaces this: its own Patient resource and nothing else. It fails closed —
 * never the customer-source view, which would show a patient app's customer's data of every patient.
 */
export function patientOwnRecord(patientId: string): AccessFilter {
  return { condition: (r, bind) => `(${r}.type = 'Patient' AND ${r}.id = ${bind(patientId)})` };
}
