import { relativePatientId } from './ids';
import { badRequest } from './outcome';

/**
 * The parameters of a Bulk Data kick-off by POST (bulkdata export.html#bulk-data-kick-off-request: "MAY support
 * POST requests that supply parameters using the FHIR Parameters Resource") as the name/value pairs a GET
 * kick-off has in its query, so both go through one check (service/bulkExport.ts). A parameter's value is its
 * primitive `value[x]` (`valueString`, `valueInstant`, `valueCode`…), and `patient`'s is its `valueReference`:
 * a Patient reference, `Patient/[id]` or that path under `base` (the server part is stripped, as the
 * aggregator strips it), which becomes `Patient/[id]`. What is not a Parameters, a parameter without a name or
 * a primitive value, and a `patient` that is not a Patient reference are 400s naming what is wrong; whether a
 * name is known is for the kick-off to decide (`Prefer: handling`).
 */
export function exportParameters(body: unknown, base: string): [string, string][] {
  if (!isObject(body) || body.resourceType !== 'Parameters') {
    throw badRequest('A POST kick-off of $export takes a FHIR Parameters resource as its body (Content-Type: application/fhir+json)');
  }
  const list = body.parameter ?? [];
  if (!Array.isArray(list)) throw badRequest('Parameters.parameter must be a list', 'Parameters.parameter');
  return list.map((p: unknown, i): [string, string] => {
    const where = `Parameters.parameter[${i}]`;
    if (!isObject(p) || typeof p.name !== 'string' || p.name === '') throw badRequest(`${where} has no name`, where);
    const name = p.name;
    if (name === 'patient') return [name, patientReference(p.valueReference, base, where)];
    const values = Object.entries(p).filter(([k]) => k.startsWith('value'));
    if (p.resource !== undefined || p.part !== undefined || values.length !== 1 || typeof values[0][1] !== 'string') {
      throw badRequest(`${where} ('${name}') must have one primitive value (valueString, valueInstant…)`, name);
    }
    return [name, values[0][1]];
  });
}

/** `Patient/[id]` from a Reference naming one of this server's Patients. */
function patientReference(value: unknown, base: string, where: string): string {
  const reference = isObject(value) && typeof value.reference === 'string' ? value.reference : undefined;
  if (reference === undefined) throw badRequest(`${where}: patient must be a valueReference with a reference 'Patient/[id]'`, 'patient');
  const local = reference.startsWith(`${base}/`) ? reference.slice(base.length + 1) : reference;
  if (relativePatientId(local) === undefined) throw badRequest(`${where}: patient '${reference.slice(0, 200)}' is not a reference to a Patient of this server`, 'patient');
  return local;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
