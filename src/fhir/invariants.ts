import fhirpath from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4';
import stu3Model from 'fhirpath/fhir-context/stu3';
import { readProfiles } from './definitions';
import { certainlyHolds } from './invariantShortcuts';
import { isFhirDecimal } from './losslessJson';
import type { FhirVersion } from './types';

/**
 * The FHIRPath invariants of the StructureDefinitions of the endpoint's FHIR version, R4 or STU3, each with its
 * own version's expressions and FHIRPath model (`ElementDefinition.constraint` of severity error): the
 * resource's own (`dom-2`…`dom-5`, `obs-6`, `pat-1`…) and those of the datatypes it holds (`per-1` on every
 * Period, `qty-3`, `rng-2`, `ref-1`, `att-1`, `tim-*` on Timing.repeat…). Each applies at each element of its
 * path: `Observation.effective.ofType(Period).where((<per-1>) = false).empty()`.
 *
 * Compiled lazily per resource type and cached, with each constraint's element path as JSON steps. A
 * constraint is evaluated only where its element is present (most resources carry few of the elements that
 * have one), and not where a shortcut (invariantShortcuts.ts) shows it certainly holds — FHIRPath evaluation
 * costs ≈ 50 µs a call and ≈ 0.5 ms for a per-1 date comparison, so this is what keeps full validation cheap on
 * bulk loads (Synthea: ≈ 20 µs of invariants per resource, from ≈ 180). Left out: `ele-1` and `ext-1` (no empty
 * element, extension with value or children: the structural rules of schemaRules.ts enforce them for every
 * element, at far less cost), datatypes nested in datatypes (a Period inside an Identifier) beyond the first
 * level, and `txt-1`/`txt-2` (their context path `….text.div` names `div`, a FHIRPath operator, so it does not
 * compile; R4 and STU3 alike).
 */
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
  constraint?: Constraint[];
}

/**
 * One step of an element path in the JSON: a key (`component`), or the stem of a choice element whose type the
 * path leaves open (`bounds` of `Timing.repeat.bounds[x]`: any of `boundsDuration`, `boundsRange`, `boundsPeriod`).
 */
type Step = { key: string } | { stem: string };

interface Compiled {
  key: string;
  human: string;
  path: string;
  /**
   * The JSON steps from the resource to the element the constraint applies at. `context.where(…).empty()` is
   * true when the context is empty, so a constraint whose element is absent cannot be broken and is not run;
   * undefined: the resource's own constraints, always run (or only with `contained`, see `contained`).
   */
  steps?: Step[];
  /** A resource-level constraint about contained resources: run only when there are some. */
  contained?: boolean;
  /** True when the constraint certainly holds at this element (shortcuts.ts); the engine runs only where it is not. */
  holds?: (element: Record<string, unknown>) => boolean;
  run: (resource: unknown) => unknown[];
}

/**
 * ele-1, ext-1: see above. R4's dom-3 as published applies `as()` to collections, which a conformant engine
 * refuses: see dom3. STU3's dom-3 (referred to by a `reference` anywhere in the resource) runs as published.
 */
const SKIPPED: Record<FhirVersion, ReadonlySet<string>> = { R4: new Set(['ele-1', 'ext-1', 'dom-3', 'ref-1']), STU3: new Set(['ele-1', 'ext-1', 'ref-1']) };
const MODELS = { R4: r4Model, STU3: stu3Model } as const;
/** ref-1 is on every Reference (a dozen per resource): checked natively in one walk, see localReferences. */
const REF_1 = 'SHALL have a contained resource if a local reference is provided';
const DOM_3 = 'If the resource is contained in another resource, it SHALL be referred to from elsewhere in the resource or SHALL refer to the containing resource';

interface Elements {
  resources: Map<string, SdElement[]>;
  datatypes: Map<string, SdElement[]>;
}

const loaded = new Map<FhirVersion, Elements>();

function load(version: FhirVersion): Elements {
  let elements = loaded.get(version);
  if (elements) return elements;
  elements = { resources: new Map(), datatypes: new Map() };
  for (const [file, into, kind] of [
    ['profiles-resources.json', elements.resources, 'resource'],
    ['profiles-types.json', elements.datatypes, 'complex-type'],
  ] as const) {
    const bundle = readProfiles<{ entry: { resource: { resourceType: string; id: string; kind?: string; derivation?: string; snapshot?: { element: SdElement[] } } }[] }>(
      version,
      file,
    );
    for (const { resource } of bundle.entry) {
      if (resource.resourceType === 'StructureDefinition' && resource.kind === kind && resource.derivation !== 'constraint' && resource.snapshot)
        into.set(resource.id, resource.snapshot.element);
    }
  }
  loaded.set(version, elements);
  return elements;
}

const cap = (s: string) => s[0].toUpperCase() + s.slice(1);

const plans: Record<FhirVersion, Map<string, Compiled[]>> = { R4: new Map(), STU3: new Map() };

/** `value[x]` → a stem step; `code` → a key step. */
const stepOf = (part: string): Step => (part.endsWith('[x]') ? { stem: part.slice(0, -3) } : { key: part });

function plan(version: FhirVersion, type: string): Compiled[] {
  let list = plans[version].get(type);
  if (list) return list;
  const { resources, datatypes } = load(version);
  const skipped = SKIPPED[version];
  const errors = (e: SdElement) => (e.constraint ?? []).filter((c) => c.severity === 'error' && c.expression && !skipped.has(c.key));
  list = [];
  const add = (context: string, c: Constraint, steps: Step[] | undefined) => {
    // Broken where the constraint is false; empty (about elements that are absent) is not broken.
    const own = fhirTypeNames(c.expression as string);
    const expression = context === type ? own : `${context}.where((${own}) = false).empty()`;
    try {
      const fn = fhirpath.compile(expression, MODELS[version], { traceFn: () => undefined });
      list!.push({
        key: c.key,
        human: c.human,
        path: context,
        steps,
        contained: !steps && c.expression?.startsWith('contained'),
        holds: certainlyHolds(own),
        run: (r) => fn(r, { resource: r, rootResource: r }) as unknown[],
      });
    } catch {
      // An expression fhirpath.js cannot compile is not checked (txt-1 and txt-2, see above).
    }
  };
  for (const e of resources.get(type) ?? []) {
    const parts = e.path.split('.');
    const steps = parts.slice(1).map(stepOf);
    // The resource's own (dom-2…dom-5) have no element path: see `contained`.
    for (const c of errors(e)) add(e.path.replace(/\[x\]/g, ''), c, steps.length ? steps : undefined);
    if (parts.length < 2) continue;
    // Constraints of the datatypes this element holds, at their own paths inside it.
    for (const t of e.type ?? []) {
      const inner = datatypes.get(t.code);
      if (!inner) continue;
      const choice = e.path.endsWith('[x]');
      const here = choice ? `${e.path.slice(0, -3)}.ofType(${t.code})` : e.path;
      // `Observation.value.ofType(Quantity)` is `valueQuantity` in the JSON.
      const typed = choice ? [...steps.slice(0, -1), { key: `${parts[parts.length - 1].slice(0, -3)}${cap(t.code)}` }] : steps;
      for (const d of inner) {
        const rest = d.path.split('.').slice(1);
        for (const c of errors(d)) add(rest.length ? `${here}.${rest.join('.').replace(/\[x\]/g, '')}` : here, c, [...typed, ...rest.map(stepOf)]);
      }
    }
  }
  plans[version].set(type, list);
  return list;
}

/**
 * Whether the element at `steps` is present anywhere below `node` (arrays crossed as FHIRPath crosses them). A
 * primitive carried only by its extension (`_birthDate`) is present too. Errs on the side of present.
 */
function present(node: unknown, steps: Step[], from = 0): boolean {
  if (from === steps.length) return node !== undefined && node !== null;
  if (Array.isArray(node)) return node.some((n) => present(n, steps, from));
  if (node === null || typeof node !== 'object' || isFhirDecimal(node)) return false;
  const o = node as Record<string, unknown>;
  const step = steps[from];
  if ('key' in step) return present(o[step.key], steps, from + 1) || (from === steps.length - 1 && o[`_${step.key}`] !== undefined);
  for (const k of Object.keys(o)) {
    const name = k[0] === '_' ? k.slice(1) : k;
    if (name.length > step.stem.length && name.startsWith(step.stem) && name[step.stem.length] === cap(name[step.stem.length]) && present(o[k], steps, from + 1)) return true;
  }
  return false;
}

/** Whether `test` holds at every element at `steps` below `node` (each an object; a primitive there: no). */
function everyAt(node: unknown, steps: Step[], test: (element: Record<string, unknown>) => boolean, from = 0): boolean {
  if (node === undefined || node === null) return true;
  if (Array.isArray(node)) return node.every((n) => everyAt(n, steps, test, from));
  if (typeof node !== 'object' || isFhirDecimal(node)) return false;
  const o = node as Record<string, unknown>;
  if (from === steps.length) return test(o);
  const step = steps[from];
  // A primitive's extension (`_start`) is an element the engine would visit: not certain.
  if ('key' in step) return o[`_${step.key}`] === undefined && everyAt(o[step.key], steps, test, from + 1);
  for (const k of Object.keys(o)) {
    const name = k[0] === '_' ? k.slice(1) : k;
    if (name.length > step.stem.length && name.startsWith(step.stem) && name[step.stem.length] === cap(name[step.stem.length]) && !everyAt(o[k], steps, test, from + 1))
      return false;
  }
  return true;
}

/** A copy with FhirDecimals as numbers, for the FHIRPath engine (which compares numbers, not digits). */
function numeric(value: unknown): unknown {
  if (isFhirDecimal(value)) return Number(value);
  if (Array.isArray(value)) return value.map(numeric);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = numeric(v);
  return out;
}

/**
 * The invariants `resource` breaks (a resource of a known type of `version`). `shortcuts: false` has the engine
 * decide every constraint whose element is present (the tests compare the two).
 */
export function invariantViolations(
  version: FhirVersion,
  resource: Record<string, unknown> & { resourceType: string },
  options: { shortcuts?: boolean } = {},
): InvariantViolation[] {
  const shortcuts = options.shortcuts ?? true;
  const out: InvariantViolation[] = [];
  // The engine compares numbers, not digits: it gets FhirDecimals as plain numbers (copied only if needed).
  let input: unknown;
  for (const c of plan(version, resource.resourceType)) {
    if (c.steps ? !present(resource, c.steps) : c.contained && resource.contained === undefined) continue;
    if (shortcuts && c.holds && (c.steps ? everyAt(resource, c.steps, c.holds) : c.holds(resource))) continue;
    input ??= hasDecimal(resource) ? numeric(resource) : resource;
    let result: unknown[];
    try {
      result = c.run(input);
    } catch {
      // An expression the engine cannot evaluate on this data is not held against the resource.
      continue;
    }
    if (result.length === 1 && result[0] === false) out.push({ key: c.key, human: c.human, path: c.path });
  }
  if (version === 'R4' && Array.isArray(resource.contained) && !dom3(resource)) out.push({ key: 'dom-3', human: DOM_3, path: resource.resourceType });
  const ids = new Set(((resource.contained as { id?: string }[] | undefined) ?? []).map((c) => `#${c?.id}`));
  const { contained: _c, ...own } = resource;
  for (const ref of localReferences(own, new Set(), true)) {
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

/** Every string starting with `#` (references, canonicals and uris to contained resources); only `reference`s with `onlyReferences`. */
function localReferences(node: unknown, into: Set<string>, onlyReferences = false): Set<string> {
  if (typeof node === 'string') {
    if (!onlyReferences && node.startsWith('#')) into.add(node);
  } else if (Array.isArray(node)) for (const n of node) localReferences(n, into, onlyReferences);
  else if (node && typeof node === 'object' && !isFhirDecimal(node)) {
    const reference = (node as { reference?: unknown }).reference;
    if (onlyReferences && typeof reference === 'string' && reference.startsWith('#')) into.add(reference);
    for (const v of Object.values(node)) localReferences(v, into, onlyReferences);
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
  for (const type of types) plan(version, type);
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
