import { readProfiles, resourceTypes } from '../fhir/definitions';
import { searchParameterMap } from '../fhir/searchParameters';
import type { FhirVersion } from '../fhir/types';

/**
 * The shape of every datatype and resource of a FHIR version (R4, or STU3 for STU3 endpoints' own
 * `$graphql`), read once per version from its StructureDefinitions, in the form the GraphQL schema
 * generator needs: named types with their fields (backbone elements become types of their own, `value[x]`
 * becomes one field per type as the FHIR GraphQL spec names them).
 */
export type Kind = 'primitive' | 'complex' | 'resource' | 'backbone';

export interface FieldModel {
  name: string;
  /** FHIR type name (primitive or complex), a backbone type name, or 'Resource'. */
  type: string;
  list: boolean;
  primitive: boolean;
  /** The element's path in the definitions (`Patient.name`, `Observation.value` for valueQuantity…): FHIRPath's type context. */
  path: string;
}

export interface TypeModel {
  name: string;
  kind: Kind;
  fields: FieldModel[];
}

interface ElementDef {
  path: string;
  max?: string;
  type?: { code: string }[];
  contentReference?: string;
}

interface StructureDefinition {
  resourceType: string;
  id: string;
  kind: string;
  abstract?: boolean;
  derivation?: string;
  type: string;
  snapshot?: { element: ElementDef[] };
}

/** Constraint profiles that are their base type on the wire. */
const ALIASES: Record<string, string> = { SimpleQuantity: 'Quantity', MoneyQuantity: 'Money' };

export const PRIMITIVES = new Set([
  'base64Binary',
  'boolean',
  'canonical',
  'code',
  'date',
  'dateTime',
  'decimal',
  'id',
  'instant',
  'integer',
  'markdown',
  'oid',
  'positiveInt',
  'string',
  'time',
  'unsignedInt',
  'uri',
  'url',
  'uuid',
  'xhtml',
]);

const cap = (s: string) => s[0].toUpperCase() + s.slice(1);

function fhirType(code: string): string {
  if (code.startsWith('http://hl7.org/fhirpath/System.')) return 'string';
  return ALIASES[code] ?? code;
}

export interface FhirModel {
  types: Map<string, TypeModel>;
  resources: string[];
  /** Reference search parameters by source type, with the types they can point to. */
  referenceParams: Map<string, { code: string; targets: string[] }[]>;
}

/**
 * Whose search parameters the reverse references of a version's model take. R4's types also serve /graphql's
 * `XList(_endpoint: <STU3 endpoint>)` (searchArguments.ts), so R4's model takes both versions'; STU3's model
 * serves STU3 endpoints alone.
 */
const REFERENCE_VERSIONS: Record<FhirVersion, FhirVersion[]> = { R4: ['R4', 'STU3'], STU3: ['STU3'] };

const models = new Map<FhirVersion, FhirModel>();

export function fhirModel(version: FhirVersion = 'R4'): FhirModel {
  const model = models.get(version) ?? buildModel(version);
  models.set(version, model);
  return model;
}

type Profiles = { entry: { resource: StructureDefinition }[] };

function buildModel(version: FhirVersion): FhirModel {
  const types = new Map<string, TypeModel>();
  const definitions = [...readProfiles<Profiles>(version, 'profiles-types.json').entry, ...readProfiles<Profiles>(version, 'profiles-resources.json').entry]
    .map((e) => e.resource)
    .filter((r) => r.resourceType === 'StructureDefinition' && r.derivation !== 'constraint');
  const resources = new Set(resourceTypes(version));
  const wanted = definitions.filter((sd) => (sd.kind === 'complex-type' && !sd.abstract) || (sd.kind === 'resource' && resources.has(sd.id)) || sd.id === 'Element');

  for (const sd of wanted) {
    const elements = sd.snapshot?.element ?? [];
    const byPath = new Map(elements.map((e) => [e.path, e]));
    // Backbone paths become types: Observation.component → ObservationComponent.
    const typeNameOf = (path: string) => {
      if (path === sd.id) return sd.id;
      return path.split('.').map(cap).join('');
    };
    const build = (path: string, kind: Kind) => {
      const name = typeNameOf(path);
      if (types.has(name)) return name;
      const fields: FieldModel[] = [];
      const type: TypeModel = { name, kind, fields };
      types.set(name, type);
      const depth = path.split('.').length;
      for (const e of elements) {
        const parts = e.path.split('.');
        if (parts.length !== depth + 1 || !e.path.startsWith(`${path}.`)) continue;
        const raw = parts[depth];
        const list = e.max === '*' || (e.max !== undefined && e.max !== '1' && e.max !== '0');
        if (e.max === '0') continue;
        if (e.contentReference) {
          const target = e.contentReference.replace(/^.*#/, '');
          const targetName = byPath.has(target) ? build(target, 'backbone') : typeNameOf(target);
          fields.push({ name: raw, type: targetName, list, primitive: false, path: e.path });
          continue;
        }
        const codes = (e.type ?? []).map((t) => fhirType(t.code));
        if (raw.endsWith('[x]')) {
          const base = raw.slice(0, -3);
          for (const code of codes) fields.push({ name: `${base}${cap(code)}`, type: code, list, primitive: PRIMITIVES.has(code), path: e.path.slice(0, -3) });
          continue;
        }
        const code = codes[0] ?? 'string';
        if (code === 'BackboneElement' || (code === 'Element' && elements.some((c) => c.path.startsWith(`${e.path}.`)))) {
          fields.push({ name: raw, type: build(e.path, 'backbone'), list, primitive: false, path: e.path });
        } else {
          fields.push({ name: raw, type: code, list, primitive: PRIMITIVES.has(code), path: e.path });
        }
      }
      return name;
    };
    if (sd.kind === 'primitive-type') continue;
    build(sd.id, sd.kind === 'resource' ? 'resource' : 'complex');
  }

  // Reverse references: the reference parameters of the versions this model serves (R4's: R4's and
  // STU3's, such as Condition `context`), each with the targets that exist here.
  const referenceParams = new Map<string, { code: string; targets: string[] }[]>();
  for (const type of resources) {
    const refs = new Map<string, Set<string>>();
    for (const searched of REFERENCE_VERSIONS[version]) {
      for (const p of searchParameterMap(type, searched).values()) {
        if (p.type !== 'reference') continue;
        const targets = refs.get(p.code) ?? new Set<string>();
        for (const t of p.target) if (resources.has(t)) targets.add(t);
        refs.set(p.code, targets);
      }
    }
    referenceParams.set(
      type,
      [...refs].map(([code, targets]) => ({ code, targets: [...targets] })),
    );
  }
  return { types, resources: [...resources].sort(), referenceParams };
}
