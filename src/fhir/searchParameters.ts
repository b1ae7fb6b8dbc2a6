import { readR4Definition } from './definitions';
import type { FhirVersion } from './types';

/**
 * Search parameters by resource type, from HL7's R4 SearchParameter definitions. The expression of a
 * parameter shared by many types (`Condition.code | Observation.code | …`) is cut down to the parts for
 * each type, so indexing evaluates only what applies.
 *
 * STU3 endpoints use the same definitions: no STU3 SearchParameter set ships offline, the parameter names
 * of the common clinical types are the same, and an expression path that does not exist in an STU3 resource
 * simply yields nothing.
 */
export type SearchParamType = 'string' | 'token' | 'reference' | 'date' | 'number' | 'quantity' | 'uri' | 'composite' | 'special';

export interface SearchParamDef {
  code: string;
  type: SearchParamType;
  /** FHIRPath for this resource type only ('' when the parameter has none, e.g. `_text`). */
  expression: string;
  url: string;
  description?: string;
  target: string[];
  /** Composite parameters: the component definitions' URLs and expressions relative to `expression`. */
  components?: { definition: string; expression: string }[];
  /**
   * Set when the parameter's expression is exactly the union of other parameters' expressions of the same
   * type (Observation `combo-code` = `code` | `component-code`): it has no index rows of its own and is
   * searched through theirs. See `derivedParameters`.
   */
  derivedFrom?: string[];
}

interface SearchParameterResource {
  resourceType: string;
  url: string;
  code: string;
  type: SearchParamType;
  base: string[];
  expression?: string;
  description?: string;
  target?: string[];
  component?: { definition: string; expression: string }[];
}

/** Parameters whose values come from the resource row itself, or that we do not index. */
export const ROW_PARAMETERS = new Set(['_id', '_lastUpdated']);
const NOT_INDEXED = new Set(['_content', '_text', '_query', '_list', '_has', '_type', '_filter']);

let all: SearchParameterResource[] | undefined;
const byType = new Map<string, Map<string, SearchParamDef>>();
const byUrl = new Map<string, SearchParameterResource>();

function definitions(): SearchParameterResource[] {
  if (!all) {
    const bundle = readR4Definition<{ entry: { resource: SearchParameterResource }[] }>('search-parameters.json');
    all = bundle.entry.map((e) => e.resource).filter((r) => r.resourceType === 'SearchParameter');
    for (const p of all) byUrl.set(p.url, p);
  }
  return all;
}

/** Splits a top-level union, respecting parentheses: `(A.b as X) | C.d` → [`(A.b as X)`, `C.d`]. */
export function splitUnion(expression: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < expression.length; i++) {
    const ch = expression[i];
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === '|' && depth === 0) {
      parts.push(expression.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(expression.slice(start).trim());
  return parts.filter((p) => p !== '');
}

function stripParens(part: string): string {
  let p = part.trim();
  while (p.startsWith('(') && p.endsWith(')')) {
    let depth = 0;
    let wraps = true;
    for (let i = 0; i < p.length - 1; i++) {
      if (p[i] === '(') depth++;
      else if (p[i] === ')') depth--;
      if (depth === 0) {
        wraps = false;
        break;
      }
    }
    if (!wraps) break;
    p = p.slice(1, -1).trim();
  }
  return p;
}

function expressionFor(expression: string | undefined, type: string): string {
  if (!expression) return '';
  const mine = splitUnion(expression).filter((part) => {
    const head = stripParens(part).split(/[.\s(]/)[0];
    return head === type || head === 'Resource' || head === 'DomainResource';
  });
  return mine.join(' | ');
}

/** Every search parameter of `type`, by code. */
export function searchParameterMap(type: string): Map<string, SearchParamDef> {
  let map = byType.get(type);
  if (map) return map;
  map = new Map();
  for (const p of definitions()) {
    if (!p.base.includes(type) && !p.base.includes('Resource') && !(p.base.includes('DomainResource') && type !== 'Bundle' && type !== 'Binary' && type !== 'Parameters')) continue;
    if (NOT_INDEXED.has(p.code)) continue;
    const expression = expressionFor(p.expression, type);
    if (!expression && !ROW_PARAMETERS.has(p.code)) continue;
    map.set(p.code, {
      code: p.code,
      type: p.type,
      expression,
      url: p.url,
      description: p.description,
      target: p.target ?? [],
      ...(p.component ? { components: p.component } : {}),
    });
  }
  derivedParameters(map);
  byType.set(type, map);
  return map;
}

const partsOf = (def: SearchParamDef) => splitUnion(def.expression).map((p) => stripParens(p).replace(/\s+/g, ' '));
// Composites compare by what their components index (type and relative expression), not by definition URL.
const shapeOf = (def: SearchParamDef) => `${def.type}|${JSON.stringify(def.components?.map((c) => [componentType(c.definition), c.expression]) ?? null)}`;

/**
 * Marks the parameters of one type whose expression parts are exactly covered by the parts of other
 * parameters of the same search type (and, for composites, the same components). FHIR defines several
 * such unions — Observation's combo-* parameters are a fifth of a Synthea record's index rows — and a
 * union of expressions selects the union of their values, so searching the constituents' rows gives the
 * same matches as rows of its own would. Parameters with fewer parts are settled first; of two with
 * identical expressions the first by code keeps the rows.
 */
function derivedParameters(map: Map<string, SearchParamDef>): void {
  const defs = [...map.values()].filter((d) => d.expression && d.type !== 'special');
  const parts = new Map(defs.map((d) => [d.code, partsOf(d)]));
  defs.sort((a, b) => (parts.get(a.code) as string[]).length - (parts.get(b.code) as string[]).length || a.code.localeCompare(b.code));
  const indexed: SearchParamDef[] = [];
  for (const def of defs) {
    const mine = parts.get(def.code) as string[];
    const remaining = new Set(mine);
    const from: string[] = [];
    const candidates = indexed.filter((q) => shapeOf(q) === shapeOf(def)).sort((a, b) => (parts.get(b.code) as string[]).length - (parts.get(a.code) as string[]).length);
    for (const q of candidates) {
      const theirs = parts.get(q.code) as string[];
      if (theirs.every((p) => remaining.has(p))) {
        for (const p of theirs) remaining.delete(p);
        from.push(q.code);
      }
      if (!remaining.size) break;
    }
    if (!remaining.size && from.length) def.derivedFrom = from;
    else indexed.push(def);
  }
}

/** The parameters whose index rows a search on `code` reads: its own, or those it is derived from. */
export function indexedAs(type: string, code: string): string[] {
  return searchParameter(type, code)?.derivedFrom ?? [code];
}

export function searchParameter(type: string, code: string): SearchParamDef | undefined {
  return searchParameterMap(type).get(code);
}

/** The type of the parameter a composite component refers to. */
export function componentType(definitionUrl: string): SearchParamType | undefined {
  definitions();
  return byUrl.get(definitionUrl)?.type;
}

/** For the CapabilityStatement. */
export function searchParametersFor(_version: FhirVersion, type: string): { name: string; type: string; definition?: string; documentation?: string }[] {
  return [...searchParameterMap(type).values()].map((p) => ({ name: p.code, type: p.type, definition: p.url }));
}
