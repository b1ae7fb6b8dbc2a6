import { isResourceType, readProfiles, type ProfilesFile } from './definitions';
import type { FhirVersion } from './types';

/**
 * What HL7's published JSON schema leaves out of FHIR's own rules (R4 json.html, datatypes.html, and the
 * StructureDefinitions), added to the schema's definitions before ajv compiles them:
 *
 * - `_x` twins: a primitive element may carry an id and extensions in `_x` anywhere (json.html#primitive);
 *   the schema lacks them for canonicals (`_profile`, `_targetProfile`, `_derivedFrom`…) and a resource's
 *   `_id`. Repeating primitives' twins hold `null` where an entry has none.
 * - No empty arrays, empty objects or `null` (json.html: "an element SHALL have a value or children").
 * - Primitive formats: `base64Binary` (no pattern in the schema); decimals held as FhirDecimal; the string
 *   patterns of string and code are XML Schema's, where `\s` is only space, tab, CR and LF (JavaScript's
 *   `\s` also takes a no-break space, so valid text would be refused).
 * - Required elements (min cardinality ≥ 1) from the version's StructureDefinitions (the schemas require
 *   only `resourceType`; STU3's `required` lists even omit required primitives such as Observation.status).
 */
export const DECIMAL = 'fhirDecimal';
export const BASE64 = 'fhirBase64';
export const REQUIRED = 'fhirRequired';

type Node = Record<string, unknown>;
type Definitions = Record<string, Node>;

const DECIMAL_PATTERN = '^-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?$';
const XSD_STRING_PATTERN = '^[ \\r\\n\\t\\S]+$';
const XSD_CODE_PATTERN = '^[^\\s]+(\\s[^\\s]+)*$';

const cap = (s: string) => s[0].toUpperCase() + s.slice(1);

/** The definitions of `schema`, adapted (a new object; the input is not changed). */
export function adaptDefinitions(version: FhirVersion, source: Definitions): Definitions {
  const definitions: Definitions = {};
  // The decimal pattern differs between versions' schemas: take this one's own.
  const decimalPattern = (source.decimal?.pattern as string | undefined) ?? DECIMAL_PATTERN;
  for (const [name, def] of Object.entries(source)) definitions[name] = fixPrimitive(def, decimalPattern);
  definitions.base64Binary = { type: 'string', [BASE64]: true, description: 'A stream of bytes, base64 encoded' };
  const primitive = (schema: Node): boolean => {
    if (typeof schema.$ref === 'string') {
      const target = definitions[schema.$ref.replace('#/definitions/', '')];
      return !!target && target !== schema && !target.properties && (target.type !== undefined || target[DECIMAL] === true || target[BASE64] === true);
    }
    return !schema.properties && (typeof schema.type === 'string' || schema[DECIMAL] === true) && schema.type !== 'array' && schema.type !== 'object';
  };
  for (const [name, def] of Object.entries(definitions)) {
    const properties = def.properties as Record<string, Node> | undefined;
    if (!properties) continue;
    const isResource = isResourceType(version, name);
    const out: Record<string, Node> = {};
    for (const [key, schema] of Object.entries(properties)) out[key] = schema.type === 'array' ? { ...schema, minItems: 1 } : schema;
    for (const [key, schema] of Object.entries(properties)) {
      if (key.startsWith('_') || key === 'resourceType' || (key === 'id' && !isResource) || (name === 'Extension' && key === 'url')) continue;
      const isArray = schema.type === 'array';
      const item = (isArray ? schema.items : schema) as Node | undefined;
      if (!item || !primitive(item)) continue;
      // A repeating primitive's twin lists `null` for an entry without id or extensions.
      out[`_${key}`] = isArray ? { type: 'array', minItems: 1, items: { anyOf: [{ type: 'null' }, { $ref: '#/definitions/Element' }] } } : { $ref: '#/definitions/Element' };
    }
    definitions[name] = { ...def, type: 'object', minProperties: 1, properties: out };
  }
  for (const [name, alternatives] of requiredElements(version, source)) {
    const def = definitions[name];
    if (def?.properties) definitions[name] = { ...def, [REQUIRED]: alternatives };
  }
  return definitions;
}

function fixPrimitive(node: Node, decimalPattern: string): Node {
  if (node.type === 'number' && node.pattern === decimalPattern) return { [DECIMAL]: true, ...(node.description ? { description: node.description } : {}) };
  if (node.pattern === XSD_STRING_PATTERN) return { ...node, pattern: '^[\\s\\S]+$' };
  if (node.pattern === XSD_CODE_PATTERN) return { ...node, pattern: '^[^ \\t\\r\\n]+([ \\t\\r\\n][^ \\t\\r\\n]+)*$' };
  const properties = node.properties as Record<string, Node> | undefined;
  if (!properties) return node;
  const fixed: Record<string, Node> = {};
  for (const [key, value] of Object.entries(properties)) fixed[key] = fixPrimitive(value, decimalPattern);
  return { ...node, properties: fixed };
}

interface SdElement {
  path: string;
  min?: number;
  contentReference?: string;
  type?: { code: string }[];
}

/**
 * Schema definition name → the required elements of that definition, each as the JSON keys that satisfy
 * it (`status` or `_status`; a choice `value[x]`: `valueQuantity`, `valueString`…).
 */
function requiredElements(version: FhirVersion, definitions: Definitions): Map<string, string[][]> {
  const out = new Map<string, string[][]>();
  for (const file of ['profiles-types.json', 'profiles-resources.json'] as ProfilesFile[]) {
    const bundle = readProfiles<{ entry: { resource: { resourceType: string; kind?: string; derivation?: string; snapshot?: { element: SdElement[] } } }[] }>(version, file);
    for (const { resource } of bundle.entry) {
      if (resource.resourceType !== 'StructureDefinition' || resource.derivation === 'constraint' || !resource.snapshot) continue;
      if (resource.kind !== 'resource' && resource.kind !== 'complex-type') continue;
      for (const e of resource.snapshot.element) {
        const parts = e.path.split('.');
        if (parts.length < 2 || !e.min || e.min < 1) continue;
        const last = parts[parts.length - 1];
        const owner = definitionOf(definitions, parts.slice(0, -1));
        if (!owner) continue;
        const keys = last.endsWith('[x]') ? (e.type ?? []).flatMap((t) => [`${last.slice(0, -3)}${cap(t.code)}`, `_${last.slice(0, -3)}${cap(t.code)}`]) : [last, `_${last}`];
        const list = out.get(owner) ?? [];
        list.push(keys);
        out.set(owner, list);
      }
    }
  }
  return out;
}

/**
 * The schema definition an element path leads to (`Bundle.entry.request` → `Bundle_Request`), found by
 * following the schema's own references: backbone names repeat within a type (`CodeSystem.property` and
 * `CodeSystem.concept.property` are different definitions).
 */
function definitionOf(definitions: Definitions, parts: string[]): string | undefined {
  let name = parts[0];
  for (const part of parts.slice(1)) {
    const property = (definitions[name]?.properties as Record<string, Node> | undefined)?.[part];
    const target = ((property?.items as Node | undefined) ?? property)?.$ref;
    if (typeof target !== 'string') return undefined;
    name = target.replace('#/definitions/', '');
  }
  return definitions[name] ? name : undefined;
}
