import { isLosslessNumber, LosslessNumber } from 'lossless-json';
import { badRequest } from './outcome';

/**
 * FHIR JSON with decimals kept exactly as written. FHIR says a decimal's precision is part of its value
 * (http://hl7.org/fhir/R4/datatypes.html#decimal: `1.50` is not `1.5`), and `JSON.parse` loses it.
 *
 * The representation is the smallest change that keeps every digit: a number whose text a JavaScript number
 * reproduces (`5`, `1.5`, `0.25`: nearly all of them) stays a plain `number`; any other (`1.50`, `12500.00`,
 * `1e3`, more than 15 significant digits) becomes a `FhirDecimal` holding its text. Code that reads numbers
 * sees a `number` or, rarely, a `FhirDecimal` (`isFhirDecimal`, `Number(x)` for arithmetic); code that copies
 * resources must use `cloneFhir` (structuredClone would turn a FhirDecimal into a plain object).
 *
 * Text goes in through `parseFhirJson` (request bodies) and out through `stringifyFhirJson` (responses).
 * Both have a fast path for text without such numbers: a plain `JSON.parse` when a cheap scan finds no
 * number that could need it, a plain `JSON.stringify` when no FhirDecimal was met.
 *
 * The database has a pair of its own, `stringifyStoredJson` and `parseStoredJson`. PostgreSQL's jsonb keeps
 * a numeric's digits and scale (`1.50` is read back as `1.50`) but prints it positionally: `1.0e0` would
 * come back `1.0`, `1E-22` as 22 decimal places, and `-0` as `0` (numeric has no negative zero). Those
 * numbers, which FHIR allows (datatypes.html#decimal; the R4 example Observation-decimal has three), are
 * stored as strings marked with U+FDD0, a Unicode noncharacter reserved for such internal use, and read
 * back as the numbers they were; a client's string that starts with the marker is stored with it doubled.
 * Reads pay one scan for the marker character (most rows are ASCII, where it cannot occur).
 */
export class FhirDecimal extends LosslessNumber {
  /**
   * Inside `stringifyFhirJson`: a marker string replaced afterwards by the exact digits. Elsewhere (a
   * `JSON.stringify` that does not know about decimals): the nearest JavaScript number, as before.
   */
  toJSON(): unknown {
    if (exact > 0) {
      marked++;
      return `${MARK}${this.value}${MARK}`;
    }
    return Number(this.value);
  }
}

/** NUL cannot occur in stored FHIR strings (PostgreSQL's jsonb refuses `\u0000`), so no string is mistaken for a marker. */
const MARK = '\u0000';
const MARKED = /"\\u0000(-?[0-9][0-9.eE+-]*)\\u0000"/g;
let exact = 0;
let marked = 0;

/**
 * Text in which some number might not survive `JSON.parse` (false alarms only cost the slower parse): an
 * exponent, a fraction ending in 0, 16 or more digits, 6 or more zeros after the point (`0.0000001` prints
 * as `1e-7`), or `-0`. Any other JSON number has at most 15 significant digits in JavaScript's own notation.
 */
const MAY_NEED_EXACT = /[0-9][eE]|\.[0-9]*0(?![0-9])|[0-9][0-9.]{15}|\.0{6}|-0(?![.0-9])/;

export function isFhirDecimal(value: unknown): value is LosslessNumber {
  return isLosslessNumber(value);
}

/**
 * Whether a JavaScript number written back gives exactly `text`. An exponent never counts as exact, even
 * where JavaScript would write the same (`1e-7`, `1e+21`): the number could not be told from the positional
 * value that JSON.stringify writes for a computed one, nor be stored in a form PostgreSQL keeps.
 */
const exactAsNumber = (text: string) => String(Number(text)) === text && !/[eE]/.test(text);

/**
 * `exactAsNumber` for the number text `text[from, to)`, without copying it for the commonest case: an integer of
 * at most 15 digits without a leading zero (or `0`) is always written back as itself. Exported for the body scan
 * (rest/bodyLimits.ts), which reads a request body's numbers in the same pass as its nesting.
 */
export function exactNumberText(text: string, from: number, to: number): boolean {
  const digits = text.charCodeAt(from) === 45 ? from + 1 : from; // '-'
  const length = to - digits;
  if (length > 0 && length <= 15 && (text.charCodeAt(digits) !== 48 || (length === 1 && digits === from))) {
    let i = digits;
    while (i < to && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
    if (i === to) return true;
  }
  return exactAsNumber(text.slice(from, to));
}

/** The end of the run of number characters (digits, '.', 'e', 'E', '+', '-') that starts at `from`, at most `to`. */
export function numberEnd(text: string, from: number, to = text.length): number {
  let end = from + 1;
  while (end < to && isNumberChar(text.charCodeAt(end))) end++;
  return end;
}

/** The value for a number's JSON text: a plain number when that is exact, else a FhirDecimal. */
export function fhirNumber(text: string): number | FhirDecimal {
  return exactAsNumber(text) ? Number(text) : new FhirDecimal(text);
}

/**
 * Whether some number of the text, outside its strings, may need a FhirDecimal. The cheap test alone matches
 * nearly every real body (a UUID such as `…-8e5f-…` has a digit before an `e`), and the exact pass below
 * tokenises every string of the text, 7–9 times the cost of `JSON.parse` on Synthea bundles. This walks the
 * text from quote to quote (`indexOf`, no allocation) and reads only the numbers between strings; when all
 * are exact the text parses the same with `JSON.parse`. An unterminated string answers true: the exact pass
 * and `JSON.parse` report it.
 */
function mayNeedExact(text: string): boolean {
  if (!MAY_NEED_EXACT.test(text)) return false;
  let at = 0;
  for (;;) {
    const quote = text.indexOf('"', at);
    if (inexactNumberIn(text, at, quote < 0 ? text.length : quote)) return true;
    if (quote < 0) return false;
    let close = text.indexOf('"', quote + 1);
    // A quote preceded by an odd number of backslashes is escaped: the string goes on.
    while (close > 0 && escapedAt(text, close)) close = text.indexOf('"', close + 1);
    if (close < 0) return true;
    at = close + 1;
  }
}

function escapedAt(text: string, quote: number): boolean {
  let backslashes = 0;
  while (text.charCodeAt(quote - 1 - backslashes) === 92) backslashes++;
  return backslashes % 2 === 1;
}

/** Whether the JSON between two strings, `text[from, to)`, holds a number that is not exact as a JavaScript number. */
function inexactNumberIn(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c !== 45 && (c < 48 || c > 57)) continue; // not '-' nor a digit
    const end = numberEnd(text, i, to);
    if (!exactNumberText(text, i, end)) return true;
    i = end;
  }
  return false;
}

/** Digits, '.', 'e', 'E', '+', '-'. */
const isNumberChar = (c: number) => (c >= 48 && c <= 57) || c === 46 || c === 101 || c === 69 || c === 43 || c === 45;

/** A string or a number of JSON text: strings are matched only to be skipped, so digits inside them are left alone. */
const TOKEN = /"(?:[^"\\]|\\[\s\S])*"|(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)/g;
/** Marks a number carried through `JSON.parse` as a string; the nonce keeps a client's string from posing as one. */
const NONCE_ID = Math.random().toString(36).slice(2, 10);
const NONCE = `\u0000${NONCE_ID}:`;
/** The same as written inside JSON text (a raw NUL is not allowed there). */
const NONCE_TEXT = `\\u0000${NONCE_ID}:`;

function revive(_key: string, value: unknown): unknown {
  return typeof value === 'string' && value.startsWith(NONCE) ? new FhirDecimal(value.slice(NONCE.length)) : value;
}

/**
 * JSON text → values, decimals exact. Throws a 400 OperationOutcome for text that is not JSON. Numbers
 * that would lose digits are rewritten as marked strings and revived as FhirDecimals: `JSON.parse` does the
 * parsing either way (a JavaScript JSON parser is some 20 times slower on large bodies).
 *
 * `numbersExact`: the caller has already read every number of the text outside its strings and found each
 * exact as a JavaScript number (the request body scan, rest/bodyLimits.ts), so the text parses as `JSON.parse`
 * parses it and this function's own scan is skipped.
 */
export function parseFhirJson(text: string, options: { numbersExact?: boolean } = {}): unknown {
  try {
    if (options.numbersExact === true || !mayNeedExact(text)) return JSON.parse(text);
    let marked = false;
    const rewritten = text.replace(TOKEN, (token, number: string | undefined) => {
      if (number === undefined || exactAsNumber(number)) return token;
      marked = true;
      return `"${NONCE_TEXT}${number}"`;
    });
    return marked ? JSON.parse(rewritten, revive) : JSON.parse(text);
  } catch (e) {
    throw badRequest(`The body is not valid JSON: ${(e as Error).message}`);
  }
}

/** JSON.stringify with FhirDecimals as marked strings; `marks` says whether it met any. */
function stringifyMarked(value: unknown, replacer?: (key: string, value: unknown) => unknown, space?: number): { text: string; marks: boolean } {
  exact++;
  const before = marked;
  try {
    return { text: JSON.stringify(value, replacer, space) ?? '', marks: marked !== before };
  } finally {
    exact--;
  }
}

/** Values → JSON text, each FhirDecimal written with its exact digits. */
export function stringifyFhirJson(value: unknown, space?: number): string {
  const { text, marks } = stringifyMarked(value, undefined, space);
  return marks ? text.replace(MARKED, '$1') : text;
}

/** Marks a stored string that stands for a number (see the module comment); doubled at the start of a client's string. */
const STORED = '\uFDD0';
/** Numbers whose text PostgreSQL's numeric would not print back: an exponent, or a negative zero. */
const NOT_KEPT_BY_NUMERIC = /[eE]|^-0(?:\.0+)?$/;

const escapeStored = (_key: string, value: unknown) => (typeof value === 'string' && value.startsWith(STORED) ? STORED + value : value);

/** Values → JSON text for a jsonb column: as `stringifyFhirJson`, with the numbers jsonb would rewrite kept as marked strings. */
export function stringifyStoredJson(value: unknown): string {
  let { text, marks } = stringifyMarked(value);
  // Rare (a client's text with the noncharacter): again, with its strings that start with it escaped.
  if (text.includes(STORED)) ({ text, marks } = stringifyMarked(value, escapeStored));
  return marks ? text.replace(MARKED, (_m, digits: string) => (NOT_KEPT_BY_NUMERIC.test(digits) ? `"${STORED}${digits}"` : digits)) : text;
}

function reviveStored(key: string, value: unknown): unknown {
  if (typeof value !== 'string' || !value.startsWith(STORED)) return revive(key, value);
  return value.startsWith(STORED, 1) ? value.slice(1) : new FhirDecimal(value.slice(1));
}

/** JSON text read from a jsonb column → values, as `parseFhirJson`, with the numbers `stringifyStoredJson` marked restored. */
export function parseStoredJson(text: string): unknown {
  if (!text.includes(STORED)) return parseFhirJson(text);
  const rewritten = mayNeedExact(text)
    ? text.replace(TOKEN, (token, number: string | undefined) => (number === undefined || exactAsNumber(number) ? token : `"${NONCE_TEXT}${number}"`))
    : text;
  return JSON.parse(rewritten, reviveStored);
}

/** Whether PostgreSQL's text of a stored jsonb holds numbers `stringifyStoredJson` marked (it must then be parsed to be served). */
export function holdsMarkedNumbers(text: string): boolean {
  return text.includes(STORED);
}

/**
 * PostgreSQL's text of a stored jsonb → the JSON text to serve: the same text unless it holds numbers that
 * `stringifyStoredJson` marked (then parsed and written again, with their own digits). For paths that serve
 * stored text without parsing it (bulk export, store/servedJsonText.ts).
 */
export function servedStoredText(text: string): string {
  return holdsMarkedNumbers(text) ? stringifyFhirJson(parseStoredJson(text)) : text;
}

/** A deep copy of JSON-shaped data that keeps FhirDecimals (structuredClone would not). */
export function cloneFhir<T>(value: T): T {
  if (Array.isArray(value)) return value.map(cloneFhir) as T;
  if (value === null || typeof value !== 'object' || isLosslessNumber(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = cloneFhir((value as Record<string, unknown>)[key]);
  return out as T;
}
