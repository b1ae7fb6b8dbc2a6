/**
 * Extensions for STU3 content that has no R4 home, named as HL7's cross-version extensions and HAPI's
 * `VersionConvertor_30_40` name them: `http://hl7.org/fhir/3.0/StructureDefinition/extension-<Type.path>`
 * (http://hl7.org/fhir/R4/versions.html#extensions). The value keeps the STU3 datatype (`valueCodeableConcept`,
 * `valueBoolean`…); a backbone element becomes a complex extension, one nested extension per child, named after it.
 */
export type Json = Record<string, unknown>;

export const STU3_EXTENSION_BASE = 'http://hl7.org/fhir/3.0/StructureDefinition/extension-';

/** `Immunization.notGiven` → its 3.0 extension URL. */
export const stu3ExtensionUrl = (path: string): string => `${STU3_EXTENSION_BASE}${path}`;

const capitalised = (code: string) => code.charAt(0).toUpperCase() + code.slice(1);

/** `{ url, value<Type>: value }` (with the primitive's `_value<Type>` when it carries an id or extensions). */
export function valueExtension(url: string, typeCode: string, value: unknown, primitiveElement?: unknown): Json {
  const key = `value${capitalised(typeCode)}`;
  return { url, ...(value !== undefined && value !== null ? { [key]: value } : {}), ...(primitiveElement ? { [`_${key}`]: primitiveElement } : {}) };
}

/** Appends extensions to `target.extension`, creating it when needed. */
export function addExtensions(target: Json, ...extensions: Json[]): void {
  if (!extensions.length) return;
  target.extension = [...((target.extension as Json[] | undefined) ?? []), ...extensions];
}

/** The JSON value of a key as a list (a single value, an array, or nothing). */
export const listOf = <T = unknown>(value: unknown): T[] => (value === undefined || value === null ? [] : Array.isArray(value) ? (value as T[]) : [value as T]);

/** Renames `from` to `to` (with its `_from` primitive element) unless `to` is already set. */
export function move(node: Json, from: string, to: string): void {
  if (node[from] === undefined && node[`_${from}`] === undefined) return;
  if (node[to] === undefined && node[`_${to}`] === undefined) {
    if (node[from] !== undefined) node[to] = node[from];
    if (node[`_${from}`] !== undefined) node[`_${to}`] = node[`_${from}`];
    delete node[from];
    delete node[`_${from}`];
  }
}
