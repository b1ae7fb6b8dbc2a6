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
 * Text goes in through `parseFhirJson` (request bodies, jsonb read from the database) and out through
 * `stringifyFhirJson` (responses, jsonb written to the database; PostgreSQL's jsonb keeps a numeric's scale,
 * so `1.50` is stored and read back as `1.50`). Both have a fast path for text without such numbers: a
 * plain `JSON.parse` when a cheap scan finds no number that could need it, a plain `JSON.stringify` when
 * no FhirDecimal was met.
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

/** The value for a number's JSON text: a plain number when that is exact, else a FhirDecimal. */
export function fhirNumber(text: string): number | FhirDecimal {
  const n = Number(text);
  return String(n) === text ? n : new FhirDecimal(text);
}

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
 */
export function parseFhirJson(text: string): unknown {
  try {
    if (!MAY_NEED_EXACT.test(text)) return JSON.parse(text);
    let marked = false;
    const rewritten = text.replace(TOKEN, (token, number: string | undefined) => {
      if (number === undefined || String(Number(number)) === number) return token;
      marked = true;
      return `"${NONCE_TEXT}${number}"`;
    });
    return marked ? JSON.parse(rewritten, revive) : JSON.parse(text);
  } catch (e) {
    throw badRequest(`The body is not valid JSON: ${(e as Error).message}`);
  }
}

/** Values → JSON text, each FhirDecimal written with its exact digits. */
export function stringifyFhirJson(value: unknown, space?: number): string {
  exact++;
  const before = marked;
  let text: string;
  try {
    text = JSON.stringify(value, null, space) ?? '';
  } finally {
    exact--;
  }
  return marked === before ? text : text.replace(MARKED, '$1');
}

/** A deep copy of JSON-shaped data that keeps FhirDecimals (structuredClone would not). */
export function cloneFhir<T>(value: T): T {
  if (Array.isArray(value)) return value.map(cloneFhir) as T;
  if (value === null || typeof value !== 'object' || isLosslessNumber(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = cloneFhir((value as Record<string, unknown>)[key]);
  return out as T;
}
