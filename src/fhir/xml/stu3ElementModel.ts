import { jsonSchema } from '../definitions';
import { complexTypeOf, jsonPrimitiveOf, type ComplexType, type ElementDef, type ElementModel, type TypeRef } from './elementModel';

/**
 * The STU3 element model from HL7's published STU3 JSON schema (`src/fhir/stu3/fhir.schema.json.gz`): no
 * STU3 StructureDefinitions ship offline, so the order of elements is the order of each definition's
 * properties (the schema was generated from the StructureDefinitions in element order, inherited elements
 * first), and the choices of `value[x]` are separate properties (`valueQuantity`, `valueString`, …) next to
 * each other. `_x` properties are the primitives' id/extension slots, not elements. Backbone elements are
 * definitions of their own (`Patient_Contact`); `ResourceList` is a nested resource.
 */
interface PropertySchema {
  $ref?: string;
  type?: string;
  pattern?: string;
  enum?: string[];
  items?: PropertySchema;
  const?: string;
}

/** Codes with a required binding, and the choices of `Extension.value[x]`, are written out inline. */
function inlinePrimitive(p: PropertySchema): TypeRef | undefined {
  if (p.enum) return { kind: 'primitive', code: 'code', json: 'string' };
  if (p.type === 'boolean') return { kind: 'primitive', code: 'boolean', json: 'boolean' };
  if (p.type === 'number') return { kind: 'primitive', code: p.pattern?.includes('\\.') ? 'decimal' : 'integer', json: 'number' };
  if (p.type === 'string') return { kind: 'primitive', code: 'string', json: 'string' };
  return undefined;
}

export function stu3ElementModel(): ElementModel {
  const definitions = jsonSchema('STU3').definitions as Record<string, { type?: string; properties?: Record<string, PropertySchema> }>;
  const resources = new Set(Object.keys(jsonSchema('STU3').discriminator?.mapping ?? {}));

  const typeOf = (name: string): TypeRef => {
    if (name === 'ResourceList') return { kind: 'resource' };
    if (name === 'xhtml') return { kind: 'xhtml' };
    const def = definitions[name];
    if (def && !def.properties && def.type) return { kind: 'primitive', code: name, json: jsonPrimitiveOf(name) };
    return { kind: 'complex', key: name };
  };

  const types = new Map<string, ComplexType>();
  return {
    version: 'STU3',
    complexType(key) {
      let type = types.get(key);
      if (!type) {
        const properties = definitions[key]?.properties;
        if (!properties) return undefined;
        const isResource = 'resourceType' in properties;
        const elements: ElementDef[] = [];
        for (const [name, p] of Object.entries(properties)) {
          if (name === 'resourceType' || name.startsWith('_')) continue;
          const item = p.type === 'array' && p.items ? p.items : p;
          const ref = item.$ref?.replace('#/definitions/', '');
          const type = ref ? typeOf(ref) : inlinePrimitive(item);
          if (!type) continue;
          // The schema types Element.id as a string and Extension.url as a uri: in XML both are attributes.
          const attribute = (name === 'id' && !isResource) || (name === 'url' && key === 'Extension');
          elements.push({ name, repeats: p.type === 'array', attribute, variants: [{ key: name, type }] });
        }
        type = complexTypeOf(key, elements);
        types.set(key, type);
      }
      return type;
    },
    isResource: (name) => resources.has(name),
  };
}
