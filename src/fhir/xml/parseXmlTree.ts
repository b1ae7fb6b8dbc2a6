import { SaxesParser, type SaxesAttributeNS } from 'saxes';
import { badRequest } from '../outcome';

/**
 * Well-formed, namespace-aware XML → a small element tree, with saxes (a conformant streaming parser).
 * A document type declaration is refused before anything else happens: FHIR XML never has one, and with
 * none there are no entities beyond XML's five (no XXE, no entity expansion bombs). XHTML subtrees (the
 * narrative `div`) are not broken up: their markup is kept as written, to be carried verbatim.
 */
export const XHTML_NS = 'http://www.w3.org/1999/xhtml';

export interface XmlElement {
  /** Local name. */
  name: string;
  /** Namespace URI ('' for none). */
  uri: string;
  /** Attributes in no namespace, by name (namespace declarations and `xsi:`/`xml:` attributes left out). */
  attributes: Map<string, string>;
  children: XmlElement[];
  /** Whether non-whitespace character data sits directly in this element. */
  hasText: boolean;
  /** For the root of an XHTML subtree: its markup as written (line ends normalised as XML does). */
  markup?: string;
  line: number;
}

/**
 * `maxDepth`: the deepest element nesting allowed (400 beyond it, naming MAX_BODY_DEPTH as JSON bodies do):
 * the reader that turns the tree into FHIR JSON recurses once per level.
 */
export function parseXmlTree(text: string, maxDepth = Infinity): XmlElement {
  const parser = new SaxesParser({ xmlns: true, position: true });
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let tagStart = 0;
  /** Depth inside an XHTML subtree (0 = outside) and where its markup starts. */
  let xhtmlDepth = 0;
  let xhtmlStart = 0;

  parser.on('error', (err) => {
    throw badRequest(`The body is not well-formed XML: ${err.message}`);
  });
  parser.on('doctype', () => {
    throw badRequest('The body has a document type declaration (<!DOCTYPE>): FHIR XML has none, and this server refuses them (no entities, no external references)');
  });
  parser.on('opentagstart', () => {
    // Reported just past the name: the tag starts at the last '<' before here.
    tagStart = text.lastIndexOf('<', parser.position - 1);
  });
  parser.on('opentag', (tag) => {
    if (stack.length + Math.max(0, xhtmlDepth - 1) >= maxDepth) {
      throw badRequest(`The body is nested more than ${maxDepth} levels deep (XML elements): the limit is ${maxDepth} (MAX_BODY_DEPTH)`);
    }
    if (xhtmlDepth > 0) {
      xhtmlDepth++;
      return;
    }
    const attributes = new Map<string, string>();
    for (const a of Object.values(tag.attributes as Record<string, SaxesAttributeNS>)) if (a.uri === '' && a.prefix === '') attributes.set(a.local, a.value);
    const element: XmlElement = { name: tag.local ?? tag.name, uri: tag.uri ?? '', attributes, children: [], hasText: false, line: parser.line };
    if (element.uri === XHTML_NS) {
      xhtmlDepth = 1;
      xhtmlStart = tagStart;
    }
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(element);
    else if (root) throw badRequest('The body has more than one root element');
    else root = element;
    stack.push(element);
  });
  // saxes reports a self-closing tag as an opentag followed by a closetag.
  parser.on('closetag', () => {
    if (xhtmlDepth > 1) {
      xhtmlDepth--;
      return;
    }
    const element = stack.pop();
    if (element && xhtmlDepth === 1) {
      element.markup = text.slice(xhtmlStart, parser.position).replace(/\r\n?/g, '\n');
      xhtmlDepth = 0;
    }
  });
  const onText = (t: string) => {
    const top = stack[stack.length - 1];
    if (top && xhtmlDepth === 0 && t.trim() !== '') top.hasText = true;
  };
  parser.on('text', onText);
  parser.on('cdata', onText);

  parser.write(text).close();
  if (!root) throw badRequest('The body has no XML element');
  return root;
}
