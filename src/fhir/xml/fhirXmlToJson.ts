import { fhirNumber } from '../losslessJson';
import { badRequest } from '../outcome';
import type { FhirVersion, Resource } from '../types';
import type { ComplexType, ElementModel, TypeRef } from './elementModel';
import { fhirElementModel } from './fhirElementModel';
import { parseXmlTree, XHTML_NS, type XmlElement } from './parseXmlTree';

/**
 * FHIR XML → FHIR JSON (http://hl7.org/fhir/R4/xml.html, http://hl7.org/fhir/R4/json.html), driven by the
 * element model of the version: primitives' `value` attributes become JSON booleans, numbers or strings as
 * their type says; their `id` attribute and `extension` children go to the `_name` twin (arrays padded with
 * nulls for repeating primitives); `value[x]` keeps its typed name; nested resources (`contained`,
 * `Bundle.entry.resource`, `Parameters.parameter.resource`) are unwrapped; the narrative `div` becomes its
 * XHTML markup as written. Anything that is not FHIR (unknown elements, text, bad values) is a 400 naming
 * where it is. Comments and `xsi:` attributes carry no FHIR content and are dropped.
 *
 * Numbers keep their digits by default (`fhirNumber`: `1.50` stays `1.50` through `stringifyFhirJson`);
 * `numbers: 'native'` gives JavaScript numbers, as `JSON.parse` would.
 */
export const FHIR_NS = 'http://hl7.org/fhir';

export interface FhirXmlToJsonOptions {
  numbers?: 'lossless' | 'native';
  /** Deepest element nesting accepted (a request body: MAX_BODY_DEPTH); unlimited when absent. */
  maxDepth?: number;
}

const NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

export function fhirXmlToJson(text: string, version: FhirVersion, options: FhirXmlToJsonOptions = {}): Resource {
  const root = parseXmlTree(text, options.maxDepth);
  return new XmlReader(fhirElementModel(version), options.numbers ?? 'lossless').resource(root, '');
}

class XmlReader {
  constructor(
    private readonly model: ElementModel,
    private readonly numbers: 'lossless' | 'native',
  ) {}

  resource(el: XmlElement, at: string): Resource {
    const path = at ? `${at}.${el.name}` : el.name;
    if (el.uri !== FHIR_NS) throw badRequest(`<${el.name}> (line ${el.line}) is not in the FHIR namespace ${FHIR_NS}`, at || el.name);
    const type = this.model.isResource(el.name) ? this.model.complexType(el.name) : undefined;
    if (!type) throw badRequest(`'${el.name}' (line ${el.line}) is not a FHIR ${this.model.version} resource type`, at || el.name);
    const out: Resource = { resourceType: el.name };
    this.fill(out, el, type, path);
    return out;
  }

  private fill(out: Record<string, unknown>, el: XmlElement, type: ComplexType, path: string): void {
    if (el.hasText) throw badRequest(`<${el.name}> (line ${el.line}) has text content: FHIR XML carries values in 'value' attributes`, path);
    for (const [name, value] of el.attributes) {
      const entry = type.byKey.get(name);
      if (!entry?.element.attribute) throw badRequest(`Unknown attribute '${name}' on <${el.name}> (line ${el.line})`, path);
      out[name] = value;
    }
    const groups = new Map<string, XmlElement[]>();
    for (const child of el.children) {
      const entry = type.byKey.get(child.name);
      if (!entry || entry.element.attribute) throw badRequest(`Unknown element <${child.name}> (line ${child.line}) in ${path}`, `${path}.${child.name}`);
      const ns = entry.type.kind === 'xhtml' ? XHTML_NS : FHIR_NS;
      if (child.uri !== ns) throw badRequest(`<${child.name}> (line ${child.line}) must be in the namespace ${ns}`, `${path}.${child.name}`);
      const list = groups.get(child.name) ?? [];
      list.push(child);
      groups.set(child.name, list);
    }
    for (const element of type.elements) {
      const used = element.variants.filter((v) => groups.has(v.key));
      if (used.length === 0) continue;
      if (used.length > 1) throw badRequest(`${path} has more than one of ${used.map((v) => v.key).join(', ')}`, `${path}.${element.name}`);
      const { key, type: ref } = used[0];
      const items = groups.get(key) ?? [];
      if (!element.repeats && items.length > 1) throw badRequest(`<${key}> repeats (line ${items[1].line}) but ${path}.${key} takes one value`, `${path}.${key}`);
      this.element(out, key, items, ref, element.repeats, `${path}.${key}`);
    }
  }

  private element(out: Record<string, unknown>, key: string, items: XmlElement[], ref: TypeRef, repeats: boolean, path: string): void {
    const one = <T>(values: T[]): T | T[] => (repeats ? values : values[0]);
    switch (ref.kind) {
      case 'primitive': {
        const values = items.map((item, i) => this.primitiveValue(item, ref, repeats ? `${path}[${i}]` : path));
        const extras = items.map((item, i) => this.primitiveExtras(item, repeats ? `${path}[${i}]` : path));
        if (values.some((v) => v !== null)) out[key] = one(values);
        if (extras.some((x) => x !== null)) out[`_${key}`] = one(extras);
        return;
      }
      case 'xhtml':
        out[key] = one(items.map((item) => item.markup ?? ''));
        return;
      case 'resource':
        out[key] = one(
          items.map((item, i) => {
            const at = repeats ? `${path}[${i}]` : path;
            if (item.hasText || item.attributes.size > 0 || item.children.length !== 1) throw badRequest(`<${key}> (line ${item.line}) must hold exactly one resource`, at);
            return this.resource(item.children[0], at);
          }),
        );
        return;
      case 'complex': {
        const type = this.model.complexType(ref.key);
        if (!type) throw new Error(`No definition for ${ref.key}`);
        out[key] = one(
          items.map((item, i) => {
            const value: Record<string, unknown> = {};
            this.fill(value, item, type, repeats ? `${path}[${i}]` : path);
            return value;
          }),
        );
      }
    }
  }

  private primitiveValue(item: XmlElement, ref: Extract<TypeRef, { kind: 'primitive' }>, path: string): unknown {
    const raw = item.attributes.get('value');
    if (raw === undefined) return null;
    if (ref.json === 'boolean') {
      if (raw !== 'true' && raw !== 'false') throw badRequest(`${path}: '${raw}' is not a boolean (line ${item.line})`, path);
      return raw === 'true';
    }
    if (ref.json === 'number') {
      if (!NUMBER.test(raw)) throw badRequest(`${path}: '${raw}' is not a valid ${ref.code} (line ${item.line})`, path);
      return this.numbers === 'lossless' ? fhirNumber(raw) : Number(raw);
    }
    return raw;
  }

  /** A primitive's `id` and `extension`s, which JSON carries in the `_name` twin; null when it has neither. */
  private primitiveExtras(item: XmlElement, path: string): Record<string, unknown> | null {
    if (item.hasText) throw badRequest(`<${item.name}> (line ${item.line}) has text content: FHIR XML carries values in 'value' attributes`, path);
    const extras: Record<string, unknown> = {};
    for (const [name, value] of item.attributes) {
      if (name === 'id') extras.id = value;
      else if (name !== 'value') throw badRequest(`Unknown attribute '${name}' on <${item.name}> (line ${item.line})`, path);
    }
    const extension = this.model.complexType('Extension');
    if (!extension) throw new Error('No definition for Extension');
    const extensions = item.children.map((child, i) => {
      if (child.name !== 'extension' || child.uri !== FHIR_NS)
        throw badRequest(`<${child.name}> (line ${child.line}) is not allowed in the primitive ${path}: only extensions are`, path);
      const value: Record<string, unknown> = {};
      this.fill(value, child, extension, `${path}.extension[${i}]`);
      return value;
    });
    if (extensions.length > 0) extras.extension = extensions;
    if (item.attributes.get('value') === undefined && extensions.length === 0) {
      throw badRequest(`<${item.name}> (line ${item.line}) has neither a value nor extensions`, path);
    }
    return Object.keys(extras).length > 0 ? extras : null;
  }
}
