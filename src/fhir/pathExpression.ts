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

interface Item {
  value: unknown;
  /** Where the value came from, so `ofType(X)` can pick the choice element `nameX` of the parent. */
  parent?: Record<string, unknown>;
  name?: string;
}

type Step = (items: Item[]) => Item[];

const cap = (s: string) => s[0].toUpperCase() + s.slice(1);

function push(out: Item[], value: unknown, parent: Record<string, unknown>, name: string): void {
  if (value === undefined || value === null) return;
  if (Array.isArray(value)) for (const v of value) out.push({ value: v, parent, name });
  else out.push({ value, parent, name });
}

function child(name: string, index?: number): Step {
  const choice = CHOICE_NAMES.has(name);
  return (items) => {
    const out: Item[] = [];
    for (const { value } of items) {
      if (value === null || typeof value !== 'object') continue;
      const obj = value as Record<string, unknown>;
      const direct = obj[name];
      if (direct !== undefined) {
        if (index !== undefined) push(out, Array.isArray(direct) ? direct[index] : index === 0 ? direct : undefined, obj, name);
        else push(out, direct, obj, name);
        continue;
      }
      if (!choice) continue;
      // A choice element (`value[x]`) named without its type: every `valueX` present.
      for (const key of Object.keys(obj)) {
        if (key.length > name.length && key.startsWith(name) && CHOICE_SUFFIXES.has(key.slice(name.length))) push(out, obj[key], obj, name);
      }
    }
    return out;
  };
}

function ofType(type: string): Step {
  return (items) => {
    const out: Item[] = [];
    const seen = new Set<Record<string, unknown>>();
    for (const item of items) {
      if (!item.parent || !item.name || seen.has(item.parent)) continue;
      seen.add(item.parent);
      push(out, item.parent[`${item.name}${cap(type)}`], item.parent, `${item.name}${cap(type)}`);
    }
    return out;
  };
}

function referenceType(reference: string): string | undefined {
  const parts = reference.split('/');
  const i = parts.length >= 4 && parts[parts.length - 2] === '_history' ? parts.length - 4 : parts.length - 2;
  return i >= 0 ? parts[i] : undefined;
}

function whereResolveIs(type: string): Step {
  return (items) =>
    items.filter(({ value }) => {
      const ref = (value as { reference?: unknown })?.reference;
      return typeof ref === 'string' && referenceType(ref) === type;
    });
}

function whereEquals(field: string, literal: string): Step {
  return (items) => items.filter(({ value }) => (value as Record<string, unknown>)?.[field] === literal);
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

/** One term of a union: the type its path starts from (`Observation`, `Resource`) and the steps after it. */
interface Term {
  root: string;
  steps: Step[];
}

function compileTerm(term: string): Term | undefined {
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
  const steps: Step[] = [];
  for (const part of parts.slice(1)) {
    let m: RegExpExecArray | null;
    if ((m = /^([a-z][A-Za-z0-9]*)(?:\[(\d+)\])?$/.exec(part))) steps.push(child(m[1], m[2] === undefined ? undefined : Number(m[2])));
    else if ((m = /^(?:ofType|as)\(([A-Za-z]+)\)$/.exec(part))) steps.push(ofType(m[1]));
    else if ((m = /^where\(resolve\(\) is ([A-Z][A-Za-z]*)\)$/.exec(part))) steps.push(whereResolveIs(m[1]));
    else if ((m = /^where\(([a-z][A-Za-z]*)\s*=\s*'([^']*)'\)$/.exec(part))) steps.push(whereEquals(m[1], m[2]));
    else return undefined;
  }
  if (trailingType) steps.push(ofType(trailingType));
  return { root, steps };
}

/**
 * The terms of a union that apply to an input of type `type` (its `resourceType`; undefined for an element):
 * those starting from `Resource` or `DomainResource`, and those starting from that type. A parameter shared by
 * many types (`patient`, `code`, `date`: one term per type) then walks only its own type's terms.
 */
function termsFor(terms: Term[]): (type: unknown) => Step[][] {
  const generic = terms.filter((t) => t.root === 'Resource' || t.root === 'DomainResource');
  const all = generic.map((t) => t.steps);
  const byType = new Map<string, Step[][]>();
  return (type) => {
    if (typeof type !== 'string') return all;
    let chosen = byType.get(type);
    if (!chosen) {
      chosen = terms.filter((t) => generic.includes(t) || t.root === type).map((t) => t.steps);
      // Types come from the data: remember the first few hundred (there are fewer resource types than that).
      if (byType.size < 500) byType.set(type, chosen);
    }
    return chosen;
  };
}

const cache = new Map<string, Extractor>();

/** `version` picks the model HL7's engine resolves types with, for the expressions the direct walk does not cover. */
export function compileExpression(expression: string, version: FhirVersion = 'R4'): Extractor {
  const key = version === 'R4' ? expression : `${version}|${expression}`;
  const hit = cache.get(key);
  if (hit) return hit;
  let extractor: Extractor;
  const terms = splitUnion(expression).map(compileTerm);
  if (terms.every((t): t is Term => t !== undefined)) {
    const applicable = termsFor(terms);
    extractor = (resource) => {
      const out: unknown[] = [];
      for (const steps of applicable((resource as { resourceType?: unknown } | null | undefined)?.resourceType)) {
        let items: Item[] = [{ value: resource }];
        for (const step of steps) {
          items = step(items);
          if (!items.length) break;
        }
        for (const item of items) out.push(item.value);
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
