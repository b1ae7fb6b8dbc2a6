import { SaxesParser } from 'saxes';
import { readProfiles } from './definitions';
import type { InvariantViolation } from './invariants';
import { XHTML_NS } from './xml/parseXmlTree';
import type { FhirVersion } from './types';

/**
 * The narrative rules FHIRPath engines leave out (R4 narrative.html#xhtml, datatypes.html#xhtml; STU3 the same):
 * `txt-1` and `txt-2` call `htmlChecks()`, which no engine implements, on a context (`….text.div`) that does not
 * compile (see invariants.ts). Each `Narrative.div` of a resource is checked here instead, wherever the
 * version's definitions put a Narrative: `text` of every DomainResource, `Composition.section.text` at any
 * depth, and the same inside the resources a resource holds (`contained`, `Bundle.entry.resource`,
 * `Parameters.parameter.resource`…).
 *
 * - `xhtml`: well-formed XML (XML's five entities only, no document type declaration), whose root is a `div` in
 *   the XHTML namespace: what the XML format writes as is, and what a client renders.
 * - `txt-1`: only the elements and attributes its published XPath lists (R4's `Narrative.div` definition: the
 *   formatting elements of HTML 4.0, `a`, `img`), all in the XHTML namespace, plus `xml:lang`; so no script,
 *   style element, form, frame, object or event attribute (`onclick`). Beyond the XPath, since the narrative
 *   SHALL have no active content: no `javascript:`/`vbscript:` URL, and a `data:` URL only for an image.
 *   Relative, absolute and `#id` URLs stay allowed: the specification's own examples use all three.
 * - `txt-2`: some non-whitespace text, or an image with a `src`.
 *
 * Cost: only the elements where a Narrative can be are visited, and only a present `div` is parsed.
 */
const MAX_PER_DIV = 5;
const XML_NS = 'http://www.w3.org/XML/1998/namespace';
/** Attributes that hold a URL (HTML 4.0 %URI; attributes). */
const URL_ATTRIBUTES = new Set(['href', 'src', 'cite', 'longdesc']);
/** A URL's scheme, read once the characters a browser drops from it (spaces, controls) are gone. */
const SCHEME = /^([a-z][a-z0-9+.-]*):/i;
const URL_NOISE = /[\s\p{Cc}]/gu;

interface Rules {
  elements: ReadonlySet<string>;
  attributes: ReadonlySet<string>;
  human: Record<'txt-1' | 'txt-2', string>;
}

let lists: Pick<Rules, 'elements' | 'attributes'> | undefined;

/**
 * The element and attribute names of txt-1's XPath in R4's definition (`local-name(.)=('a', …)`,
 * `name(.)=('abbr', …)`). STU3's definitions here are kept without XPath; its published txt-1 names the same
 * HTML 4.0 chapters, so both versions use these lists.
 */
function allowedNames(): Pick<Rules, 'elements' | 'attributes'> {
  if (lists) return lists;
  const xpath = narrativeConstraints('R4').find((c) => c.key === 'txt-1')?.xpath ?? '';
  const names = (fn: string) => {
    const list = new RegExp(`(?<![\\w-])${fn}\\(\\.\\)=\\(([^)]*)\\)`).exec(xpath)?.[1];
    if (!list) throw new Error(`txt-1 of R4's Narrative has no ${fn}(.) list`);
    return new Set([...list.matchAll(/'([^']+)'/g)].map((m) => m[1]));
  };
  lists = { elements: names('local-name'), attributes: names('name') };
  return lists;
}

interface Constraint {
  key: string;
  human: string;
  xpath?: string;
}

interface SdElement {
  path: string;
  type?: { code: string }[];
  contentReference?: string;
  constraint?: Constraint[];
}

type ProfileBundle = { entry: { resource: { resourceType: string; id: string; kind?: string; derivation?: string; snapshot?: { element: SdElement[] } } }[] };

function narrativeConstraints(version: FhirVersion): Constraint[] {
  const narrative = readProfiles<ProfileBundle>(version, 'profiles-types.json').entry.find(
    (e) => e.resource.resourceType === 'StructureDefinition' && e.resource.id === 'Narrative',
  );
  return narrative?.resource.snapshot?.element.find((e) => e.path === 'Narrative.div')?.constraint ?? [];
}

const rules = new Map<FhirVersion, Rules>();

function rulesFor(version: FhirVersion): Rules {
  let r = rules.get(version);
  if (!r) {
    const constraints = narrativeConstraints(version);
    const human = (key: string) => constraints.find((c) => c.key === key)?.human ?? key;
    r = { ...allowedNames(), human: { 'txt-1': human('txt-1'), 'txt-2': human('txt-2') } };
    rules.set(version, r);
  }
  return r;
}

/** An element of a resource where a Narrative, or a resource, can be: a tree (with cycles for `contentReference`). */
interface Site {
  narrative: boolean;
  resource: boolean;
  children: Map<string, Site>;
}

const sites = new Map<FhirVersion, Map<string, Site>>();

/**
 * For each resource type of a version, the elements that hold a Narrative or a resource, or lead to one (a type
 * with none, such as Binary, is absent). Built once per version from its definitions (specialisations only).
 */
function sitesOf(version: FhirVersion): Map<string, Site> {
  let byType = sites.get(version);
  if (byType) return byType;
  byType = new Map();
  for (const { resource } of readProfiles<ProfileBundle>(version, 'profiles-resources.json').entry) {
    if (resource.resourceType !== 'StructureDefinition' || resource.kind !== 'resource' || resource.derivation === 'constraint' || !resource.snapshot) continue;
    const site = siteOf(resource.id, resource.snapshot.element);
    if (site) byType.set(resource.id, site);
  }
  sites.set(version, byType);
  return byType;
}

function siteOf(type: string, elements: SdElement[]): Site | undefined {
  const byPath = new Map<string, Site>();
  for (const e of elements) {
    const codes = (e.type ?? []).map((t) => t.code);
    byPath.set(e.path, { narrative: codes.includes('Narrative'), resource: codes.includes('Resource'), children: new Map() });
  }
  for (const e of elements) {
    const cut = e.path.lastIndexOf('.');
    const key = e.path.slice(cut + 1);
    if (cut < 0 || key.endsWith('[x]')) continue;
    // `Composition.section.section` is `#Composition.section`: the same site, so sections nest to any depth.
    const site = e.contentReference ? byPath.get(e.contentReference.slice(e.contentReference.indexOf('#') + 1)) : byPath.get(e.path);
    if (site) byPath.get(e.path.slice(0, cut))?.children.set(key, site);
  }
  // Keep only what leads to a Narrative or a resource (a fixed point: contentReference makes cycles).
  const leads = new Set<Site>();
  for (let grew = true; grew;) {
    grew = false;
    for (const s of byPath.values()) {
      if (leads.has(s) || !(s.narrative || s.resource || [...s.children.values()].some((c) => leads.has(c)))) continue;
      leads.add(s);
      grew = true;
    }
  }
  for (const s of byPath.values()) for (const [k, c] of s.children) if (!leads.has(c)) s.children.delete(k);
  const root = byPath.get(type);
  return root?.children.size ? root : undefined;
}

/** The narrative rules (`xhtml`, `txt-1`, `txt-2`) each Narrative of `resource` breaks, by the div's path. */
export function narrativeViolations(version: FhirVersion, resource: Record<string, unknown> & { resourceType: string }): InvariantViolation[] {
  const out: InvariantViolation[] = [];
  const site = sitesOf(version).get(resource.resourceType);
  if (site) visit(version, site, resource, resource.resourceType, out);
  return out;
}

function visit(version: FhirVersion, site: Site, node: Record<string, unknown>, path: string, out: InvariantViolation[]): void {
  for (const [key, child] of site.children) {
    const value = node[key];
    if (value === undefined || value === null) continue;
    const many = Array.isArray(value);
    const items: unknown[] = many ? value : [value];
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as Record<string, unknown>;
      if (item === null || typeof item !== 'object') continue;
      const at = many ? `${path}.${key}[${i}]` : `${path}.${key}`;
      if (child.narrative && typeof item.div === 'string') {
        for (const broken of divViolations(item.div, rulesFor(version))) out.push({ ...broken, path: `${at}.div` });
      }
      if (child.resource && typeof item.resourceType === 'string') {
        const nested = sitesOf(version).get(item.resourceType);
        if (nested) visit(version, nested, item, at, out);
      }
      if (child.children.size) visit(version, child, item, at, out);
    }
  }
}

/** Non-whitespace as XML (and XPath's normalize-space) reads it: anything but space, tab, CR, LF. */
const XML_NON_SPACE = /[^ \t\r\n]/;

/** What is wrong with one div's markup, each with its rule; at most MAX_PER_DIV. */
function divViolations(markup: string, rules: Rules): Omit<InvariantViolation, 'path'>[] {
  const out: Omit<InvariantViolation, 'path'>[] = [];
  const seen = new Set<string>();
  const txt1 = (detail: string) => {
    if (seen.has(detail) || out.length >= MAX_PER_DIV) return;
    seen.add(detail);
    out.push({ key: 'txt-1', human: `${detail}: ${rules.human['txt-1']}` });
  };
  const notXhtml = (detail: string): never => {
    throw new NotXhtml(detail);
  };
  let depth = 0;
  let content = false;
  const parser = new SaxesParser({ xmlns: true, position: false });
  parser.on('error', (err) => notXhtml(`not well-formed XML (${err.message.replace(/^undefined:/, '').trim()})`));
  parser.on('doctype', () => notXhtml('a document type declaration (<!DOCTYPE>) is not allowed'));
  parser.on('processinginstruction', (pi) => txt1(`the processing instruction <?${pi.target}?> is not allowed`));
  parser.on('opentag', (tag) => {
    if (depth++ === 0 && (tag.local !== 'div' || tag.uri !== XHTML_NS)) {
      notXhtml(tag.local !== 'div' ? `the root element is <${tag.name}>, not <div>` : `the root <div> is not in the XHTML namespace (xmlns="${XHTML_NS}")`);
    }
    if (tag.uri !== XHTML_NS) txt1(`<${tag.name}> is not an XHTML element (namespace '${tag.uri}')`);
    else if (!rules.elements.has(tag.local)) txt1(`the element <${tag.local}> is not allowed`);
    for (const a of Object.values(tag.attributes)) {
      if (a.prefix === 'xmlns' || a.name === 'xmlns') continue;
      if (a.uri === XML_NS && a.local === 'lang') continue;
      if (a.prefix !== '' || !rules.attributes.has(a.local)) {
        txt1(`the attribute ${a.name} on <${tag.local}> is not allowed${/^on/i.test(a.local) ? ' (event attributes are active content)' : ''}`);
        continue;
      }
      if (!URL_ATTRIBUTES.has(a.local)) continue;
      const url = a.value.replace(URL_NOISE, '');
      const scheme = SCHEME.exec(url)?.[1].toLowerCase();
      if (scheme === 'javascript' || scheme === 'vbscript') txt1(`the ${a.local} of <${tag.local}> is a ${scheme}: URL (active content)`);
      else if (scheme === 'data' && !/^data:image\//i.test(url)) txt1(`the ${a.local} of <${tag.local}> is a data: URL that is not an image`);
      else if (a.local === 'src' && tag.local === 'img' && url !== '') content = true;
    }
  });
  parser.on('closetag', () => depth--);
  const onText = (text: string) => {
    if (!content && depth > 0 && XML_NON_SPACE.test(text)) content = true;
  };
  parser.on('text', onText);
  parser.on('cdata', onText);
  try {
    parser.write(markup).close();
  } catch (e) {
    if (!(e instanceof NotXhtml)) throw e;
    return [{ key: 'xhtml', human: `${e.message}: the narrative SHALL be a well-formed XHTML <div> (narrative.html#xhtml)` }];
  }
  if (!content && out.length < MAX_PER_DIV) out.push({ key: 'txt-2', human: `the div has no text and no image: ${rules.human['txt-2']}` });
  return out;
}

class NotXhtml extends Error {}
