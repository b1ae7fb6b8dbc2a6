import { isFhirDecimal } from './losslessJson';

/**
 * Cheap, one-sided verdicts on FHIRPath invariants: `certainlyHolds(expression)` reads an invariant as a
 * disjunction (`a or b or …`) and returns a test that says "holds" when one of the disjuncts is certainly true of
 * an element's JSON, without the FHIRPath engine (whose per-call cost, ≈ 50 µs, and date comparisons, ≈ 0.5 ms
 * for `per-1`, were most of validation's cost on bulk loads). A test that cannot tell returns false and the
 * engine decides, so a violation is only ever reported by the engine: the shortcuts change the cost, never the
 * verdict. Recognised disjuncts (the forms that carry the cost in R4's core invariants):
 *
 * - `x.empty()`, `x.exists().not()`, `x.hasValue().not()` and chains from `x` through functions that keep an
 *   empty input empty (`x.where(…).empty()`): true when the element `x` is absent;
 * - chains of element names and `where(name = 'literal' and …)` ending in `.empty()` or `.exists()`, evaluated
 *   on the JSON where it alone decides (no primitive extensions or choice elements on the way);
 * - `x.hasValue()`: true when `x` has a value; a conjunction when each part is certainly true;
 * - `x <= y` (and `<`, `>=`, `>`) on two dateTimes given to the second with a time zone, or two full dates: the
 *   comparison itself (`per-1`: `start <= end`).
 */
type Element = Record<string, unknown>;
type Test = (element: Element) => boolean;

/** Functions that map an empty collection to an empty one (FHIRPath §5): a chain of them from an absent element is empty. */
const EMPTY_KEEPING = new Set([
  'where',
  'select',
  'ofType',
  'as',
  'first',
  'last',
  'tail',
  'skip',
  'take',
  'distinct',
  'extension',
  'children',
  'descendants',
  'repeat',
  'resolve',
  'intersect',
  'exclude',
  'trace',
]);

const NAME = /^[a-z][A-Za-z0-9]*$/;

/** Splits at `sep` outside parentheses, brackets and quotes. */
function splitTop(text: string, sep: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      if (ch === '\\') i++;
      else if (ch === quote) quote = undefined;
    } else if (ch === "'" || ch === '`') quote = ch;
    else if (ch === '(' || ch === '[' || ch === '{') depth++;
    else if (ch === ')' || ch === ']' || ch === '}') depth--;
    else if (depth === 0 && text.startsWith(sep, i)) {
      parts.push(text.slice(start, i));
      start = i + sep.length;
      i += sep.length - 1;
    }
  }
  if (depth !== 0 || quote) return [text];
  parts.push(text.slice(start));
  return parts;
}

/** `(a or b)` → `a or b` when the outer parentheses enclose the whole text. */
function unwrap(text: string): string {
  let t = text.trim();
  while (t.startsWith('(') && t.endsWith(')') && balanced(t.slice(1, -1))) t = t.slice(1, -1).trim();
  return t;
}

function balanced(text: string): boolean {
  let depth = 0;
  for (const ch of text) {
    if (ch === '(') depth++;
    else if (ch === ')' && --depth < 0) return false;
  }
  return depth === 0;
}

/** The steps of a chain `a.where(…).b.empty()` at the top level: `['a', 'where(…)', 'b', 'empty()']`, or undefined. */
function chain(text: string): string[] | undefined {
  const steps = splitTop(text, '.');
  return steps.every((s) => /^[A-Za-z][A-Za-z0-9]*(\(.*\))?$/s.test(s)) ? steps : undefined;
}

const fnName = (step: string) => (step.includes('(') ? step.slice(0, step.indexOf('(')) : undefined);

/** Absent: neither the element nor its primitive extension (`_x`) nor, `x` being a choice, any `x<Type>`. */
function absent(element: Element, name: string): boolean {
  for (const k of Object.keys(element)) {
    const base = k[0] === '_' ? k.slice(1) : k;
    if (base === name || (base.length > name.length && base.startsWith(name) && base[name.length] >= 'A' && base[name.length] <= 'Z')) return false;
  }
  return true;
}

const hasValue = (element: Element, name: string) => {
  const v = element[name];
  return typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number' || isFhirDecimal(v);
};

const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** -1/0/1, or undefined when the two values are not both instants to the second, or both full dates. */
function compareDates(a: unknown, b: unknown): number | undefined {
  if (typeof a !== 'string' || typeof b !== 'string') return undefined;
  if (DATE.test(a) && DATE.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  if (!INSTANT.test(a) || !INSTANT.test(b)) return undefined;
  const d = Date.parse(a) - Date.parse(b);
  return Number.isNaN(d) ? undefined : Math.sign(d);
}

const COMPARISONS: Record<string, (sign: number) => boolean> = { '<=': (s) => s <= 0, '<': (s) => s < 0, '>=': (s) => s >= 0, '>': (s) => s > 0 };

/** `system = 'http://…' and code = 'x'`: the conditions of a `where` this file evaluates itself, or undefined. */
function equalities(cond: string): [name: string, literal: string][] | undefined {
  const out: [string, string][] = [];
  for (const part of splitTop(unwrap(cond), ' and ')) {
    const m = /^([a-z][A-Za-z0-9]*)\s*=\s*'([^'\\]*)'$/.exec(unwrap(part));
    if (!m) return undefined;
    out.push([m[1], m[2]]);
  }
  return out;
}

/**
 * The collection a chain of element names and `where(name = 'literal' and …)` steps selects from `element`, or
 * undefined wherever the JSON alone cannot tell what the engine would select (a primitive's extension, a choice
 * element, a value that is no string where a string is compared).
 */
type Navigate = (element: Element) => unknown[] | undefined;

function navigator(steps: string[]): Navigate | undefined {
  const ops: ((items: unknown[]) => unknown[] | undefined)[] = [];
  for (const step of steps) {
    if (NAME.test(step)) {
      ops.push((items) => {
        const out: unknown[] = [];
        for (const item of items) {
          if (item === null || typeof item !== 'object' || Array.isArray(item) || isFhirDecimal(item)) return undefined;
          const o = item as Element;
          const v = o[step];
          if (v === undefined) {
            if (!absent(o, step)) return undefined;
          } else if (o[`_${step}`] !== undefined) return undefined;
          else if (Array.isArray(v)) out.push(...v);
          else if (v !== null) out.push(v);
        }
        return out;
      });
      continue;
    }
    const where = /^where\((.*)\)$/s.exec(step);
    const conds = where ? equalities(where[1]) : undefined;
    if (!conds) return undefined;
    ops.push((items) => {
      const out: unknown[] = [];
      for (const item of items) {
        if (item === null || typeof item !== 'object' || Array.isArray(item) || isFhirDecimal(item)) return undefined;
        let keep = true;
        for (const [name, literal] of conds) {
          const v = (item as Element)[name];
          if ((v !== undefined && typeof v !== 'string') || (item as Element)[`_${name}`] !== undefined) return undefined;
          if (v !== literal) keep = false;
        }
        if (keep) out.push(item);
      }
      return out;
    });
  }
  return (element) => {
    let items: unknown[] | undefined = [element];
    for (const op of ops) if (!(items = op(items))) return undefined;
    return items;
  };
}

function disjunct(text: string): Test | undefined {
  const t = unwrap(text);
  // A conjunction holds when each of its parts certainly does.
  const both = splitTop(t, ' and ');
  if (both.length > 1) {
    const tests = both.map(disjunct);
    return tests.every((x) => x) ? (e) => tests.every((x) => (x as Test)(e)) : undefined;
  }
  const comparison = /^([a-z][A-Za-z0-9]*)\s*(<=|>=|<|>)\s*([a-z][A-Za-z0-9]*)$/.exec(t);
  if (comparison) {
    const [, a, op, b] = comparison;
    return (e) => {
      const sign = compareDates(e[a], e[b]);
      // Only when both are plain values: an extension on either (`_start`) is left to the engine.
      return sign !== undefined && e[`_${a}`] === undefined && e[`_${b}`] === undefined && COMPARISONS[op](sign);
    };
  }
  const steps = chain(t);
  if (!steps || steps.length < 2) return undefined;
  // `where(use = 'home').empty()` (org-2, at each address) starts at the element itself.
  if (!NAME.test(steps[0])) {
    const navigate = fnName(steps[0]) === 'where' && steps.length === 2 && steps[1] === 'empty()' ? navigator(steps.slice(0, 1)) : undefined;
    return navigate && ((e) => navigate(e)?.length === 0);
  }
  const [root, ...rest] = steps;
  const tail = rest.join('.');
  if (tail === 'hasValue()') return (e) => hasValue(e, root);
  const ending = ['empty()', 'exists().not()', 'hasValue().not()', 'exists()'].find((end) => tail === end || tail.endsWith(`.${end}`));
  if (!ending) return undefined;
  const middle = [root, ...rest.slice(0, rest.length - ending.split('.').length)];
  const navigate = ending === 'hasValue().not()' ? undefined : navigator(middle);
  if (ending === 'exists()') return navigate && ((e) => !!navigate(e)?.length);
  // Ends in a test that is true of an empty collection: the chain selects nothing, or (steps that keep an empty
  // input empty) starts from an absent element.
  const keepsEmpty = middle.slice(1).every((s) => NAME.test(s) || EMPTY_KEEPING.has(fnName(s) as string));
  if (!navigate && !keepsEmpty) return undefined;
  return (e) => (keepsEmpty && absent(e, root)) || navigate?.(e)?.length === 0;
}

/** A test that says the invariant `expression` certainly holds at an element, or undefined when none applies. */
export function certainlyHolds(expression: string): Test | undefined {
  const tests = splitTop(unwrap(expression), ' or ')
    .map(disjunct)
    .filter((t): t is Test => !!t);
  if (!tests.length) return undefined;
  return (e) => tests.some((t) => t(e));
}
