import { isLosslessNumber } from 'lossless-json';
import type { FhirVersion } from '../types';
import type { ComplexType, ElementModel, TypeRef } from './elementModel';
import { fhirElementModel } from './fhirElementModel';
import { FHIR_NS } from './fhirXmlToJson';
import { XHTML_NS } from './parseXmlTree';

/**
 * FHIR JSON → FHIR XML (http://hl7.org/fhir/R4/xml.html), the inverse of `fhirXmlToJson`: elements in the
 * order of the definitions whatever the order of the JSON keys, primitives as `value` attributes with the
 * `id` and `extension`s of their `_name` twin (matched by position in repeating primitives), `Element.id`
 * and `Extension.url` as attributes, nested resources wrapped in their element, and the narrative `div`
 * written verbatim (given the XHTML namespace if the JSON left it out). Numbers are written as they are
 * held: a `LosslessNumber` keeps its digits (`1.50`), a JavaScript number is written as JSON would.
 *
 * The JSON is expected to be FHIR already (the server validates what it stores): a key that is no element
 * of its type is a programming error, thrown as a plain Error.
 */
export interface FhirJsonToXmlOptions {
  /** Indent nested elements by two spaces (the narrative is never re-indented). */
  pretty?: boolean;
  /** Start with an XML declaration (`<?xml version="1.0" encoding="UTF-8"?>`). Default true. */
  declaration?: boolean;
}

export function fhirJsonToXml(resource: unknown, version: FhirVersion, options: FhirJsonToXmlOptions = {}): string {
  const writer = new XmlWriter(fhirElementModel(version), options.pretty ?? false);
  if (options.declaration ?? true) writer.out.push('<?xml version="1.0" encoding="UTF-8"?>');
  writer.resource(resource, '', 0, true);
  return writer.out.join(options.pretty ? '\n' : '');
}

type Json = Record<string, unknown>;

/** Characters XML 1.0 cannot carry at all (FHIR strings exclude them too): written as U+FFFD. */
// eslint-disable-next-line no-control-regex
const NOT_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** An attribute value that reads back exactly: line ends and tabs as references, not normalised to spaces. */
export function escapeAttribute(value: string): string {
  return value.replace(NOT_XML, '\uFFFD').replace(/[&<>"\t\n\r]/g, (c) => ATTRIBUTE_ESCAPES[c]);
}

const ATTRIBUTE_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\t': '&#9;', '\n': '&#10;', '\r': '&#13;' };

class XmlWriter {
  readonly out: string[] = [];

  constructor(
    private readonly model: ElementModel,
    private readonly pretty: boolean,
  ) {}

  private line(depth: number, text: string): void {
    this.out.push(this.pretty ? '  '.repeat(depth) + text : text);
  }

  resource(value: unknown, path: string, depth: number, root: boolean): void {
    const resource = value as Json;
    const name = resource?.resourceType;
    const type = typeof name === 'string' && this.model.isResource(name) ? this.model.complexType(name) : undefined;
    if (!type) throw new Error(`${path || 'the root'}: '${String(name)}' is not a FHIR ${this.model.version} resource type`);
    const at = path ? `${path}.${name}` : String(name);
    this.complex(String(name), resource, type, at, depth, root ? ` xmlns="${FHIR_NS}"` : '');
  }

  private complex(tag: string, value: Json, type: ComplexType, path: string, depth: number, extraAttributes = ''): void {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${path} should be an object`);
    for (const key of Object.keys(value)) {
      if (key === 'resourceType') continue;
      const entry = type.byKey.get(key.startsWith('_') ? key.slice(1) : key);
      if (!entry || (key.startsWith('_') && entry.type.kind !== 'primitive')) throw new Error(`${path}.${key} is not an element of ${type.key}`);
    }
    let attributes = extraAttributes;
    const body: XmlElementWrite[] = [];
    for (const element of type.elements) {
      for (const { key, type: ref } of element.variants) {
        const v = value[key];
        const x = value[`_${key}`];
        if (v === undefined && x === undefined) continue;
        if (element.attribute) {
          if (v !== undefined && v !== null) attributes += ` ${key}="${escapeAttribute(String(v))}"`;
          continue;
        }
        body.push({ key, value: v, extras: x, ref, path: `${path}.${key}` });
      }
    }
    if (body.length === 0) {
      this.line(depth, `<${tag}${attributes}/>`);
      return;
    }
    this.line(depth, `<${tag}${attributes}>`);
    for (const item of body) this.element(item, depth + 1);
    this.line(depth, `</${tag}>`);
  }

  private element({ key, value, extras, ref, path }: XmlElementWrite, depth: number): void {
    const values = value === undefined ? [] : Array.isArray(value) ? value : [value];
    switch (ref.kind) {
      case 'primitive': {
        const more = extras === undefined || extras === null ? [] : Array.isArray(extras) ? extras : [extras];
        const n = Math.max(values.length, more.length);
        for (let i = 0; i < n; i++) this.primitive(key, values[i], more[i] as Json | null | undefined, `${path}[${i}]`, depth);
        return;
      }
      case 'xhtml':
        for (const v of values) this.line(depth, xhtml(String(v)));
        return;
      case 'resource':
        values.forEach((v, i) => {
          this.line(depth, `<${key}>`);
          this.resource(v, `${path}[${i}]`, depth + 1, false);
          this.line(depth, `</${key}>`);
        });
        return;
      case 'complex': {
        const type = this.model.complexType(ref.key);
        if (!type) throw new Error(`No definition for ${ref.key}`);
        values.forEach((v, i) => this.complex(key, v as Json, type, `${path}[${i}]`, depth));
      }
    }
  }

  private primitive(key: string, value: unknown, extras: Json | null | undefined, path: string, depth: number): void {
    let attributes = '';
    if (extras && typeof extras.id === 'string') attributes += ` id="${escapeAttribute(extras.id)}"`;
    if (value !== undefined && value !== null) attributes += ` value="${escapeAttribute(primitiveText(value))}"`;
    const extensions = extras && Array.isArray(extras.extension) ? extras.extension : [];
    if (extras) for (const k of Object.keys(extras)) if (k !== 'id' && k !== 'extension') throw new Error(`${path}: _${key}.${k} is not allowed (only id and extension)`);
    if (attributes === '' && extensions.length === 0) return;
    if (extensions.length === 0) {
      this.line(depth, `<${key}${attributes}/>`);
      return;
    }
    const extension = this.model.complexType('Extension');
    if (!extension) throw new Error('No definition for Extension');
    this.line(depth, `<${key}${attributes}>`);
    extensions.forEach((e, i) => this.complex('extension', e as Json, extension, `${path}.extension[${i}]`, depth + 1));
    this.line(depth, `</${key}>`);
  }
}

interface XmlElementWrite {
  key: string;
  value: unknown;
  extras: unknown;
  ref: TypeRef;
  path: string;
}

function primitiveText(value: unknown): string {
  if (isLosslessNumber(value)) return value.toString();
  if (typeof value === 'number') return JSON.stringify(value);
  return String(value);
}

/**
 * The narrative as written; a `div` that does not declare its namespace is given the XHTML one. Line ends
 * are written as LF: an XML reader turns CR LF and CR into LF anyway (XML 1.0 §2.11).
 */
function xhtml(markup: string): string {
  const text = markup.replace(/\r\n?/g, '\n').replace(NOT_XML, '\uFFFD');
  const start = /^\s*<div\b[^>]*>/.exec(text);
  if (start && !/\sxmlns\s*=/.test(start[0])) return text.replace(/<div\b/, `<div xmlns="${XHTML_NS}"`);
  return text;
}
