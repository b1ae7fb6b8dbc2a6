import fhirpath from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4';
import stu3Model from 'fhirpath/fhir-context/stu3';
import { splitUnion } from './searchParameters';
import type { FhirVersion } from './types';

/**
 * Compiles a search parameter's FHIRPath expression into a function from a resource to the values it
 * selects. Search-parameter expressions are nearly all plain paths with a few idioms (`ofType`, `as`,
 * `where(resolve() is X)`, `where(a='b')`); those are compiled to a direct walk over the JSON, which is
 * what keeps indexing cheap on bulk loads. Anything else goes to HL7's `fhirpath` engine.
 */
export type Extractor = (resource: unknown) => unknown[];

const CHOICE_SUFFIXES = new Set(
  (
    'Base64Binary Boolean Canonical Code Date DateTime Decimal Id Instant Integer Markdown Oid PositiveInt String Time ' +
    'UnsignedInt Uri Url Uuid Address Age Annotation Attachment CodeableConcept Coding ContactPoint Count Distance ' +
    'Duration HumanName Identifier Money Period Quantity Range Ratio Reference SampledData Signature Timing ' +
    'ContactDetail Contributor DataRequirement Expression ParameterDefinition RelatedArtifact TriggerDefinition ' +
    'UsageContext Dosage Meta'
  ).split(' '),
);

/**
 * The names of choice elements (`value[x]` → `value`) in either version's model: only these can stand for a
 * `nameX` key, so a path step looks for one only when its element is absent and its name is here. Without the
 * check, every absent element cost a walk over its parent's keys (most steps of most parameters on most resources).
 */
const CHOICE_NAMES = new Set(
  [r4Model, stu3Model].flatMap((model) => Object.keys((model as { choiceTypePaths: Record<string, unknown> }).choiceTypePaths).map((p) => p.slice(p.lastIndexOf('.') + 1))),
);

/**
 * One step of a compiled path. A term is evaluated depth first (each value through the remaining steps before the
 * next value), which selects the values in the same order as step-by-step evaluation over whole collections but
 * allocates nothing per step: this runs for every indexed parameter of every written resource.
 */
type Step =
  | { kind: 'root'; root: string }
  /** A child element; `choice`: the name of a choice element, which a `nameX` key may stand for. */
  | { kind: 'child'; name: string; index?: number; choice: boolean }
  /** `ofType(X)`/`as(X)`: the choice element `nameX` of the parent the value came from (once per parent). */
  | { kind: 'ofType'; suffix: string }
  | { kind: 'resolveIs'; type: string }
  | { kind: 'equals'; field: string; literal: string };

const cap = (s: string) => s[0].toUpperCase() + s.slice(1);

function child(name: string, index?: number): Step {
  return { kind: 'child', name, index, choice: CHOICE_NAMES.has(name) };
}

function referenceType(reference: string): string | undefined {
  const parts = reference.split('/');
  const i = parts.length >= 4 && parts[parts.length - 2] === '_history' ? parts.length - 4 : parts.length - 2;
  return i >= 0 ? parts[i] : undefined;
}

/** One evaluation of a term: where its values go, and the parents each `ofType` step has already taken. */
interface Run {
  steps: Step[];
  out: unknown[];
  seen?: Map<number, Set<Record<string, unknown>>>;
}

/** Passes `value` (from key `name` of `parent`) on to step `at`; an array's elements one by one, nothing for null. */
function emit(run: Run, at: number, value: unknown, parent: Record<string, unknown>, name: string): void {
  if (value === undefined || value === null) return;
  if (Array.isArray(value)) for (const v of value) walk(run, at, v, parent, name);
  else walk(run, at, value, parent, name);
}

/** Step `at` of the term on one value (from key `name` of `parent`, when it came from an object). */
function walk(run: Run, at: number, value: unknown, parent: Record<string, unknown> | undefined, name: string | undefined): void {
  if (at === run.steps.length) {
    run.out.push(value);
    return;
  }
  const step = run.steps[at];
  switch (step.kind) {
    case 'root':
      if (step.root === 'Resource' || step.root === 'DomainResource' || (value as { resourceType?: string })?.resourceType === step.root) walk(run, at + 1, value, parent, name);
      return;
    case 'child': {
      if (value === null || typeof value !== 'object') return;
      const obj = value as Record<string, unknown>;
      const direct = obj[step.name];
      if (direct !== undefined) {
        const index = step.index;
        if (index !== undefined) emit(run, at + 1, Array.isArray(direct) ? direct[index] : index === 0 ? direct : undefined, obj, step.name);
        else emit(run, at + 1, direct, obj, step.name);
        return;
      }
      if (!step.choice) return;
      // A choice element (`value[x]`) named without its type: every `valueX` present.
      for (const key of Object.keys(obj)) {
        if (key.length > step.name.length && key.startsWith(step.name) && CHOICE_SUFFIXES.has(key.slice(step.name.length))) emit(run, at + 1, obj[key], obj, step.name);
      }
      return;
    }
    case 'ofType': {
      if (!parent || !name) return;
      const seen = (run.seen ??= new Map());
      let parents = seen.get(at);
      if (!parents) seen.set(at, (parents = new Set()));
      if (parents.has(parent)) return;
      parents.add(parent);
      emit(run, at + 1, parent[`${name}${step.suffix}`], parent, `${name}${step.suffix}`);
      return;
    }
    case 'resolveIs': {
      const ref = (value as { reference?: unknown })?.reference;
      if (typeof ref === 'string' && referenceType(ref) === step.type) walk(run, at + 1, value, parent, name);
      return;
    }
    case 'equals':
      if ((value as Record<string, unknown>)?.[step.field] === step.literal) walk(run, at + 1, value, parent, name);
      return;
  }
}

function splitSteps(path: string): string[] | undefined {
  const steps: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < path.length; i++) {
    const ch = path[i];
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === '.' && depth === 0) {
      steps.push(path.slice(start, i));
      start = i + 1;
    }
  }
  steps.push(path.slice(start));
  return depth === 0 ? steps : undefined;
}

/** One term of a union: its first step names the type the path starts from (`Observation`, `Resource`). */
function compileTerm(term: string): Step[] | undefined {
  let text = term.trim();
  while (text.startsWith('(') && text.endsWith(')')) text = text.slice(1, -1).trim();
  let trailingType: string | undefined;
  const as = /^(.*)\s+as\s+([A-Za-z]+)$/.exec(text);
  if (as) {
    text = as[1].trim();
    while (text.startsWith('(') && text.endsWith(')')) text = text.slice(1, -1).trim();
    trailingType = as[2];
  }
  const parts = splitSteps(text);
  if (!parts || !/^[A-Z][A-Za-z]*$/.test(parts[0])) return undefined;
  const root = parts[0];
  const steps: Step[] = [{ kind: 'root', root }];
  for (const part of parts.slice(1)) {
    let m: RegExpExecArray | null;
    if ((m = /^([a-z][A-Za-z0-9]*)(?:\[(\d+)\])?$/.exec(part))) steps.push(child(m[1], m[2] === undefined ? undefined : Number(m[2])));
    else if ((m = /^(?:ofType|as)\(([A-Za-z]+)\)$/.exec(part))) steps.push({ kind: 'ofType', suffix: cap(m[1]) });
    else if ((m = /^where\(resolve\(\) is ([A-Z][A-Za-z]*)\)$/.exec(part))) steps.push({ kind: 'resolveIs', type: m[1] });
    else if ((m = /^where\(([a-z][A-Za-z]*)\s*=\s*'([^']*)'\)$/.exec(part))) steps.push({ kind: 'equals', field: m[1], literal: m[2] });
    else return undefined;
  }
  if (trailingType) steps.push({ kind: 'ofType', suffix: cap(trailingType) });
  return steps;
}

const rootOf = (term: Step[]) => (term[0] as { root: string }).root;

/**
 * The terms of a union that apply to an input of type `type` (its `resourceType`; undefined for an element):
 * those starting from `Resource` or `DomainResource`, and those starting from that type. A parameter shared by
 * many types (`patient`, `code`, `date`: one term per type) then walks only its own type's terms.
 */
function termsFor(terms: Step[][]): (type: unknown) => Step[][] {
  const generic = terms.filter((t) => rootOf(t) === 'Resource' || rootOf(t) === 'DomainResource');
  const byType = new Map<string, Step[][]>();
  return (type) => {
    if (typeof type !== 'string') return generic;
    let chosen = byType.get(type);
    if (!chosen) {
      chosen = terms.filter((t) => generic.includes(t) || rootOf(t) === type);
      // Types come from the data: remember the first few hundred (there are fewer resource types than that).
      if (byType.size < 500) byType.set(type, chosen);
    }
    return chosen;
  };
}

const cache = new Map<string, Extractor>();
/** The terms of each expression the direct walk covers, by the same key: see `firstElements`. */
const termCache = new Map<string, (type: unknown) => Step[][]>();

/**
 * The elements one of which a resource of `type` must have for `expression` to select anything from it: the
 * first element of each of its terms for that type (`Observation.code` → `code`). Undefined when that cannot be
 * said (a term starts with a choice element or an operator, or HL7's engine evaluates the expression). Lets the
 * indexer skip a parameter of a resource without calling its extractor.
 */
export function firstElements(expression: string, version: FhirVersion, type: string): string[] | undefined {
  compileExpression(expression, version);
  const applicable = termCache.get(version === 'R4' ? expression : `${version}|${expression}`);
  if (!applicable) return undefined;
  const names: string[] = [];
  for (const steps of applicable(type)) {
    const first = steps[1];
    if (first === undefined || first.kind !== 'child' || first.choice) return undefined;
    names.push(first.name);
  }
  return names;
}

/** `version` picks the model HL7's engine resolves types with, for the expressions the direct walk does not cover. */
export function compileExpression(expression: string, version: FhirVersion = 'R4'): Extractor {
  const key = version === 'R4' ? expression : `${version}|${expression}`;
  const hit = cache.get(key);
  if (hit) return hit;
  let extractor: Extractor;
  const terms = splitUnion(expression).map(compileTerm);
  if (terms.every((t): t is Step[] => t !== undefined)) {
    const applicable = termsFor(terms);
    termCache.set(key, applicable);
    extractor = (resource) => {
      const out: unknown[] = [];
      const obj = resource !== null && typeof resource === 'object' ? (resource as Record<string, unknown>) : undefined;
      for (const steps of applicable(obj?.resourceType)) {
        // A term whose first element is absent selects nothing (most parameters of most resources): not walked.
        const first = steps[1];
        if (first !== undefined && first.kind === 'child' && !first.choice && (obj === undefined || obj[first.name] === undefined || obj[first.name] === null)) continue;
        walk({ steps, out }, 0, resource, undefined, undefined);
      }
      return out;
    };
  } else {
    const compiled = fhirpath.compile(expression, (version === 'R4' ? r4Model : stu3Model) as never, { resolveInternalTypes: true });
    extractor = (resource) => {
      try {
        return compiled(resource as never) as unknown[];
      } catch {
        // An expression the data cannot satisfy (e.g. an STU3 shape) selects nothing.
        return [];
      }
    };
  }
  cache.set(key, extractor);
  return extractor;
}
