/**
 * Parsing of search values shared by the predicate builders: escaping (search.html#escaping), prefixes
 * (search.html#prefix), dates and numbers with their implicit precision, and parameter names.
 */
import { badRequest } from '../../fhir/outcome';
import { parseDateRange, type Range } from '../dateRange';
import { withinNumeric } from '../../fhir/withinNumeric';

export const PREFIXES = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'] as const;
export type Prefix = (typeof PREFIXES)[number];

/** Splits on unescaped separators and unescapes `\,` `\|` `\$` `\\` (search.html#escaping). */
export function splitEscaped(value: string, separator: string): string[] {
  return split(value, separator, false);
}

/** Like splitEscaped, but leaves the escapes of other separators in place for a later split. */
export function splitKeepingEscapes(value: string, separator: string): string[] {
  return split(value, separator, true);
}

function split(value: string, separator: string, keepOtherEscapes: boolean): string[] {
  const out: string[] = [];
  let current = '';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (ch === '\\' && i + 1 < value.length) {
      const next = value[i + 1];
      current += keepOtherEscapes && next !== separator ? ch + next : next;
      i++;
    } else if (ch === separator) {
      out.push(current);
      current = '';
    } else current += ch;
  }
  out.push(current);
  return out;
}

export function prefixed(parameter: string, raw: string): { prefix: Prefix; rest: string } {
  const m = /^([a-z]{2})(.*)$/.exec(raw);
  if (m && (PREFIXES as readonly string[]).includes(m[1])) return { prefix: m[1] as Prefix, rest: m[2] };
  if (m && /^[a-z]{2}$/.test(m[1]) && !/^\d/.test(raw)) throw badRequest(`'${m[1]}' is not a search prefix (parameter '${parameter}')`, parameter);
  return { prefix: 'eq', rest: raw };
}

export function dateValue(parameter: string, raw: string): { prefix: Prefix; range: Range } {
  const { prefix, rest } = prefixed(parameter, raw);
  const range = parseDateRange(rest);
  if (!range) throw badRequest(`'${rest}' is not a valid date for parameter '${parameter}' (use YYYY, YYYY-MM, YYYY-MM-DD or a dateTime)`, parameter);
  return { prefix, range };
}

export interface NumberValue {
  prefix: Prefix;
  value: number;
  low: number;
  high: number;
  text: string;
}

export function numberValue(parameter: string, raw: string): NumberValue {
  const { prefix, rest } = prefixed(parameter, raw);
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(rest)) throw badRequest(`'${rest}' is not a number (parameter '${parameter}')`, parameter);
  if (!withinNumeric(rest)) throw badRequest(`'${rest}' is beyond the numbers this server compares (parameter '${parameter}')`, parameter);
  const value = Number(rest);
  // Implicit precision (search.html#number): 100 means [99.5, 100.5), 100.00 means [99.995, 100.005).
  const mantissa = rest.replace(/[eE].*$/, '');
  const exponent = /[eE]([+-]?\d+)$/.exec(rest);
  const decimals = (mantissa.split('.')[1]?.length ?? 0) - (exponent ? Number(exponent[1]) : 0);
  const half = 0.5 * 10 ** -decimals;
  return { prefix, value, low: value - half, high: value + half, text: rest };
}

/** Escapes LIKE's wildcards in a value matched literally. */
export function likePrefix(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export interface ParsedName {
  code: string;
  modifier?: string;
  chain?: string;
}

/** `subject:Patient.name:exact` → code subject, modifier Patient, chain `name:exact`. */
export function parseName(name: string): ParsedName {
  const dot = name.indexOf('.');
  const head = dot < 0 ? name : name.slice(0, dot);
  const chain = dot < 0 ? undefined : name.slice(dot + 1);
  const colon = head.indexOf(':');
  return colon < 0 ? { code: head, chain } : { code: head.slice(0, colon), modifier: head.slice(colon + 1), chain };
}
