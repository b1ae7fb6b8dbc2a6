/**
 * The FHIRPath invariants of the StructureDefinitions of the endpoint's FHIR version, R4 or STU3, each with its
 * own version's expressions and FHIRPath model (`ElementDefinition.constraint` of severity error), at every
 * depth of the resource: its own (`dom-2`…`dom-5`, `obs-6`, `pat-1`…), those of its elements (`obs-3` on each
 * `Observation.referenceRange`, `que-*` on each Questionnaire item), those of every datatype it holds wherever
 * it holds it (`per-1` on a Period inside an Identifier inside a Patient, `rng-2` on a Range in an
 * Observation.component, `tim-*` on the Timing.repeat of a Dosage, a Period in an extension in an extension…),
 * and those of elements defined elsewhere (`contentReference`: `Questionnaire.item.item` has the rules of
 * `Questionnaire.item`, at any depth); contained resources and those of a Bundle or Parameters are checked
 * against their own type's rules. Each applies at each element: `Patient.identifier.period: per-1`.
 *
 * The check walks the JSON instance, so only elements that are present cost anything, and a node knows its
 * definition from its parent's (a "shape" per datatype, backbone element or resource type, built from the
 * definitions the first time an instance reaches it and kept: cycles such as Identifier → Reference →
 * Identifier, Extension → Extension or item → item are bounded by the instance, not by the definitions).
 * Each rule is compiled once, with the FHIRPath type of the node it runs on (`{ base: 'Period' }`): a
 * datatype's rules run on the node (`per-1` on a Period), an element's on its parent over all of its values
 * (`item.where((<que-1>) = false).empty()` on a Questionnaire or an item). A rule is evaluated only where its
 * element is present, and not where a shortcut (invariantShortcuts.ts) shows it certainly holds — FHIRPath
 * evaluation costs ≈ 50 µs a call and ≈ 0.5 ms for a per-1 date comparison, so this is what keeps full
 * validation cheap on bulk loads (Synthea: ≈ 12 µs of invariants per resource, from ≈ 180 with the engine
 * alone; checking every depth rather than the first level costs no more, bench/invariantCost.ts). Left out:
 * `ele-1` and `ext-1` (no empty element, extension with value or children: the structural rules of
 * schemaRules.ts enforce them for every element, at far less cost), and `txt-1`/`txt-2` (rules on the
 * narrative's XHTML, not on its FHIR elements: checked by narrative.ts, not by this walk; R4 and STU3 alike).
 */
import fhirpath from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4';
import stu3Model from 'fhirpath/fhir-context/stu3';
import { isResourceType, readProfiles } from './definitions';
import { certainlyHolds } from './invariantShortcuts';
import { isFhirDecimal } from './losslessJson';
import type { FhirVersion } from './types';

export interface InvariantViolation {
  key: string;
  human: string;
  /** The element path the constraint applies to (`Observation.effective`). */
  path: string;
}

interface Constraint {
  key: string;
  severity: string;
  human: string;
  expression?: string;
}

interface SdElement {
  path: string;
  type?: { code: string }[];
  /** `#Questionnaire.item`: the element has the definition (children and rules) of that one. */
  contentReference?: string;
  constraint?: Constraint[];
}

type Env = { resource: unknown; rootResource: unknown };

/** One compiled rule: broken where `run` gives exactly `[false]`. */
interface Check {
  key: string;
  human: string;
  /** A resource-level rule about contained resources: run only when there are some. */
  contained?: boolean;
  /** True when the rule certainly holds at an element (invariantShortcuts.ts); the engine runs only where it is not. */
  holds?: (element: Record<string, unknown>) => boolean;
  run: (input: unknown, env: Env) => unknown[];
}

/** The rules of one element, run on its parent over every value of it (every JSON key of a choice element). */
interface ElementChecks {
  /** The element's name in a path (`effective`, `item`). */
  label: string;
  /** Its JSON keys (`effectiveDateTime`, `effectivePeriod`, `_effectiveDateTime`…). */
  keys: string[];
  checks: Check[];
}

/** One JSON key of an object: the element it is and how to walk its values. */
interface Child {
  /** The element in a path: `effective.ofType(Period)` for `effectivePeriod`. */
  label: string;
  element?: ElementChecks;
  /** The definition of each value: a datatype (`Period`), a backbone element (`Questionnaire.item`); none for a primitive. */
  holder?: string;
  /** Each value is a resource, checked against its own type (contained, Bundle.entry.resource). */
  resource?: boolean;
}

/** What the walk knows of a JSON object of one definition. */
interface Shape {
  /** The rules of the object itself: a resource's own, or its datatype's (per-1 on a Period). */
  own: Check[];
  children: Map<string, Child>;
}

/**
 * ele-1, ext-1, txt-1, txt-2: see above. R4's dom-3 as published applies `as()` to collections, which a
 * conformant engine refuses: see dom3. STU3's dom-3 (referred to by a `reference` anywhere in the resource) runs
 * as published.
 */
const LEFT_OUT = ['ele-1', 'ext-1', 'ref-1', 'txt-1', 'txt-2'];
const SKIPPED: Record<FhirVersion, ReadonlySet<string>> = { R4: new Set([...LEFT_OUT, 'dom-3']), STU3: new Set(LEFT_OUT) };
const MODELS = { R4: r4Model, STU3: stu3Model } as const;
/** ref-1 is on every Reference (a dozen per resource): checked natively in one walk, see localReferences. */
const REF_1 = 'SHALL have a contained resource if a local reference is provided';
const DOM_3 = 'If the resource is contained in another resource, it SHALL be referred to from elsewhere in the resource or SHALL refer to the containing resource';
const RESOURCE_TYPES = new Set(['Resource', 'DomainResource']);

interface Definitions {
  /** Every element of every resource and complex datatype, by path. */
  elements: Map<string, SdElement>;
  /** The elements one level below a path (`Timing.repeat` → `Timing.repeat.bounds[x]`, `count`…). */
  children: Map<string, SdElement[]>;
  datatypes: Set<string>;
}

const loaded = new Map<FhirVersion, Definitions>();

function load(version: FhirVersion): Definitions {
  let defs = loaded.get(version);
  if (defs) return defs;
  defs = { elements: new Map(), children: new Map(), datatypes: new Set() };
  for (const [file, kind] of [
    ['profiles-resources.json', 'resource'],
    ['profiles-types.json', 'complex-type'],
  ] as const) {
    const bundle = readProfiles<{ entry: { resource: { resourceType: string; id: string; kind?: string; derivation?: string; snapshot?: { element: SdElement[] } } }[] }>(
      version,
      file,
    );
    for (const { resource } of bundle.entry) {
      if (resource.resourceType !== 'StructureDefinition' || resource.kind !== kind || resource.derivation === 'constraint' || !resource.snapshot) continue;
      if (kind === 'complex-type') defs.datatypes.add(resource.id);
      for (const e of resource.snapshot.element) {
        defs.elements.set(e.path, e);
        const dot = e.path.lastIndexOf('.');
        if (dot < 0) continue;
        const parent = e.path.slice(0, dot);
        const list = defs.children.get(parent);
        if (list) list.push(e);
        else defs.children.set(parent, [e]);
      }
    }
  }
  loaded.set(version, defs);
  return defs;
}

const cap = (s: string) => s[0].toUpperCase() + s.slice(1);

const shapes: Record<FhirVersion, Map<string, Shape>> = { R4: new Map(), STU3: new Map() };

/** Compiles `expression` to run on a node of FHIRPath type `base` (a resource's own rules: on the resource), or undefined. */
function compile(version: FhirVersion, base: string | undefined, c: Constraint, expression: string, holds?: Check['holds']): Check | undefined {
  try {
    const fn = fhirpath.compile(base ? { base, expression } : expression, MODELS[version], { traceFn: () => undefined });
    return { key: c.key, human: c.human, holds, run: (input, env) => fn(input, env) as unknown[] };
  } catch {
    // An expression fhirpath.js cannot compile is not checked.
    return undefined;
  }
}

/**
 * The shape of an object defined at `holder`: a resource type (`Patient`), a datatype (`Period`) or a backbone
 * element (`Questionnaire.item`), built on first use. Children's shapes are named, not built, so a cycle in the
 * definitions costs nothing until an instance goes round it.
 */
function shapeOf(version: FhirVersion, holder: string): Shape {
  let shape = shapes[version].get(holder);
  if (shape) return shape;
  const defs = load(version);
  const skipped = SKIPPED[version];
  const errors = (e: SdElement | undefined) => (e?.constraint ?? []).filter((c) => c.severity === 'error' && c.expression && !skipped.has(c.key));
  const own: Check[] = [];
  if (!holder.includes('.')) {
    const resource = !defs.datatypes.has(holder);
    for (const c of errors(defs.elements.get(holder))) {
      const expression = fhirTypeNames(c.expression as string);
      // A resource's own rules run on the resource as it is (its type is its resourceType); a datatype's on the node.
      const check = compile(version, resource ? undefined : holder, c, expression, certainlyHolds(expression));
      if (check) own.push(resource && expression.startsWith('contained') ? { ...check, contained: true } : check);
    }
  }
  const children = new Map<string, Child>();
  for (const e of defs.children.get(holder) ?? []) {
    const name = e.path.slice(holder.length + 1);
    const choice = name.endsWith('[x]');
    const stem = choice ? name.slice(0, -3) : name;
    const target = e.contentReference ? defs.elements.get(e.contentReference.slice(e.contentReference.indexOf('#') + 1)) : e;
    if (!target) continue;
    const rules = new Map([...errors(e), ...(target === e ? [] : errors(target))].map((c) => [c.key, c]));
    const checks: Check[] = [];
    for (const c of rules.values()) {
      const expression = fhirTypeNames(c.expression as string);
      const check = compile(version, holder, c, `${stem}.where((${expression}) = false).empty()`, certainlyHolds(expression));
      if (check) checks.push(check);
    }
    const element: ElementChecks | undefined = checks.length ? { label: stem, keys: [], checks } : undefined;
    for (const { code } of target.type ?? []) {
      const key = choice ? `${stem}${cap(code)}` : stem;
      const label = choice ? `${stem}.ofType(${code})` : stem;
      let child: Child;
      if (defs.children.has(target.path)) child = { label, element, holder: target.path };
      else if (RESOURCE_TYPES.has(code)) child = { label, element, resource: true };
      else if (defs.datatypes.has(code)) child = { label, element, holder: code };
      else {
        // A primitive: its extensions (`_birthDate`) are an Element's.
        child = { label, element };
        children.set(`_${key}`, { label, element, holder: 'Element' });
        element?.keys.push(`_${key}`);
      }
      children.set(key, child);
      element?.keys.push(key);
    }
  }
  shape = { own, children };
  shapes[version].set(holder, shape);
  return shape;
}

/** Where a node is, as a chain of labels up to the resource: rendered only for a violation. */
interface Where {
  up?: Where;
  label: string;
}

const render = (where: Where): string => (where.up ? `${render(where.up)}.${where.label}` : where.label);

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v) && !isFhirDecimal(v);

/** One walk over a resource: what the engine gets (FhirDecimals as numbers, copied only when it runs) and what was found. */
class Walk {
  readonly found = new Map<string, InvariantViolation>();
  private numericRoot?: unknown;

  constructor(
    readonly version: FhirVersion,
    readonly root: Json,
    readonly shortcuts: boolean,
  ) {}

  /** The whole resource as the engine gets it (`%rootResource`, and `%resource` of the resource itself). */
  rootInput(): unknown {
    return (this.numericRoot ??= asNumbers(this.root));
  }

  /** Runs `check` on `input` (an object of `resource`) and records a violation at `where`. */
  private run(check: Check, input: Json, resource: Json, where: Where): void {
    let result: unknown[];
    const env = { resource: resource === this.root ? this.rootInput() : asNumbers(resource), rootResource: this.rootInput() };
    try {
      result = check.run(input === this.root ? this.rootInput() : asNumbers(input), env);
    } catch {
      // An expression the engine cannot evaluate on this data is not held against the resource.
      return;
    }
    if (result.length === 1 && result[0] === false) {
      const path = render(where);
      this.found.set(`${check.key} ${path}`, { key: check.key, human: check.human, path });
    }
  }

  /** Checks `node` of `shape` and everything below it; `resource` is the resource it belongs to (`%resource`). */
  node(node: Json, shape: Shape, where: Where, resource: Json): void {
    for (const check of shape.own) {
      if (check.contained && node.contained === undefined) continue;
      if (this.shortcuts && check.holds?.(node)) continue;
      this.run(check, node, resource, where);
    }
    let done: ElementChecks[] | undefined;
    for (const key in node) {
      const child = shape.children.get(key);
      if (!child) continue;
      const element = child.element;
      if (element && !(done ??= []).includes(element)) {
        done.push(element);
        const at: Where = { up: where, label: element.label };
        for (const check of element.checks) if (!(this.shortcuts && check.holds && everyHolds(node, element.keys, check.holds))) this.run(check, node, resource, at);
      }
      if (!child.holder && !child.resource) continue;
      const value = node[key];
      const at: Where = { up: where, label: child.label };
      if (Array.isArray(value)) for (const item of value) this.value(item, child, at, resource);
      else this.value(value, child, at, resource);
    }
  }

  private value(value: unknown, child: Child, where: Where, resource: Json): void {
    if (!isObject(value)) return;
    if (child.holder) return this.node(value, shapeOf(this.version, child.holder), where, resource);
    const type = value.resourceType;
    if (typeof type === 'string' && isResourceType(this.version, type)) this.node(value, shapeOf(this.version, type), where, value);
  }
}

/** Whether `holds` is certainly true of every value of an element (each an object; a primitive's extension: not certain). */
function everyHolds(node: Json, keys: string[], holds: (element: Json) => boolean): boolean {
  for (const key of keys) {
    const value = node[key];
    if (value === undefined) continue;
    if (key[0] === '_') return false;
    if (Array.isArray(value) ? !value.every((v) => isObject(v) && holds(v)) : !(isObject(value) && holds(value))) return false;
  }
  return true;
}

/** `value`, or a copy with FhirDecimals as numbers when it holds some, for the FHIRPath engine (which compares numbers, not digits). */
function asNumbers(value: unknown): unknown {
  return hasDecimal(value) ? numeric(value) : value;
}

function numeric(value: unknown): unknown {
  if (isFhirDecimal(value)) return Number(value);
  if (Array.isArray(value)) return value.map(numeric);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = numeric(v);
  return out;
}

/**
 * The invariants `resource` breaks (a resource of a known type of `version`), each once per rule and path.
 * `shortcuts: false` has the engine decide every rule whose element is present (the tests compare the two).
 */
export function invariantViolations(
  version: FhirVersion,
  resource: Record<string, unknown> & { resourceType: string },
  options: { shortcuts?: boolean } = {},
): InvariantViolation[] {
  const walk = new Walk(version, resource, options.shortcuts ?? true);
  walk.node(resource, shapeOf(version, resource.resourceType), { label: resource.resourceType }, resource);
  const out = [...walk.found.values()];
  if (version === 'R4' && Array.isArray(resource.contained) && !dom3(resource)) out.push({ key: 'dom-3', human: DOM_3, path: resource.resourceType });
  const ids = new Set(((resource.contained as { id?: string }[] | undefined) ?? []).map((c) => `#${c?.id}`));
  for (const ref of localReferences(resource, new Set(), true, 'contained')) {
    if (ref !== '#' && !ids.has(ref)) out.push({ key: 'ref-1', human: REF_1, path: `${resource.resourceType} (reference '${ref}')` });
  }
  return out;
}

/** R4's dom-3: every contained resource is referred to as `#id` from elsewhere, or refers to its container as `#`. */
function dom3(resource: Record<string, unknown>): boolean {
  const { contained, ...rest } = resource;
  const fromContainer = localReferences(rest, new Set());
  const each = (contained as unknown[]).map((c) => localReferences(c, new Set()));
  return (contained as { id?: string }[]).every((c, i) => {
    const id = `#${c?.id}`;
    return fromContainer.has(id) || each.some((refs, j) => j !== i && refs.has(id)) || each[i].has('#');
  });
}

/**
 * Every string starting with `#` (references, canonicals and uris to contained resources); only `reference`s with
 * `onlyReferences` (then primitives are not visited at all). `skip`: a key of `node` itself left out (`contained`).
 */
function localReferences(node: unknown, into: Set<string>, onlyReferences = false, skip?: string): Set<string> {
  if (typeof node === 'string') {
    if (!onlyReferences && node.startsWith('#')) into.add(node);
  } else if (Array.isArray(node)) for (const n of node) localReferences(n, into, onlyReferences);
  else if (node && typeof node === 'object') {
    // A FhirDecimal is walked like any object: it holds no `reference` and no text that starts with '#'.
    const obj = node as Record<string, unknown>;
    const reference = obj.reference;
    if (onlyReferences && typeof reference === 'string' && reference.startsWith('#')) into.add(reference);
    for (const key in obj) {
      if (key === skip) continue;
      const v = obj[key];
      if (!onlyReferences || (v !== null && typeof v === 'object')) localReferences(v, into, onlyReferences);
    }
  }
  return into;
}

function hasDecimal(node: unknown): boolean {
  if (isFhirDecimal(node)) return true;
  if (Array.isArray(node)) return node.some(hasDecimal);
  if (node === null || typeof node !== 'object') return false;
  for (const v of Object.values(node)) if (hasDecimal(v)) return true;
  return false;
}

/** Compiles the invariants of `types` now rather than on the first resource of each. */
export function warmInvariants(version: FhirVersion, types: readonly string[]): void {
  for (const type of types) shapeOf(version, type);
}

const SYSTEM_TO_FHIR: Record<string, string> = { Boolean: 'boolean', String: 'string', Integer: 'integer', Decimal: 'decimal', Date: 'date', DateTime: 'dateTime', Time: 'time' };

/**
 * A few published invariants test an element's type with FHIRPath's System type (`answer is Boolean`, que-7),
 * which never matches a FHIR `boolean` element in a conformant engine: every valid resource would break them.
 * They mean the FHIR primitive, so that is what they are given.
 */
function fhirTypeNames(expression: string): string {
  return expression.replace(/\b(is|as)\s+(Boolean|String|Integer|Decimal|Date|DateTime|Time)\b/g, (_m, op: string, type: string) => `${op} ${SYSTEM_TO_FHIR[type]}`);
}
