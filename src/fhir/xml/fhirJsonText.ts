/** FHIR JSON text with exact decimals: see ../losslessJson.ts (kept here for the XML module's callers). */
export { parseFhirJson, stringifyFhirJson } from '../losslessJson';
