import { OperationOutcomeError, operationOutcome } from '../fhir/outcome';
import type { FhirVersion } from '../fhir/types';
import { stringifyFhirJson } from '../fhir/losslessJson';
import { fhirJsonToXml, fhirXmlToJson } from '../fhir/xml';

/**
 * FHIR's two wire formats at the REST door (http://hl7.org/fhir/R4/http.html#mime-type): which one to answer
 * in (`_format` wins over `Accept`; with neither, or a wildcard, the format the client wrote in), reading an
 * XML body into the JSON the routes work on, and writing a response body in the chosen format.
 */
export const JSON_TYPES = ['application/fhir+json', 'application/json', 'application/json-patch+json'];
/** `application/xml+fhir` is the DSTU2 name older clients still send. */
export const XML_TYPES = ['application/fhir+xml', 'application/xml', 'text/xml', 'application/xml+fhir'];

const MEDIA_TYPES: Record<string, string> = {
  json: 'application/fhir+json',
  'application/fhir+json': 'application/fhir+json',
  'application/json+fhir': 'application/fhir+json',
  'application/json': 'application/json',
  'text/json': 'application/json',
  xml: 'application/fhir+xml',
  'application/fhir+xml': 'application/fhir+xml',
  'application/xml+fhir': 'application/fhir+xml',
  'application/xml': 'application/xml',
  'text/xml': 'application/xml',
};

export function isXmlMediaType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && XML_TYPES.includes(mediaType.split(';')[0].trim().toLowerCase());
}

/**
 * The media type to answer with: `_format` if given, else the best `Accept` range by quality; `preferred`
 * for no preference or a wildcard. 406 when neither FHIR JSON nor FHIR XML is acceptable (e.g. RDF).
 */
export function negotiate(format: string | undefined, accept: string | undefined, preferred = 'application/fhir+json'): string {
  if (format !== undefined) {
    const type = MEDIA_TYPES[format.split(';')[0].trim().toLowerCase()];
    if (!type) throw notAcceptable(`_format '${format}' is not supported: use json or xml`, ['_format']);
    return type;
  }
  if (!accept || accept.trim() === '') return preferred;
  const ranges = accept
    .split(',')
    .map((range, i) => {
      const [type, ...params] = range.split(';').map((s) => s.trim().toLowerCase());
      const q = params.find((p) => p.startsWith('q='));
      return { type, q: q ? Number(q.slice(2)) : 1, i };
    })
    .filter((r) => r.q > 0)
    .sort((a, b) => b.q - a.q || a.i - b.i);
  for (const { type } of ranges) {
    if (type === '*/*' || type === 'application/*' || type === '') return preferred;
    const known = MEDIA_TYPES[type];
    if (known && type.includes('/')) return known;
  }
  throw notAcceptable(`Cannot answer in '${accept}': this server speaks application/fhir+json, application/json, application/fhir+xml and application/xml`);
}

function notAcceptable(diagnostics: string, expression?: string[]): OperationOutcomeError {
  return new OperationOutcomeError(406, operationOutcome([{ severity: 'error', code: 'not-supported', diagnostics, ...(expression ? { expression } : {}) }]));
}

/** An XML body as received: it is read once the endpoint, and so its FHIR version, is known. */
export class XmlBody {
  constructor(
    readonly text: string,
    /** MAX_BODY_DEPTH, applied to element nesting when it is read. */
    readonly maxDepth?: number,
  ) {}
}

/** The body the routes see: JSON as parsed, XML read into JSON; decimals exact in both (losslessJson.ts). */
export function requestBody(body: unknown, version: FhirVersion): unknown {
  if (!(body instanceof XmlBody)) return body;
  if (body.text.trim() === '') return undefined;
  return fhirXmlToJson(body.text, version, { maxDepth: body.maxDepth });
}

/** A response body in the negotiated format. Bodies that are no FHIR resource (`$graphql`) stay JSON. */
export function responsePayload(body: unknown, mediaType: string, version: FhirVersion, pretty: boolean): { type: string; payload: string } {
  const isResource = typeof body === 'object' && body !== null && typeof (body as { resourceType?: unknown }).resourceType === 'string';
  if (isXmlMediaType(mediaType) && isResource) return { type: mediaType, payload: fhirJsonToXml(body, version, { pretty }) };
  const type = isXmlMediaType(mediaType) ? 'application/json' : mediaType;
  return { type, payload: pretty ? stringifyFhirJson(body, 2) : stringifyFhirJson(body) };
}
