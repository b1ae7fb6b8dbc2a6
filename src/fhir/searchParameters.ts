import { readR4Definition, readStu3Definition } from './definitions';
import type { FhirVersion } from './types';

/**
 * Search parameters by FHIR version and resource type: R4 from HL7's R4 SearchParameter definitions, STU3
 * from the STU3 (3.0.2) set kept gzipped in `stu3/` (search.html of each version). The expression of a
 * parameter shared by many types (`Condition.code | Observation.code | …`) is cut down to the parts for
 * each type, so indexing evaluates only what applies.
 *
 * The STU3 set lists only type-level parameters and no composite components. Its resource-level ones
 * (`_id`, `_lastUpdated`, `_tag`, `_profile`, `_security`) are R4's, which STU3 defines identically
 * (`_source` is R4-only and left out); a composite takes its components from the R4 parameter of the same
 * URL, and one R4 does not have (Observation `related`, Group `characteristic-value`…) is not offered.
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

interface DefinitionSet {
  all: SearchParameterResource[];
  byUrl: Map<string, SearchParameterResource>;
  byType: Map<string, Map<string, SearchParamDef>>;
}

type SearchParameterBundle = { entry: { resource: SearchParameterResource }[] };
const sets = new Map<FhirVersion, DefinitionSet>();
const R4_ONLY_RESOURCE_PARAMETERS = new Set(['_source']);

function definitionSet(version: FhirVersion): DefinitionSet {
  let set = sets.get(version);
  if (set) return set;
  const r4 = version === 'R4' ? undefined : definitionSet('R4');
  const bundle = version === 'R4' ? readR4Definition<SearchParameterBundle>('search-parameters.json') : readStu3Definition<SearchParameterBundle>('search-parameters.json.gz');
  let all = bundle.entry.map((e) => e.resource).filter((r) => r.resourceType === 'SearchParameter');
  if (r4) {
    all = all.map((p) => (p.type === 'composite' && !p.component ? { ...p, component: r4.byUrl.get(p.url)?.component } : p)).filter((p) => p.type !== 'composite' || p.component);
    const resourceLevel = r4.all.filter((p) => (p.base.includes('Resource') || p.base.includes('DomainResource')) && !R4_ONLY_RESOURCE_PARAMETERS.has(p.code));
    all = [...resourceLevel, ...all];
  }
  set = { all, byUrl: new Map(all.map((p) => [p.url, p])), byType: new Map() };
  sets.set(version, set);
  return set;
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

/** Every search parameter of `type` in FHIR `version`, by code. */
export function searchParameterMap(type: string, version: FhirVersion = 'R4'): Map<string, SearchParamDef> {
  const set = definitionSet(version);
  let map = set.byType.get(type);
  if (map) return map;
  map = new Map();
  for (const p of set.all) {
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
  derivedParameters(map, version);
  set.byType.set(type, map);
  return map;
}

const partsOf = (def: SearchParamDef) => splitUnion(def.expression).map((p) => stripParens(p).replace(/\s+/g, ' '));
// Composites compare by what their components index (type and relative expression), not by definition URL.
const shapeOf = (def: SearchParamDef, version: FhirVersion) =>
  `${def.type}|${JSON.stringify(def.components?.map((c) => [componentType(c.definition, version), c.expression]) ?? null)}`;

/**
 * Marks the parameters of one type whose expression parts are exactly covered by the parts of other
 * parameters of the same search type (and, for composites, the same components). FHIR defines several
 * such unions — Observation's combo-* parameters are a fifth of a Synthea record's index rows — and a
 * union of expressions selects the union of their values, so searching the constituents' rows gives the
 * same matches as rows of its own would. Parameters with fewer parts are settled first; of two with
 * identical expressions the first by code keeps the rows.
 */
function derivedParameters(map: Map<string, SearchParamDef>, version: FhirVersion): void {
  const defs = [...map.values()].filter((d) => d.expression && d.type !== 'special');
  const parts = new Map(defs.map((d) => [d.code, partsOf(d)]));
  defs.sort((a, b) => (parts.get(a.code) as string[]).length - (parts.get(b.code) as string[]).length || a.code.localeCompare(b.code));
  const indexed: SearchParamDef[] = [];
  for (const def of defs) {
    const mine = parts.get(def.code) as string[];
    const remaining = new Set(mine);
    const from: string[] = [];
    const candidates = indexed
      .filter((q) => shapeOf(q, version) === shapeOf(def, version))
      .sort((a, b) => (parts.get(b.code) as string[]).length - (parts.get(a.code) as string[]).length);
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
export function indexedAs(type: string, code: string, version: FhirVersion = 'R4'): string[] {
  return searchParameter(type, code, version)?.derivedFrom ?? [code];
}

export function searchParameter(type: string, code: string, version: FhirVersion = 'R4'): SearchParamDef | undefined {
  return searchParameterMap(type, version).get(code);
}

/** The type of the parameter a composite component refers to (STU3 composites borrow R4's components). */
export function componentType(definitionUrl: string, version: FhirVersion = 'R4'): SearchParamType | undefined {
  return (definitionSet(version).byUrl.get(definitionUrl) ?? definitionSet('R4').byUrl.get(definitionUrl))?.type;
}

/** For the CapabilityStatement: the parameters of `type` in FHIR `version`. */
export function searchParametersFor(version: FhirVersion, type: string): { name: string; type: string; definition?: string; documentation?: string }[] {
  return [...searchParameterMap(type, version).values()].map((p) => ({ name: p.code, type: p.type, definition: p.url }));
}
