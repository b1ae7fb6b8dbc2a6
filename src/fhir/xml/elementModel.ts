import type { FhirVersion } from '../types';

/**
 * What the XML ⇄ JSON converters need to know about FHIR types, whatever the definitions they come from:
 * the elements of each complex type and backbone element in their defined order (XML requires that order,
 * http://hl7.org/fhir/R4/xml.html), which repeat, which are XML attributes, and for each JSON key / XML name
 * (they are the same: `valueQuantity`) the type behind it. R4 reads the StructureDefinitions, STU3 the
 * published JSON schema (no STU3 StructureDefinitions ship offline).
 */

/** The JSON type a primitive's value takes (http://hl7.org/fhir/R4/json.html#primitive). */
export type JsonPrimitive = 'boolean' | 'number' | 'string';

export type TypeRef =
  | { kind: 'primitive'; code: string; json: JsonPrimitive }
  /** Narrative.div: XHTML kept as text in JSON, as markup in XML. */
  | { kind: 'xhtml' }
  /** A nested resource (`contained`, `Bundle.entry.resource`, `Parameters.parameter.resource`). */
  | { kind: 'resource' }
  /** A datatype (`HumanName`) or a backbone element (`Patient.contact`): the key of its ComplexType. */
  | { kind: 'complex'; key: string };

export interface ElementDef {
  /** Name without `[x]`. */
  name: string;
  repeats: boolean;
  /** `Element.id` and `Extension.url` are XML attributes, not child elements. */
  attribute: boolean;
  /** Each name the element takes in JSON and XML with its type: one for most, one per type for `value[x]`. */
  variants: { key: string; type: TypeRef }[];
}

export interface ComplexType {
  key: string;
  /** In definition order. */
  elements: ElementDef[];
  /** JSON key / XML name → its element and type. */
  byKey: Map<string, { element: ElementDef; type: TypeRef }>;
}

export interface ElementModel {
  version: FhirVersion;
  /** A resource type (`Patient`), datatype (`HumanName`) or backbone element key; undefined when unknown. */
  complexType(key: string): ComplexType | undefined;
  /** Whether `name` is a resource type of this version (not an abstract one). */
  isResource(name: string): boolean;
}

/** The R4 JSON type of each primitive's value; everything else is a string. */
const NUMERIC = new Set(['decimal', 'integer', 'positiveInt', 'unsignedInt', 'integer64']);

export function jsonPrimitiveOf(code: string): JsonPrimitive {
  if (code === 'boolean' || code === 'http://hl7.org/fhirpath/System.Boolean') return 'boolean';
  if (NUMERIC.has(code) || code === 'http://hl7.org/fhirpath/System.Integer' || code === 'http://hl7.org/fhirpath/System.Decimal') return 'number';
  return 'string';
}

/** `value` + `Quantity` → `valueQuantity`. */
export function choiceKey(name: string, code: string): string {
  return name + code.charAt(0).toUpperCase() + code.slice(1);
}

export function complexTypeOf(key: string, elements: ElementDef[]): ComplexType {
  const byKey = new Map<string, { element: ElementDef; type: TypeRef }>();
  for (const element of elements) for (const v of element.variants) byKey.set(v.key, { element, type: v.type });
  return { key, elements, byKey };
}
