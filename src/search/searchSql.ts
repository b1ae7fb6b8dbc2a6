import { badRequest, notSupported } from '../fhir/outcome';
import { componentType, indexedAs, searchParameter, searchParameterMap, type SearchParamDef } from '../fhir/searchParameters';
import { parseDateRange, type Range } from './dateRange';
import { indexKey } from './indexKey';
import { MAX_STRING, normalizeString, parseReference } from './indexValues';

/**
 * FHIR search parameters → SQL predicates over the typed index tables (search.html). Each predicate is a
 * condition on one row alias of the `resource` table (`r`, `r1`, … for chains), built as
 * `alias.pk IN (SELECT resource_pk FROM search_x WHERE key = … AND …)` — `key` standing for (store, type,
 * parameter), see indexKey.ts — so the planner can drive from the index. Values travel as bind parameters,
 * never as SQL text.
 */
export class SqlParams {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

export interface Scope {
  store: string;
  type: string;
  alias: string;
}

export class UnknownParameter extends Error {
  constructor(readonly parameter: string, reason: string) {
    super(reason);
  }
}

const PREFIXES = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'] as const;
type Prefix = (typeof PREFIXES)[number];

/** Splits on unescaped separators and unescapes `\,` `\|` `\$` `\\` (search.html#escaping). */
export function splitEscaped(value: string, separator: string): string[] {
  return split(value, separator, false);
}

/** Like splitEscaped, but leaves the escapes of other separators in place for a later split. */
function splitKeepingEscapes(value: string, separator: string): string[] {
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

function prefixed(parameter: string, raw: string): { prefix: Prefix; rest: string } {
  const m = /^([a-z]{2})(.*)$/.exec(raw);
  if (m && (PREFIXES as readonly string[]).includes(m[1])) return { prefix: m[1] as Prefix, rest: m[2] };
  if (m && /^[a-z]{2}$/.test(m[1]) && !/^\d/.test(raw)) throw badRequest(`'${m[1]}' is not a search prefix (parameter '${parameter}')`, parameter);
  return { prefix: 'eq', rest: raw };
}

function dateValue(parameter: string, raw: string): { prefix: Prefix; range: Range } {
  const { prefix, rest } = prefixed(parameter, raw);
  const range = parseDateRange(rest);
  if (!range) throw badRequest(`'${rest}' is not a valid date for parameter '${parameter}' (use YYYY, YYYY-MM, YYYY-MM-DD or a dateTime)`, parameter);
  return { prefix, range };
}

function numberValue(parameter: string, raw: string): { prefix: Prefix; value: number; low: number; high: number; text: string } {
  const { prefix, rest } = prefixed(parameter, raw);
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(rest)) throw badRequest(`'${rest}' is not a number (parameter '${parameter}')`, parameter);
  const value = Number(rest);
  // Implicit precision (search.html#number): 100 means [99.5, 100.5), 100.00 means [99.995, 100.005).
  const mantissa = rest.replace(/[eE].*$/, '');
  const exponent = /[eE]([+-]?\d+)$/.exec(rest);
  const decimals = (mantissa.split('.')[1]?.length ?? 0) - (exponent ? Number(exponent[1]) : 0);
  const half = 0.5 * 10 ** -decimals;
  return { prefix, value, low: value - half, high: value + half, text: rest };
}

/** SQL for a date prefix against a row's [low, high] range (search.html#prefix). */
function dateCondition(prefix: Prefix, low: string, high: string, range: Range, p: SqlParams): string {
  // Bind parameters only for the ends a prefix uses: an unused one has no type PostgreSQL can infer.
  let plRef: string | undefined;
  let phRef: string | undefined;
  const ends = {
    get pl() {
      return (plRef ??= p.add(range.low.toISOString()));
    },
    get ph() {
      return (phRef ??= p.add(range.high.toISOString()));
    },
  };
  const within = () => `(${low} >= ${ends.pl}::timestamptz AND ${high} <= ${ends.ph}::timestamptz)`;
  switch (prefix) {
    case 'eq':
      return within();
    case 'ne':
      return `NOT ${within()}`;
    case 'gt':
      return `${high} > ${ends.ph}::timestamptz`;
    case 'lt':
      return `${low} < ${ends.pl}::timestamptz`;
    case 'ge':
      return `(${high} > ${ends.ph}::timestamptz OR ${within()})`;
    case 'le':
      return `(${low} < ${ends.pl}::timestamptz OR ${within()})`;
    case 'sa':
      return `${low} > ${ends.ph}::timestamptz`;
    case 'eb':
      return `${high} < ${ends.pl}::timestamptz`;
    case 'ap': {
      // Approximately: overlap with the range widened by a tenth of its distance from now (at least a day).
      const span = Math.max(86_400_000, Math.abs(Date.now() - range.low.getTime()) * 0.1);
      const wl = p.add(new Date(range.low.getTime() - span).toISOString());
      const wh = p.add(new Date(range.high.getTime() + span).toISOString());
      return `(${low} <= ${wh}::timestamptz AND ${high} >= ${wl}::timestamptz)`;
    }
  }
}

function numberCondition(prefix: Prefix, column: string, n: { value: number; low: number; high: number; text: string }, p: SqlParams): string {
  const v = () => p.add(n.text);
  switch (prefix) {
    case 'eq':
      return `(${column} >= ${p.add(String(n.low))}::numeric AND ${column} < ${p.add(String(n.high))}::numeric)`;
    case 'ne':
      return `NOT (${column} >= ${p.add(String(n.low))}::numeric AND ${column} < ${p.add(String(n.high))}::numeric)`;
    case 'gt':
    case 'sa':
      return `${column} > ${v()}::numeric`;
    case 'lt':
    case 'eb':
      return `${column} < ${v()}::numeric`;
    case 'ge':
      return `${column} >= ${v()}::numeric`;
    case 'le':
      return `${column} <= ${v()}::numeric`;
    case 'ap': {
      const d = Math.abs(n.value) * 0.1;
      return `(${column} >= ${p.add(String(n.value - d))}::numeric AND ${column} <= ${p.add(String(n.value + d))}::numeric)`;
    }
  }
}

function tokenCondition(parameter: string, raw: string, p: SqlParams, systemCol = 'system', codeCol = 'code'): string {
  const parts = splitEscaped(raw, '|');
  if (parts.length > 2) throw badRequest(`'${raw}' is not a token (system|code) for parameter '${parameter}'`, parameter);
  if (parts.length === 1) return `${codeCol} = ${p.add(parts[0])}`;
  const [system, code] = parts;
  if (system === '' && code === '') throw badRequest(`Empty token for parameter '${parameter}'`, parameter);
  if (system === '') return `(${codeCol} = ${p.add(code)} AND ${systemCol} IS NULL)`;
  if (code === '') return `${systemCol} = ${p.add(system)}`;
  return `(${codeCol} = ${p.add(code)} AND ${systemCol} = ${p.add(system)})`;
}

function likePrefix(s: string): string {
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

const INDEX_TABLE: Record<string, string> = {
  string: 'search_string',
  token: 'search_token',
  reference: 'search_reference',
  date: 'search_date',
  number: 'search_number',
  quantity: 'search_quantity',
  uri: 'search_uri',
  composite: 'search_composite',
};

/** An index-table lookup that can drive a query in resource_pk order (see SearchService). */
export interface Driver {
  table: string;
  type: string;
  /** `key = $n` (or `key = ANY($n)` for a derived parameter), with its bind parameter already added. */
  keyCondition: string;
  where: string;
}

export class ConditionBuilder {
  private aliasCount = 0;
  private lookups: Driver[] = [];
  constructor(readonly p: SqlParams) {}

  /**
   * The condition, plus the index lookup it consists of when it is exactly one positive lookup on the
   * scope's own rows (no chain, no :not, no :missing): such a lookup can drive the query in pk order.
   */
  conditionWithDriver(scope: Scope, name: string, value: string): { sql: string; driver?: Driver } {
    this.lookups = [];
    const sql = this.condition(scope, name, value);
    const only = this.lookups.length === 1 ? this.lookups[0] : undefined;
    const positive = only && sql.startsWith(`${scope.alias}.pk IN (SELECT resource_pk FROM ${only.table} `) && only.type === scope.type;
    return { sql, driver: positive ? only : undefined };
  }

  nextAlias(): string {
    this.aliasCount++;
    return `r${this.aliasCount}`;
  }

  /**
   * The condition selecting the index rows of parameter `code` of `type` in `store` (`suffix`: the
   * `:identifier` rows of a reference parameter), reading the constituents' rows for a derived parameter.
   */
  keyCondition(store: string, type: string, code: string, column = 'key', suffix = ''): string {
    const keys = indexedAs(type, code).map((c) => indexKey(store, type, `${c}${suffix}`));
    return keys.length === 1 ? `${column} = ${this.p.add(keys[0])}::bigint` : `${column} = ANY(${this.p.add(keys)}::bigint[])`;
  }

  private rowsOf(table: string, scope: Scope, param: string, where: string, suffix = ''): string {
    const lookup = { table, type: scope.type, keyCondition: this.keyCondition(scope.store, scope.type, param, 'key', suffix), where };
    this.lookups.push(lookup);
    return `SELECT resource_pk FROM ${table} WHERE ${lookup.keyCondition} AND (${where})`;
  }

  /** The predicate for one `name=value` pair (value may hold comma-separated alternatives). */
  condition(scope: Scope, name: string, value: string): string {
    if (name.startsWith('_has:')) return this.has(scope, name, value);
    const { code, modifier, chain } = parseName(name);
    if (code === '_id') return this.idCondition(scope, modifier, value);
    if (code === '_lastUpdated') return this.lastUpdated(scope, value);
    const def = searchParameter(scope.type, code);
    if (!def) throw new UnknownParameter(name, `Unknown search parameter '${code}' for ${scope.type}`);
    if (chain) return this.chainCondition(scope, def, modifier, chain, value);
    if (modifier === 'missing') {
      if (value !== 'true' && value !== 'false') throw badRequest(`:missing takes true or false (parameter '${name}')`, name);
      const table = INDEX_TABLE[def.type];
      if (!table) throw notSupported(`:missing is not supported on '${code}'`);
      // Probed per candidate row through the table's resource_pk index: no index leads with the key alone.
      const present = `EXISTS (SELECT 1 FROM ${table} m WHERE m.resource_pk = ${scope.alias}.pk AND ${this.keyCondition(scope.store, scope.type, code, 'm.key')})`;
      return value === 'true' ? `NOT ${present}` : present;
    }
    const alternatives = splitKeepingEscapes(value, ',');
    if (alternatives.some((a) => a === '')) throw badRequest(`Empty value in parameter '${name}'`, name);
    switch (def.type) {
      case 'token':
        return this.token(scope, def, name, modifier, alternatives);
      case 'string':
        return this.string(scope, def, name, modifier, alternatives);
      case 'uri':
        return this.uri(scope, def, name, modifier, alternatives);
      case 'date':
        this.noModifier(name, modifier);
        return `${scope.alias}.pk IN (${this.rowsOf('search_date', scope, code, alternatives.map((a) => dateCondition(dateValue(name, a).prefix, 'low', 'high', dateValue(name, a).range, this.p)).join(' OR '))})`;
      case 'number':
        this.noModifier(name, modifier);
        return `${scope.alias}.pk IN (${this.rowsOf('search_number', scope, code, alternatives.map((a) => { const n = numberValue(name, a); return numberCondition(n.prefix, 'value', n, this.p); }).join(' OR '))})`;
      case 'quantity':
        this.noModifier(name, modifier);
        return `${scope.alias}.pk IN (${this.rowsOf('search_quantity', scope, code, alternatives.map((a) => this.quantity(name, a)).join(' OR '))})`;
      case 'reference':
        return this.reference(scope, def, name, modifier, alternatives);
      case 'composite':
        this.noModifier(name, modifier);
        return `${scope.alias}.pk IN (${this.rowsOf('search_composite', scope, code, alternatives.map((a) => this.composite(def, name, a)).join(' OR '))})`;
      default:
        throw new UnknownParameter(name, `Search parameter '${code}' (${def.type}) is not supported`);
    }
  }

  private noModifier(name: string, modifier: string | undefined): void {
    if (modifier) throw badRequest(`Modifier ':${modifier}' is not valid for parameter '${name.split(':')[0]}'`, name);
  }

  private idCondition(scope: Scope, modifier: string | undefined, value: string): string {
    if (modifier === 'missing') return value === 'true' ? 'false' : 'true';
    const ids = splitEscaped(value, ',');
    const cond = `${scope.alias}.id = ANY(${this.p.add(ids)}::text[])`;
    if (modifier === 'not') return `NOT ${cond}`;
    this.noModifier('_id', modifier);
    return cond;
  }

  private lastUpdated(scope: Scope, value: string): string {
    const col = `${scope.alias}.last_updated`;
    return `(${splitKeepingEscapes(value, ',')
      .map((a) => {
        const { prefix, range } = dateValue('_lastUpdated', a);
        return dateCondition(prefix, col, col, range, this.p);
      })
      .join(' OR ')})`;
  }

  private token(scope: Scope, def: SearchParamDef, name: string, modifier: string | undefined, alternatives: string[]): string {
    if (modifier === 'text') {
      const where = alternatives.map((a) => `text LIKE ${this.p.add(likePrefix(normalizeString(a)) + '%')}`).join(' OR ');
      return `${scope.alias}.pk IN (${this.rowsOf('search_token', scope, def.code, where)})`;
    }
    if (modifier && modifier !== 'not') {
      throw notSupported(`Modifier ':${modifier}' is not supported on token parameter '${def.code}' (supported: :not, :text, :missing)`);
    }
    const where = alternatives.map((a) => tokenCondition(name, a, this.p)).join(' OR ');
    const cond = `${scope.alias}.pk IN (${this.rowsOf('search_token', scope, def.code, where)})`;
    return modifier === 'not' ? `NOT ${cond}` : cond;
  }

  private string(scope: Scope, def: SearchParamDef, name: string, modifier: string | undefined, alternatives: string[]): string {
    const values = alternatives.map((a) => splitEscaped(a, '\u0000')[0]);
    let where: string;
    // :exact goes through the normalised value (the indexed column) and then compares as sent.
    if (modifier === 'exact') where = values.map((v) => `(value = ${this.p.add(normalizeString(v))} AND exact = ${this.p.add(v.slice(0, MAX_STRING))})`).join(' OR ');
    else if (modifier === 'contains') where = values.map((v) => `value LIKE ${this.p.add(`%${likePrefix(normalizeString(v))}%`)}`).join(' OR ');
    else if (!modifier) where = values.map((v) => `value LIKE ${this.p.add(`${likePrefix(normalizeString(v))}%`)}`).join(' OR ');
    else throw badRequest(`Modifier ':${modifier}' is not valid for string parameter '${def.code}' (use :exact, :contains or :missing)`, name);
    return `${scope.alias}.pk IN (${this.rowsOf('search_string', scope, def.code, where)})`;
  }

  private uri(scope: Scope, def: SearchParamDef, name: string, modifier: string | undefined, alternatives: string[]): string {
    const values = alternatives.map((a) => splitEscaped(a, '\u0000')[0]);
    let where: string;
    if (!modifier) where = values.map((v) => `value = ${this.p.add(v)}`).join(' OR ');
    else if (modifier === 'below') where = values.map((v) => `value LIKE ${this.p.add(`${likePrefix(v)}%`)}`).join(' OR ');
    else if (modifier === 'above') where = values.map((v) => `${this.p.add(v)} LIKE replace(replace(value, '%', '\\%'), '_', '\\_') || '%'`).join(' OR ');
    else throw badRequest(`Modifier ':${modifier}' is not valid for uri parameter '${def.code}' (use :above, :below or :missing)`, name);
    return `${scope.alias}.pk IN (${this.rowsOf('search_uri', scope, def.code, where)})`;
  }

  private quantity(name: string, raw: string): string {
    const parts = splitEscaped(raw, '|');
    if (parts.length !== 1 && parts.length !== 3) throw badRequest(`'${raw}' is not a quantity (number|system|code) for parameter '${name}'`, name);
    const n = numberValue(name, parts[0]);
    const conds = [numberCondition(n.prefix, 'value', n, this.p)];
    if (parts.length === 3) {
      if (parts[1]) conds.push(`system = ${this.p.add(parts[1])}`);
      if (parts[2]) conds.push(`code = ${this.p.add(parts[2])}`);
    }
    return `(${conds.join(' AND ')})`;
  }

  private composite(def: SearchParamDef, name: string, raw: string): string {
    const parts = splitEscaped(raw, '$');
    const [first, second] = def.components ?? [];
    if (parts.length !== 2 || !first || !second) throw badRequest(`'${raw}' is not a composite value (a$b) for parameter '${name}'`, name);
    const conds = [tokenCondition(name, parts[0], this.p, 'system1', 'code1')];
    const kind = componentType(second.definition);
    if (kind === 'token') conds.push(tokenCondition(name, parts[1], this.p, 'system2', 'code2'));
    else if (kind === 'quantity') {
      const q = splitEscaped(parts[1], '|');
      const n = numberValue(name, q[0]);
      conds.push(numberCondition(n.prefix, 'number2', n, this.p));
      if (q[1]) conds.push(`system2 = ${this.p.add(q[1])}`);
      if (q[2]) conds.push(`code2 = ${this.p.add(q[2])}`);
    } else if (kind === 'date') {
      const { prefix, range } = dateValue(name, parts[1]);
      conds.push(dateCondition(prefix, 'low2', 'high2', range, this.p));
    } else if (kind === 'string') conds.push(`code2 LIKE ${this.p.add(`${likePrefix(normalizeString(parts[1]))}%`)}`);
    else conds.push(`code2 = ${this.p.add(parts[1])}`);
    return `(${conds.join(' AND ')})`;
  }

  private reference(scope: Scope, def: SearchParamDef, name: string, modifier: string | undefined, alternatives: string[]): string {
    if (modifier === 'identifier') {
      const where = alternatives.map((a) => tokenCondition(name, a, this.p)).join(' OR ');
      return `${scope.alias}.pk IN (${this.rowsOf('search_token', scope, def.code, where, ':identifier')})`;
    }
    const typed = modifier && /^[A-Z]/.test(modifier) ? modifier : undefined;
    if (modifier && !typed) throw badRequest(`Modifier ':${modifier}' is not valid for reference parameter '${def.code}'`, name);
    if (typed && def.target.length && !def.target.includes(typed)) throw badRequest(`'${def.code}' cannot refer to a ${typed}`, name);
    const where = alternatives
      .map((raw) => {
        const value = splitEscaped(raw, '\u0000')[0];
        if (!value.includes('/')) {
          // A bare id: any target type, or the modifier's.
          return typed ? `(target_type = ${this.p.add(typed)} AND target_id = ${this.p.add(value)})` : `target_id = ${this.p.add(value)}`;
        }
        const ref = parseReference(value);
        if (ref.targetType) {
          if (typed && ref.targetType !== typed) throw badRequest(`'${value}' is not a ${typed} reference`, name);
          return `(target_type = ${this.p.add(ref.targetType)} AND target_id = ${this.p.add(ref.targetId)})`;
        }
        return `url = ${this.p.add(value)}`;
      })
      .join(' OR ');
    return `${scope.alias}.pk IN (${this.rowsOf('search_reference', scope, def.code, where)})`;
  }

  /** `subject:Patient.name=x`: references whose target satisfies the rest of the chain (several levels). */
  private chainCondition(scope: Scope, def: SearchParamDef, modifier: string | undefined, chain: string, value: string): string {
    if (def.type !== 'reference') throw badRequest(`'${def.code}' is not a reference parameter and cannot be chained`, def.code);
    const { code: next } = parseName(chain);
    const candidates = modifier ? [modifier] : def.target.length ? def.target : [];
    const targets = candidates.filter((t) => next.startsWith('_') || searchParameterMap(t).has(next));
    if (!targets.length) throw new UnknownParameter(`${def.code}.${chain}`, `No target of '${def.code}' has a search parameter '${next}'`);
    const branches = targets.map((target) => {
      const alias = this.nextAlias();
      const inner = this.condition({ store: scope.store, type: target, alias }, chain, value);
      return (
        `SELECT ref.resource_pk FROM search_reference ref JOIN resource ${alias} ON ${alias}.store = ${this.p.add(scope.store)} AND ${alias}.type = ref.target_type AND ${alias}.id = ref.target_id ` +
        `WHERE ${this.keyCondition(scope.store, scope.type, def.code, 'ref.key')} AND ref.target_type = ${this.p.add(target)} AND ${alias}.content IS NOT NULL AND ${inner}`
      );
    });
    return `${scope.alias}.pk IN (${branches.join(' UNION ')})`;
  }

  /** `_has:Observation:patient:code=1234`: resources referred to by a matching Observation's `patient`. */
  private has(scope: Scope, name: string, value: string): string {
    const m = /^_has:([A-Z][A-Za-z]*):([a-z][A-Za-z0-9-]*):(.+)$/.exec(name);
    if (!m) throw badRequest(`'${name}' is not a valid _has parameter (_has:Type:reference:parameter)`, name);
    const [, type, refParam, rest] = m;
    const ref = searchParameter(type, refParam);
    if (!ref || ref.type !== 'reference') throw new UnknownParameter(name, `${type} has no reference parameter '${refParam}'`);
    const alias = this.nextAlias();
    const inner = this.condition({ store: scope.store, type, alias }, rest, value);
    return (
      `${scope.alias}.id IN (SELECT ref.target_id FROM search_reference ref JOIN resource ${alias} ON ${alias}.pk = ref.resource_pk ` +
      `WHERE ${this.keyCondition(scope.store, type, refParam, 'ref.key')} AND ref.target_type = ${this.p.add(scope.type)} AND NOT ${alias}.deleted AND ${inner})`
    );
  }

  /** A sort key expression for `_sort` (lowest value ascending, highest descending). */
  sortKey(scope: Scope, code: string, descending: boolean): string {
    if (code === '_id') return `${scope.alias}.id`;
    if (code === '_lastUpdated') return `${scope.alias}.last_updated`;
    const def = searchParameter(scope.type, code);
    if (!def) throw new UnknownParameter(`_sort=${code}`, `Unknown search parameter '${code}' for ${scope.type} in _sort`);
    const agg = descending ? 'max' : 'min';
    const columns: Record<string, string> = {
      string: 'value',
      token: 'code',
      date: descending ? 'high' : 'low',
      number: 'value',
      quantity: 'value',
      uri: 'value',
      reference: 'target_id',
    };
    const column = columns[def.type];
    if (!column) throw badRequest(`Cannot sort by '${code}' (${def.type})`, '_sort');
    return `(SELECT ${agg}(${column}) FROM ${INDEX_TABLE[def.type]} WHERE resource_pk = ${scope.alias}.pk AND ${this.keyCondition(scope.store, scope.type, code)})`;
  }
}
