/**
 * FHIR XML ⇄ JSON for both FHIR versions, driven by the definitions (no I/O beyond reading them once).
 * See fhirXmlToJson and fhirJsonToXml for the rules implemented.
 */
export { fhirXmlToJson, FHIR_NS, type FhirXmlToJsonOptions } from './fhirXmlToJson';
export { fhirJsonToXml, type FhirJsonToXmlOptions } from './fhirJsonToXml';
export { parseFhirJson, stringifyFhirJson } from './fhirJsonText';
