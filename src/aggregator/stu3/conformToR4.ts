import type { ComplexType, TypeRef } from '../../fhir/xml/elementModel';
import { fhirElementModel } from '../../fhir/xml/fhirElementModel';
import { aggregatedType } from '../aggregatedType';
import { addExtensions, type Json, listOf, move, stu3ExtensionUrl, valueExtension } from './stu3Extension';

/**
 * The element-by-element half of STU3 → R4, run after a type's own mapping (resourceMaps.ts) on what it left:
 * driven by the R4 and STU3 element models, not by code per type.
 * - datatypes whose shape changed are converted as HAPI's datatype converters do (Dosage30_40: `dose[x]`/
 *   `rate[x]` → `doseAndRate`; Money30_40: `code` → `currency`; Signature30_40: `who[x]` → `who`…);
 * - an element that repeats in R4 but not in STU3 becomes a list (Condition.stage, DiagnosticReport.category,
 *   Goal.target…); one that no longer repeats keeps its first value, the others go to a 3.0 extension;
 * - an element R4 does not have at all goes to its 3.0 extension (stu3Extension.ts) with its STU3 datatype,
 *   so nothing valid is dropped (HAPI drops some: Immunization.vaccinationProtocol, Observation.related of
 *   other kinds…; we keep them where a reader can find them).
 * Values are moved, never re-created: decimals and primitive extensions travel as they came.
 */
const r4 = () => fhirElementModel('R4');
const stu3 = () => fhirElementModel('STU3');

/**
 * Conforms `resource` (of STU3 type `type`, already mapped by its type's rules) to R4, in place. A type R4
 * renamed is walked against its R4 namesake; its extensions keep the STU3 path (`extension-ProcedureRequest.definition`).
 */
export function conformToR4(resource: Json, type: string): void {
  walk(resource, r4().complexType(aggregatedType(type)), stu3().complexType(type), type);
}

function stu3Child(parent: ComplexType | undefined, key: string): ComplexType | undefined {
  const type = parent?.byKey.get(key)?.type;
  return type?.kind === 'complex' ? stu3().complexType(type.key) : undefined;
}

function walk(node: Json, r4Type: ComplexType | undefined, stu3Type: ComplexType | undefined, path: string): void {
  if (!r4Type) return;
  convertDatatype(node, r4Type.key);
  const moved: Json[] = [];
  for (const key of Object.keys(node)) {
    if (key === 'resourceType' || key === 'extension' || key === 'modifierExtension') continue;
    const name = key.startsWith('_') ? key.slice(1) : key;
    const known = r4Type.byKey.get(name);
    if (!known || !fits(known.type, node[name])) {
      if (key.startsWith('_') && node[name] !== undefined) continue; // moved with its value
      moved.push(...toExtensions(node[name], node[`_${name}`], stu3Type?.byKey.get(name), `${path}.${stu3Type?.byKey.get(name)?.element.name ?? name}`));
      delete node[name];
      delete node[`_${name}`];
      continue;
    }
    if (key.startsWith('_')) continue;
    const elementPath = `${path}.${known.element.name}`;
    if (known.element.repeats && !Array.isArray(node[key])) {
      node[key] = [node[key]];
      if (node[`_${key}`] !== undefined && !Array.isArray(node[`_${key}`])) node[`_${key}`] = [node[`_${key}`]];
    } else if (!known.element.repeats && Array.isArray(node[key])) {
      const [first, ...rest] = node[key] as unknown[];
      const primitives = listOf(node[`_${key}`]);
      node[key] = first;
      if (primitives.length) node[`_${key}`] = primitives[0];
      moved.push(...toExtensions(rest, primitives.slice(1), stu3Type?.byKey.get(key), elementPath));
    }
    if (known.type.kind === 'complex') {
      const childR4 = r4().complexType(known.type.key);
      const childStu3 = stu3Child(stu3Type, key);
      for (const item of listOf(node[key])) if (item && typeof item === 'object') walk(item as Json, childR4, childStu3, elementPath);
    }
  }
  addExtensions(node, ...moved);
}

/** Whether a value has the JSON shape of the R4 type (DeviceRequest.intent: a CodeableConcept in STU3, a code in R4). */
function fits(type: TypeRef, value: unknown): boolean {
  const first = Array.isArray(value) ? value.find((v) => v !== null) : value;
  if (first === undefined || first === null) return true;
  const isObject = typeof first === 'object' && Object.getPrototypeOf(first) === Object.prototype;
  return type.kind === 'primitive' || type.kind === 'xhtml' ? !isObject : isObject;
}

/** STU3 values of one element that has no R4 home → its 3.0 extensions, one per value. */
function toExtensions(values: unknown, primitives: unknown, stu3Element: { type: TypeRef } | undefined, path: string): Json[] {
  const list = listOf(values);
  const prims = listOf(primitives);
  const out: Json[] = [];
  for (let i = 0; i < Math.max(list.length, prims.length); i++) {
    const extension = extensionOf(stu3ExtensionUrl(path), stu3Element?.type, list[i], prims[i] ?? undefined, path);
    if (extension) out.push(extension);
  }
  return out;
}

/** One STU3 value as an extension: typed by the STU3 model; a backbone element becomes a complex extension. */
function extensionOf(url: string, type: TypeRef | undefined, value: unknown, primitive: unknown, path: string): Json | undefined {
  if ((value === undefined || value === null) && !primitive) return undefined;
  if (type?.kind === 'primitive') return valueExtension(url, type.code, value, primitive);
  if (type?.kind === 'complex' && value && typeof value === 'object') {
    const datatype = r4().complexType(type.key);
    if (datatype && /^[A-Z][A-Za-z]*$/.test(type.key)) {
      walk(value as Json, datatype, stu3().complexType(type.key), path);
      return valueExtension(url, type.key, value);
    }
    return backboneExtension(url, value as Json, stu3().complexType(type.key), path);
  }
  // Not in the STU3 model either (a key our own mapping left): keep it by its JSON type.
  if (typeof value === 'boolean') return valueExtension(url, 'boolean', value, primitive);
  if (typeof value === 'string') return valueExtension(url, 'string', value, primitive);
  return valueExtension(url, 'string', JSON.stringify(value));
}

/** A backbone element (Immunization.vaccinationProtocol…) as a complex extension: one nested extension per child value. */
function backboneExtension(url: string, value: Json, type: ComplexType | undefined, path: string): Json {
  const children: Json[] = [];
  let id: unknown;
  for (const key of Object.keys(value)) {
    if (key === 'id') id = value.id;
    else if (key === 'extension' || key === 'modifierExtension') children.push(...listOf<Json>(value[key]));
    else if (key.startsWith('_') && value[key.slice(1)] !== undefined) continue;
    else {
      const name = key.startsWith('_') ? key.slice(1) : key;
      const child = type?.byKey.get(name);
      const childName = child?.element.name ?? name;
      const list = listOf(value[name]);
      const prims = listOf(value[`_${name}`]);
      for (let i = 0; i < Math.max(list.length, prims.length); i++) {
        const extension = extensionOf(childName, child?.type, list[i], prims[i] ?? undefined, `${path}.${childName}`);
        if (extension) children.push(extension);
      }
    }
  }
  return { ...(id !== undefined ? { id } : {}), url, extension: children };
}

const ISO_4217 = 'urn:iso:std:iso:4217';

/** The datatypes whose shape changed between STU3 and R4 (HAPI's datatypes30_40 converters). */
function convertDatatype(node: Json, type: string): void {
  if (type === 'Dosage') {
    const doseAndRate: Json = {};
    for (const key of Object.keys(node)) {
      const m = /^(_?)(dose|rate)(Range|Quantity|SimpleQuantity|Ratio)$/.exec(key);
      if (!m) continue;
      doseAndRate[`${m[1]}${m[2]}${m[3] === 'SimpleQuantity' ? 'Quantity' : m[3]}`] = node[key];
      delete node[key];
    }
    if (Object.keys(doseAndRate).length) node.doseAndRate = [doseAndRate];
  } else if (type === 'Money') {
    move(node, 'code', 'currency');
    // The currency code implies ISO 4217; any other system is kept (as an extension) by the walk.
    if (node.system === ISO_4217) delete node.system;
  } else if (type === 'Signature') {
    if (node.whoUri !== undefined) node.who = { reference: node.whoUri };
    move(node, 'whoReference', 'who');
    delete node.whoUri;
    if (node.onBehalfOfUri !== undefined) node.onBehalfOf = { reference: node.onBehalfOfUri };
    move(node, 'onBehalfOfReference', 'onBehalfOf');
    delete node.onBehalfOfUri;
    move(node, 'contentType', 'sigFormat');
    move(node, 'blob', 'data');
  }
}
