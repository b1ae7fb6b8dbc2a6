import { ID } from '../fhir/ids';
import { FhirDecimal } from '../fhir/losslessJson';
import { compileExpression, firstElements } from '../fhir/pathExpression';
import { componentType, searchParameterMap, type SearchParamDef, ROW_PARAMETERS } from '../fhir/searchParameters';
import type { FhirVersion, Resource } from '../fhir/types';
import { parseDateRange } from './dateRange';

/**
 * Turns a resource into the rows of the typed search tables: one function per parameter type, each
 * accepting the FHIR datatypes that type can index (search.html#ptypes). Pure: no I/O.
 */
export interface IndexRows {
  string: [param: string, value: string, exact: string][];
  token: [param: string, system: string | null, code: string | null, text: string | null][];
  reference: [param: string, targetType: string | null, targetId: string | null, url: string | null][];
  date: [param: string, low: string, high: string][];
  number: [param: string, value: string][];
  quantity: [param: string, value: string, system: string | null, code: string | null][];
  uri: [param: string, value: string][];
  composite: [
    param: string,
    system1: string | null,
    code1: string | null,
    system2: string | null,
    code2: string | null,
    number2: string | null,
    low2: string | null,
    high2: string | null,
  ][];
}

export const MAX_STRING = 512;

/** Printable ASCII (and tab, line breaks): text that NFD leaves as it is and that holds no combining mark. */
const ASCII = /^[\t\n\r -~]*$/;

export function normalizeString(s: string): string {
  // Nearly every indexed string is ASCII: the same result without the Unicode normalisation's copy and scan.
  if (ASCII.test(s)) return s.toLowerCase().slice(0, MAX_STRING);
  return s
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .slice(0, MAX_STRING);
}

type Obj = Record<string, unknown>;
/**
 * A FhirDecimal by its class, cheaper than losslessJson's `isFhirDecimal` (a member test) on every value indexed: only
 * fhir/losslessJson.ts makes them, and what is indexed has passed validation, which refuses any other object posing as one.
 */
const isDecimal = (v: unknown): v is FhirDecimal => v instanceof FhirDecimal;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v) && !isDecimal(v);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' || isDecimal(v) ? String(v) : null);

/** A number's exact text (a FhirDecimal's own digits), which the numeric index columns compare numerically. */
const numberText = (v: unknown): string | null => (typeof v === 'number' && Number.isFinite(v) ? String(v) : isDecimal(v) ? v.toString() : null);

export function stringValues(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (!isObj(value)) return [];
  const out: string[] = [];
  // HumanName, Address and anything else with string parts: index each part (search.html#string).
  for (const key of ['text', 'family', 'given', 'prefix', 'suffix', 'line', 'city', 'district', 'state', 'postalCode', 'country', 'value', 'display']) {
    const v = value[key];
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) for (const x of v) if (typeof x === 'string') out.push(x);
  }
  return out;
}

const CONTACT_SYSTEMS = new Set(['phone', 'fax', 'email', 'pager', 'url', 'sms', 'other']);

export interface TokenValue {
  system: string | null;
  code: string | null;
  text: string | null;
}

/**
 * The token rows of a value. `withText: false` (a composite's first part, which keeps only rows with a code): the
 * same rows with a code, their `text` left null, without normalising text nobody reads.
 */
export function tokenValues(value: unknown, withText = true): TokenValue[] {
  const primitive = str(value);
  if (primitive !== null) return [{ system: null, code: primitive, text: null }];
  if (!isObj(value)) return [];
  const out: TokenValue[] = [];
  if (Array.isArray(value.coding) || typeof value.text === 'string') {
    // CodeableConcept: each coding, and its text for :text.
    const text = withText && typeof value.text === 'string' ? normalizeString(value.text) : null;
    for (const c of (value.coding as unknown[]) ?? []) {
      if (isObj(c)) out.push({ system: str(c.system), code: str(c.code), text: withText && typeof c.display === 'string' ? normalizeString(c.display) : text });
    }
    // The concept's own text needs a row only when no coding row already carries it.
    if (text !== null && !out.some((t) => t.text === text)) out.push({ system: null, code: null, text });
    return out;
  }
  if ('code' in value) return [{ system: str(value.system), code: str(value.code), text: withText && typeof value.display === 'string' ? normalizeString(value.display) : null }];
  if ('value' in value) {
    // Identifier (system|value) or ContactPoint (value); Identifier.type.text for :text.
    const type = value.type as Obj | undefined;
    const text = withText && isObj(type) && typeof type.text === 'string' ? normalizeString(type.text) : null;
    // ContactPoint.system is a kind (phone, email…), not a code system.
    const system = CONTACT_SYSTEMS.has(String(value.system)) ? null : str(value.system);
    return [{ system, code: str(value.value), text }];
  }
  return out;
}

export interface ReferenceValue {
  targetType: string | null;
  targetId: string | null;
  url: string | null;
}

const REFERENCE_TYPE = /^[A-Z][A-Za-z]+$/;

/** `Patient/1`, `http://x/fhir/Patient/1`, `Patient/1/_history/2` → Patient, 1; anything else keeps its URL. */
export function parseReference(reference: string): ReferenceValue {
  // The last two segments, read without splitting the whole text (every indexed reference passes here); a
  // version-specific reference (`…/_history/2`) takes the general path below.
  const slash = reference.lastIndexOf('/');
  if (slash > 0) {
    const before = reference.lastIndexOf('/', slash - 1);
    const type = reference.slice(before + 1, slash);
    if (type !== '_history') {
      const id = reference.slice(slash + 1);
      return REFERENCE_TYPE.test(type) && ID.test(id) && !reference.startsWith('urn:')
        ? { targetType: type, targetId: id, url: null }
        : { targetType: null, targetId: null, url: reference };
    }
  }
  const parts = reference.split('/');
  let i = parts.length - 2;
  if (parts.length >= 4 && parts[parts.length - 2] === '_history') i = parts.length - 4;
  if (i >= 0 && REFERENCE_TYPE.test(parts[i]) && ID.test(parts[i + 1]) && !reference.startsWith('urn:')) {
    return { targetType: parts[i], targetId: parts[i + 1], url: null };
  }
  return { targetType: null, targetId: null, url: reference };
}

function referenceValues(value: unknown): { refs: ReferenceValue[]; identifiers: TokenValue[] } {
  if (typeof value === 'string') return { refs: [parseReference(value)], identifiers: [] };
  if (!isObj(value)) return { refs: [], identifiers: [] };
  const refs = typeof value.reference === 'string' ? [parseReference(value.reference)] : [];
  const identifiers = isObj(value.identifier) ? tokenValues(value.identifier) : [];
  return { refs, identifiers };
}

interface RangeText {
  low: string;
  high: string;
}

/**
 * A date's range as the index columns' text, remembered: a resource and the resources written with it repeat the
 * same instants (an encounter's start on each of its observations, `effective` and `issued`), and each parse costs
 * a regular expression, two Dates and two ISO texts. Bounded: cleared when full.
 */
const rangeTexts = new Map<string, RangeText | null>();
const MAX_RANGE_TEXTS = 4096;

function rangeText(value: string): RangeText | null {
  let text = rangeTexts.get(value);
  if (text === undefined) {
    const r = parseDateRange(value);
    text = r ? { low: r.low.toISOString(), high: r.high.toISOString() } : null;
    if (rangeTexts.size >= MAX_RANGE_TEXTS) rangeTexts.clear();
    rangeTexts.set(value, text);
  }
  return text;
}

function dateRanges(value: unknown): RangeText[] {
  if (typeof value === 'string') {
    const r = rangeText(value);
    return r ? [r] : [];
  }
  if (!isObj(value)) return [];
  if ('start' in value || 'end' in value) {
    const start = typeof value.start === 'string' ? rangeText(value.start) : null;
    const end = typeof value.end === 'string' ? rangeText(value.end) : null;
    return [{ low: start ? start.low : '-infinity', high: end ? end.high : 'infinity' }];
  }
  if (Array.isArray(value.event)) return value.event.flatMap(dateRanges);
  return [];
}

function numberValue(value: unknown): string | null {
  return numberText(value) ?? (isObj(value) ? numberText(value.value) : null);
}

function quantityValues(value: unknown): { value: string; system: string | null; code: string | null }[] {
  if (!isObj(value)) return [];
  const amount = numberText(value.value);
  if (amount === null) return [];
  const code = str(value.code) ?? str(value.unit) ?? str(value.currency);
  const out = [{ value: amount, system: str(value.system), code }];
  // Both the coded unit and the human unit can be searched for.
  if (typeof value.unit === 'string' && value.unit !== code) out.push({ value: amount, system: null, code: value.unit });
  return out;
}

function emptyRows(): IndexRows {
  return { string: [], token: [], reference: [], date: [], number: [], quantity: [], uri: [], composite: [] };
}

type Relative = (element: unknown, resource: unknown) => unknown[];

function addComposite(rows: IndexRows, step: IndexStep, element: unknown, resource: Resource): void {
  const { def, components } = step;
  if (!components) return;
  const [first, second] = components;
  const firsts = first
    .extract(element, resource)
    .flatMap((v) => tokenValues(v, false))
    .filter((t) => t.code !== null);
  const values = second.extract(element, resource);
  for (const a of firsts) {
    for (const v of values) {
      if (second.kind === 'token') for (const b of tokenValues(v)) rows.composite.push([def.code, a.system, a.code, b.system, b.code, null, null, null]);
      else if (second.kind === 'quantity') for (const q of quantityValues(v)) rows.composite.push([def.code, a.system, a.code, q.system, q.code, q.value, null, null]);
      else if (second.kind === 'date') for (const d of dateRanges(v)) rows.composite.push([def.code, a.system, a.code, null, null, null, d.low, d.high]);
      else if (second.kind === 'string') for (const s of stringValues(v)) rows.composite.push([def.code, a.system, a.code, null, normalizeString(s), null, null, null]);
      else if (second.kind === 'uri' && typeof v === 'string') rows.composite.push([def.code, a.system, a.code, null, v, null, null, null]);
    }
  }
}

/**
 * Component expressions are relative to the composite's element: evaluate them as `Element.<expr>`. A part
 * written from the resource root (`%resource.referenceSeq.chromosome`, MolecularSequence's variant
 * coordinates) is evaluated on the resource instead.
 */
function compileRelative(expression: string, version: FhirVersion): Relative {
  const parts = expression.split('|').map((p) => p.trim());
  const fromRoot = parts.filter((p) => p.startsWith('%resource.')).map((p) => `Resource.${p.slice('%resource.'.length)}`);
  const relative = parts.filter((p) => !p.startsWith('%resource.')).map((p) => `Resource.${p}`);
  const onRoot = fromRoot.length ? compileExpression(fromRoot.join(' | '), version) : undefined;
  const onElement = relative.length ? compileExpression(relative.join(' | '), version) : undefined;
  // Nearly every component is one or the other: its values as they come, without a copy into a new array.
  if (!onRoot) return onElement ? (element) => onElement(element) : () => [];
  if (!onElement) return (_element, resource) => onRoot(resource);
  return (element, resource) => [...onElement(element), ...onRoot(resource)];
}

/** One indexed parameter of a type, its expressions compiled: what indexRows runs for each resource. */
interface IndexStep {
  def: SearchParamDef;
  extract: (resource: Resource) => unknown[];
  /** The elements of which the resource needs one for `extract` to select anything (pathExpression.ts `firstElements`). */
  needs?: string[];
  /** Composites indexed in our two-part table: a token first part and a second part of a kind we store. */
  components?: [{ extract: Relative }, { kind: ReturnType<typeof componentType>; extract: Relative }];
}

const plans = new Map<string, IndexStep[]>();

/** The parameters of `type` (FHIR `version`) that get rows of their own (not row columns, not unions of others), compiled once. */
function indexPlan(type: string, version: FhirVersion): IndexStep[] {
  const key = `${version}|${type}`;
  let plan = plans.get(key);
  if (plan) return plan;
  plan = [];
  for (const def of searchParameterMap(type, version).values()) {
    if (ROW_PARAMETERS.has(def.code) || !def.expression || def.derivedFrom) continue;
    const [first, second] = def.components ?? [];
    const components: IndexStep['components'] =
      first && second && componentType(first.definition, version) === 'token'
        ? [{ extract: compileRelative(first.expression, version) }, { kind: componentType(second.definition, version), extract: compileRelative(second.expression, version) }]
        : undefined;
    const needs = firstElements(def.expression, version, type);
    plan.push({ def, extract: compileExpression(def.expression, version), ...(needs ? { needs } : {}), ...(components ? { components } : {}) });
  }
  plans.set(key, plan);
  return plan;
}

/**
 * Compiles the index plans of `types` now, so that the first write of each type after a start (or on a
 * fresh worker thread) does not pay for reading the definitions and compiling their expressions.
 */
export function warmIndexing(types: readonly string[], version: FhirVersion = 'R4'): void {
  for (const type of types) indexPlan(type, version);
}

/**
 * Whether a parameter's rows can differ between an R4 resource and a copy of it that differs only in its
 * references and its meta (an aggregated copy: references rewritten to aggregated ids, meta replaced).
 */
const readsMeta = (expression: string | undefined): boolean => /\bmeta\b/.test(expression ?? '');
// A composite is the copy's own when one of its components is not a plain value (a reference, rewritten in the copy; a
// type we do not know) or reads meta. The others (Observation's code-value pairs, useContext's type-value) give
// the original's rows, and are shared like any other value parameter.
const ownComposite = (def: SearchParamDef): boolean =>
  (def.components ?? []).some((c) => {
    const kind = componentType(c.definition, 'R4');
    return kind === undefined || kind === 'reference' || kind === 'composite' || readsMeta(c.expression) || /\b(reference|resolve)\b/.test(c.expression);
  });
const ownToCopy = (def: SearchParamDef): boolean => def.type === 'reference' || readsMeta(def.expression) || (def.type === 'composite' && ownComposite(def));

/** A parameter whose rows a copy shares with its original, and the search table those rows are in. */
export interface SharedParameter {
  code: string;
  table: SharedTable;
}

/**
 * The search tables a shared parameter's rows can be in: a parameter's own type names its table, and every table
 * but references (a copy's own) can hold shared rows. Derived from the tables, so a table added there is shared too.
 */
export type SharedTable = Exclude<keyof IndexRows, 'reference'>;
const SHARED_TABLES: ReadonlySet<string> = new Set(Object.keys(emptyRows()).filter((k) => k !== 'reference'));

const shared = new Map<string, readonly SharedParameter[]>();

/**
 * The R4 parameters of `type` whose rows a copy shares with its original (`indexRows(…, { copy: true })`
 * extracts the others), with their table, compiled once per type. Parameters of a type that has no table
 * (`special`) have no rows and are left out.
 */
export function sharedParameters(type: string): readonly SharedParameter[] {
  let list = shared.get(type);
  if (!list) {
    list = indexPlan(type, 'R4')
      .filter((s) => !ownToCopy(s.def) && SHARED_TABLES.has(s.def.type))
      .map((s) => ({ code: s.def.code, table: s.def.type as SharedTable }));
    shared.set(type, list);
  }
  return list;
}

const copyPlans = new Map<string, IndexStep[]>();

/** The steps of indexPlan a copy extracts itself (see ownToCopy), chosen once per type rather than per resource. */
function copyPlan(type: string, version: FhirVersion): IndexStep[] {
  const key = `${version}|${type}`;
  let plan = copyPlans.get(key);
  if (!plan) {
    plan = indexPlan(type, version).filter((s) => ownToCopy(s.def));
    copyPlans.set(key, plan);
  }
  return plan;
}

/** Whether `resource` has none of `names` (absent or null): most parameters of most resources, skipped unwalked. */
function lacksAll(resource: Resource, names: string[]): boolean {
  for (const name of names) if (resource[name] !== undefined && resource[name] !== null) return false;
  return true;
}

/**
 * The index rows of `resource` under the search parameters of FHIR `version` (its store's). `copy`: only those of
 * the parameters a copy does not share with its original (see sharedParameters), R4.
 */
export function indexRows(resource: Resource, version: FhirVersion = 'R4', options: { copy?: boolean } = {}): IndexRows {
  const rows = emptyRows();
  for (const step of options.copy ? copyPlan(resource.resourceType, version) : indexPlan(resource.resourceType, version)) {
    const { def, needs } = step;
    if (needs !== undefined && lacksAll(resource, needs)) continue;
    const values = step.extract(resource);
    if (!values.length) continue;
    switch (def.type) {
      case 'string':
        for (const v of values) for (const s of stringValues(v)) rows.string.push([def.code, normalizeString(s), s.slice(0, MAX_STRING)]);
        break;
      case 'token':
        for (const v of values) for (const t of tokenValues(v)) rows.token.push([def.code, t.system, t.code, t.text]);
        break;
      case 'reference':
        for (const v of values) {
          const { refs, identifiers } = referenceValues(v);
          for (const r of refs) rows.reference.push([def.code, r.targetType, r.targetId, r.url]);
          for (const t of identifiers) rows.token.push([`${def.code}:identifier`, t.system, t.code, t.text]);
        }
        break;
      case 'date':
        for (const v of values) for (const d of dateRanges(v)) rows.date.push([def.code, d.low, d.high]);
        break;
      case 'number':
        for (const v of values) {
          const n = numberValue(v);
          if (n !== null) rows.number.push([def.code, n]);
        }
        break;
      case 'quantity':
        for (const v of values) for (const q of quantityValues(v)) rows.quantity.push([def.code, q.value, q.system, q.code]);
        break;
      case 'uri':
        for (const v of values) if (typeof v === 'string') rows.uri.push([def.code, v]);
        break;
      case 'composite':
        for (const v of values) addComposite(rows, step, v, resource);
        break;
      default:
        break;
    }
  }
  return rows;
}
