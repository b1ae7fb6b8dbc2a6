import { parse, stringify } from 'lossless-json';
import { badRequest } from '../outcome';

/**
 * FHIR JSON text with its numbers kept as written (`LosslessNumber`), for the lossless round trip
 * XML → JSON → XML: `JSON.parse` would turn a decimal `1.50` into `1.5` and lose its precision, which FHIR
 * says is significant (http://hl7.org/fhir/R4/datatypes.html#decimal).
 */
export function parseFhirJson(text: string): unknown {
  try {
    return parse(text);
  } catch (e) {
    throw badRequest(`The body is not valid JSON: ${(e as Error).message}`);
  }
}

export function stringifyFhirJson(value: unknown, space?: number): string {
  return stringify(value, undefined, space) ?? '';
}
