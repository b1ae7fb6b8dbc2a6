import type { SqlClient } from '../store/sql';
import { badRequest, OperationOutcomeError, operationOutcome, type OperationOutcomeIssue } from '../fhir/outcome';
import { resourceTypes } from '../fhir/definitions';
import { indexedAs, searchParameter, searchParameterMap } from '../fhir/searchParameters';
import { applySummary, type SummaryMode } from '../fhir/summary';
import type { Bundle, BundleEntry, Resource } from '../fhir/types';
import type { AccessFilter, MatchRef, SearchPort, SearchQuery } from '../service/ports';
import { appendAccessFilter } from '../store/accessSql';
import { servedOrder, type Sql, type Tx } from '../store/resourceRepository';
import { indexKey } from './indexKey';
import { ConditionBuilder, type Driver, SqlParams, UnknownParameter, splitEscaped } from './searchSql';

/**
 * FHIR search over the SQL index (search.html): the match query, keyset paging, `_include`/`_revinclude`,
 * totals and the searchset Bundle. Every filter — the search's and the caller's access filter — is SQL, so
 * paging, totals and includes can never reveal what the caller may not see.
 */
const DEFAULT_COUNT = 20;
const MAX_COUNT = 1000;
const MAX_INCLUDE_ROUNDS = 4;
const MAX_INCLUDED = 5000;
const CONTROL = new Set(['_count', '_sort', '_include', '_revinclude', '_total', '_summary', '_elements', '_cursor', '_offset', '_type', '_include:iterate', '_revinclude:iterate', '_format', '_pretty', '_contained', '_containedType']);

interface Row {
  pk: bigint;
  type: string;
  id: string;
  content: Resource;
}

interface Plan {
  params: SqlParams;
  where: string[];
  order: string[];
  sorted: boolean;
  used: [string, string][];
  ignored: [string, string][];
  /** The first condition's index lookup, when it can drive the page in resource_pk order. */
  driver?: Driver & { sql: string };
}

interface Cursor {
  dir: 'after' | 'before';
  pk: string;
}

function encodeCursor(c: Cursor): string {
  return Buffer.from(`${c.dir === 'after' ? 'a' : 'b'}${c.pk}`).toString('base64url');
}

function decodeCursor(text: string): Cursor {
  const raw = Buffer.from(text, 'base64url').toString();
  if (!/^[ab]\d+$/.test(raw)) throw badRequest(`'_cursor' is not a cursor this server issued`, '_cursor');
  return { dir: raw[0] === 'a' ? 'after' : 'before', pk: raw.slice(1) };
}

/** Appends an access filter written against alias `r` with its own $1…$n placeholders. */
function accessSql(filter: AccessFilter | undefined, p: SqlParams, alias = 'r'): string | undefined {
  return filter ? appendAccessFilter(filter, p.values, alias) : undefined;
}

function intParam(name: string, value: string, max: number): number {
  if (!/^\d+$/.test(value)) throw badRequest(`'${name}' must be a whole number, not '${value}'`, name);
  return Math.min(Number(value), max);
}

/**
 * "Not deleted" for a row found by (store, type, id). Deleted rows have no content; saying so rather than
 * `NOT r.deleted` keeps the partial paging index (store, type, pk) WHERE NOT deleted out of the planner's
 * choice for an id lookup, which on a freshly loaded table without statistics it may otherwise take.
 */
export const LIVE_BY_ID = 'r.content IS NOT NULL';

/** The index keys of reference parameter `param` (`*`: every reference parameter) of each source type. */
function referenceKeys(store: string, types: string[], param: string): string[] {
  const keys = new Set<string>();
  for (const type of types) {
    const codes = param === '*' ? [...searchParameterMap(type).values()].filter((d) => d.type === 'reference' && !d.derivedFrom).map((d) => d.code) : indexedAs(type, param);
    for (const code of codes) keys.add(indexKey(store, type, code));
  }
  return [...keys];
}

export class SearchService implements SearchPort {
  constructor(private readonly sql: SqlClient) {}

  private plan(query: Pick<SearchQuery, 'store' | 'resourceType' | 'params' | 'handling' | 'accessFilter'>, types: string[]): Plan {
    const params = new SqlParams();
    const builder = new ConditionBuilder(params);
    const where = [`r.store = ${params.add(query.store)}`, 'NOT r.deleted'];
    const used: [string, string][] = [];
    const ignored: [string, string][] = [];
    const byType: string[][] = types.map(() => []);
    let driver: (Driver & { sql: string }) | undefined;
    for (const [name, value] of query.params) {
      if (CONTROL.has(name) || name.startsWith('_include') || name.startsWith('_revinclude')) continue;
      if (!types.length) throw badRequest(`Searching all types by '${name}' needs _type to say which types`, name);
      try {
        types.forEach((type, i) => {
          const built = builder.conditionWithDriver({ store: query.store, type, alias: 'r' }, name, value);
          if (types.length === 1 && !driver && built.driver) driver = { ...built.driver, sql: built.sql };
          byType[i].push(built.sql);
        });
        used.push([name, value]);
      } catch (err) {
        if (!(err instanceof UnknownParameter)) throw err;
        if (query.handling === 'strict') throw badRequest(`${err.message} (Prefer: handling=strict)`, err.parameter);
        ignored.push([name, value]);
      }
    }
    if (types.length === 1) where.push(`r.type = ${params.add(types[0])}`, ...byType[0]);
    else if (types.length > 1) where.push(`(${types.map((t, i) => [`r.type = ${params.add(t)}`, ...byType[i]].join(' AND ')).join(' OR ')})`);
    const access = accessSql(query.accessFilter, params);
    if (access) where.push(access);

    const order: string[] = [];
    const sort = query.params.filter(([n]) => n === '_sort').flatMap(([, v]) => v.split(','));
    for (const key of sort.filter((s) => s !== '')) {
      const descending = key.startsWith('-');
      const code = descending ? key.slice(1) : key;
      if (types.length !== 1 && code !== '_id' && code !== '_lastUpdated') throw badRequest(`_sort by '${code}' needs a single resource type`, '_sort');
      try {
        order.push(`${builder.sortKey({ store: query.store, type: types[0] ?? '', alias: 'r' }, code, descending)} ${descending ? 'DESC' : 'ASC'} NULLS LAST`);
      } catch (err) {
        if (!(err instanceof UnknownParameter)) throw err;
        if (query.handling === 'strict') throw badRequest(err.message, '_sort');
        ignored.push(['_sort', key]);
      }
    }
    if (sort.length) used.push(['_sort', sort.join(',')]);
    return { params, where, order, sorted: order.length > 0, used, ignored, driver };
  }

  private typesOf(query: SearchQuery): string[] {
    if (query.resourceType) return [query.resourceType];
    const listed = query.params.filter(([n]) => n === '_type').flatMap(([, v]) => v.split(',')).filter((t) => t !== '');
    return listed;
  }

  async findMatches(query: { store: string; resourceType: string; params: [string, string][] }, limit: number, tx?: Tx): Promise<MatchRef[]> {
    if (!query.params.length) throw badRequest('Conditional interactions need search criteria');
    const plan = this.plan({ ...query, handling: 'strict' }, [query.resourceType]);
    const sql = `SELECT r.type, r.id, r.version_id FROM resource r WHERE ${plan.where.join(' AND ')} ORDER BY r.pk LIMIT ${plan.params.add(limit)}`;
    const rows = await (tx ?? this.sql).query<{ type: string; id: string; version_id: number }[]>(sql, ...plan.params.values);
    return rows.map((r) => ({ type: r.type, id: r.id, versionId: Number(r.version_id) }));
  }

  async search(query: SearchQuery, tx?: Tx): Promise<Bundle> {
    const single = (name: string) => {
      const values = query.params.filter(([n]) => n === name).map(([, v]) => v);
      if (values.length > 1) throw badRequest(`'${name}' may appear only once`, name);
      return values[0];
    };
    const types = this.typesOf(query);
    for (const t of types) if (!searchParameterMap(t).size) throw badRequest(`'${t}' is not a resource type`, '_type');
    const countText = single('_count');
    const count = countText === undefined ? DEFAULT_COUNT : intParam('_count', countText, MAX_COUNT);
    const summary = single('_summary') as SummaryMode | undefined;
    if (summary && !['true', 'text', 'data', 'count', 'false'].includes(summary)) throw badRequest(`_summary must be true, text, data, count or false`, '_summary');
    const total = single('_total') ?? (summary === 'count' ? 'accurate' : 'none');
    if (!['none', 'estimate', 'accurate'].includes(total)) throw badRequest(`_total must be none, estimate or accurate`, '_total');
    const elementsText = single('_elements');
    const elements = elementsText?.split(',').map((e) => e.trim()).filter((e) => e !== '');
    const cursorText = single('_cursor');
    const offsetText = single('_offset');

    const plan = this.plan(query, types);
    const sql: Sql = tx ?? this.sql;
    const entries: BundleEntry[] = [];
    let rows: Row[] = [];
    let next: string | undefined;
    let previous: string | undefined;

    if (summary !== 'count' && count > 0) {
      const p = plan.params;
      const where = [...plan.where];
      if (plan.sorted) {
        const offset = offsetText ? intParam('_offset', offsetText, 1_000_000) : 0;
        const text = `SELECT r.pk, r.type, r.id, r.content FROM resource r WHERE ${where.join(' AND ')} ORDER BY ${plan.order.join(', ')}, r.pk LIMIT ${count + 1} OFFSET ${offset}`;
        rows = await sql.query<Row[]>(text, ...p.values);
        if (rows.length > count) next = `_offset=${offset + count}`;
        if (offset > 0) previous = `_offset=${Math.max(0, offset - count)}`;
        rows = rows.slice(0, count);
      } else {
        const cursor = cursorText ? decodeCursor(cursorText) : undefined;
        if (cursor) where.push(`r.pk ${cursor.dir === 'after' ? '>' : '<'} ${p.add(cursor.pk)}::bigint`);
        const backwards = cursor?.dir === 'before';
        const direction = backwards ? 'DESC' : 'ASC';
        const d = plan.driver;
        // Driven by one index lookup, the page streams in resource_pk order straight off the index
        // (one index range, no sort of all matches); otherwise the planner joins the conditions itself.
        const text = d
          ? `SELECT DISTINCT ON (d.resource_pk) r.pk, r.type, r.id, r.content FROM ${d.table} d JOIN resource r ON r.pk = d.resource_pk ` +
            `WHERE d.${d.keyCondition} AND (${d.where.replace(/(?<![:.\w$])(code|system|text|value|exact|target_type|target_id|url|low|high|system1|code1|system2|code2|number2|low2|high2)\b/g, 'd.$1')}) ` +
            `AND ${where.filter((w) => w !== d.sql).join(' AND ').replace(/\br\.pk ([<>]) /, 'd.resource_pk $1 ')} ORDER BY d.resource_pk ${direction} LIMIT ${count + 1}`
          : `SELECT r.pk, r.type, r.id, r.content FROM resource r WHERE ${where.join(' AND ')} ORDER BY r.pk ${direction} LIMIT ${count + 1}`;
        rows = await sql.query<Row[]>(text, ...p.values);
        const more = rows.length > count;
        rows = rows.slice(0, count);
        if (backwards) rows.reverse();
        const first = rows[0]?.pk;
        const last = rows[rows.length - 1]?.pk;
        if (backwards) {
          if (more && first !== undefined) previous = `_cursor=${encodeCursor({ dir: 'before', pk: String(first) })}`;
          if (last !== undefined) next = `_cursor=${encodeCursor({ dir: 'after', pk: String(last) })}`;
        } else {
          if (more && last !== undefined) next = `_cursor=${encodeCursor({ dir: 'after', pk: String(last) })}`;
          if (cursor && first !== undefined) previous = `_cursor=${encodeCursor({ dir: 'before', pk: String(first) })}`;
        }
      }
      for (const row of rows) entries.push(this.entry(query.baseUrl, row, 'match', summary, elements));
      const included = await this.includes(query, rows, sql);
      for (const row of included) entries.push(this.entry(query.baseUrl, row, 'include', summary, elements));
    }

    let totalValue: number | undefined;
    if (total === 'accurate') {
      const [{ n }] = await sql.query<{ n: bigint }[]>(`SELECT count(*) AS n FROM resource r WHERE ${plan.where.join(' AND ')}`, ...plan.params.values.slice(0, this.paramsUsedBy(plan.where)));
      totalValue = Number(n);
    } else if (total === 'estimate') {
      const [plan0] = await sql.query<{ 'QUERY PLAN': { Plan: { 'Plan Rows': number } }[] }[]>(
        `EXPLAIN (FORMAT JSON) SELECT 1 FROM resource r WHERE ${plan.where.join(' AND ')}`,
        ...plan.params.values.slice(0, this.paramsUsedBy(plan.where)),
      );
      totalValue = Math.round(plan0['QUERY PLAN'][0].Plan['Plan Rows']);
    }

    const issues: OperationOutcomeIssue[] = plan.ignored.map(([n, v]) => ({
      severity: 'warning',
      code: 'not-supported',
      diagnostics: `Parameter '${n}=${v}' was ignored: it is unknown or not supported for ${types.join(', ') || 'system search'}`,
      expression: [n],
    }));
    if (issues.length) entries.push({ resource: operationOutcome(issues), search: { mode: 'outcome' } });

    const selfParams = [...plan.used, ...query.params.filter(([n]) => CONTROL.has(n) && n !== '_cursor' && n !== '_offset' && n !== '_sort' && n !== '_format' && n !== '_pretty')];
    const path = query.resourceType ? `${query.baseUrl}/${query.resourceType}` : query.baseUrl;
    const link = (extra?: string) => {
      const qs = new URLSearchParams(selfParams).toString();
      const tail = [qs, extra].filter((s) => s).join('&');
      return tail ? `${path}?${tail}` : path;
    };
    const links = [{ relation: 'self', url: link(cursorText ? `_cursor=${cursorText}` : offsetText ? `_offset=${offsetText}` : undefined) }];
    if (next) links.push({ relation: 'next', url: link(next) });
    if (previous) links.push({ relation: 'previous', url: link(previous) });
    return {
      resourceType: 'Bundle',
      type: 'searchset',
      ...(totalValue !== undefined ? { total: totalValue } : {}),
      link: links,
      entry: entries,
    };
  }

  /** How many bind parameters the WHERE clauses use (the cursor's come after them). */
  private paramsUsedBy(where: string[]): number {
    let max = 0;
    for (const m of where.join(' ').matchAll(/\$(\d+)/g)) max = Math.max(max, Number(m[1]));
    return max;
  }

  private entry(baseUrl: string, row: Row, mode: 'match' | 'include', summary: SummaryMode | undefined, elements: string[] | undefined): BundleEntry {
    const resource = applySummary(servedOrder(row.content), summary, mode === 'match' ? elements : undefined);
    return { fullUrl: `${baseUrl}/${row.type}/${row.id}`, resource, search: { mode } };
  }

  /** `_include` / `_revinclude`, with `:iterate` applied to what earlier rounds brought in. */
  private async includes(query: SearchQuery, matches: Row[], sql: Sql): Promise<Row[]> {
    const specs = query.params
      .filter(([n]) => n.startsWith('_include') || n.startsWith('_revinclude'))
      .map(([name, value]) => {
        const [kind, modifier] = name.split(':');
        if (modifier && modifier !== 'iterate' && modifier !== 'recurse') throw badRequest(`'${name}' is not a valid include parameter`, name);
        const [source, param, target] = splitEscaped(value, ':');
        if (!source || (!param && source !== '*')) throw badRequest(`'${name}=${value}' must be Type:parameter[:targetType]`, name);
        if (source !== '*' && param !== '*') {
          const def = searchParameter(source, param);
          if (!def || def.type !== 'reference') throw badRequest(`${source} has no reference parameter '${param}' (${name})`, name);
        }
        return { reverse: kind === '_revinclude', iterate: !!modifier, source, param: param ?? '*', target };
      });
    if (!specs.length || !matches.length) return [];
    const seen = new Set(matches.map((r) => String(r.pk)));
    const out: Row[] = [];
    let frontier = matches;
    for (let round = 0; round < MAX_INCLUDE_ROUNDS && frontier.length; round++) {
      const found: Row[] = [];
      for (const spec of specs) {
        if (round > 0 && !spec.iterate) continue;
        const p = new SqlParams();
        const access = accessSql(query.accessFilter, p);
        let text: string;
        if (!spec.reverse) {
          const sources = frontier.filter((r) => spec.source === '*' || r.type === spec.source);
          if (!sources.length) continue;
          // A row's key already says which store, type and parameter it belongs to: the sources' own rows
          // (every reference of theirs, for `*`) are the ones to follow.
          const conds = [`ref.resource_pk = ANY(${p.add(sources.map((r) => String(r.pk)))}::bigint[])`];
          if (spec.param !== '*') conds.push(`ref.key = ANY(${p.add(referenceKeys(query.store, [...new Set(sources.map((r) => r.type))], spec.param))}::bigint[])`);
          if (spec.target) conds.push(`ref.target_type = ${p.add(spec.target)}`);
          text =
            `SELECT DISTINCT r.pk, r.type, r.id, r.content FROM search_reference ref JOIN resource r ON r.store = ${p.add(query.store)} AND r.type = ref.target_type AND r.id = ref.target_id ` +
            `WHERE ${conds.join(' AND ')} AND ${LIVE_BY_ID}${access ? ` AND ${access}` : ''}`;
        } else {
          const targets = frontier.filter((r) => !spec.target || r.type === spec.target);
          if (!targets.length) continue;
          const sourceTypes = spec.source === '*' ? [...resourceTypes('R4')] : [spec.source];
          const conds = [
            `(ref.target_type, ref.target_id) IN (SELECT * FROM unnest(${p.add(targets.map((r) => r.type))}::text[], ${p.add(targets.map((r) => r.id))}::text[]))`,
            `ref.key = ANY(${p.add(referenceKeys(query.store, sourceTypes, spec.param))}::bigint[])`,
          ];
          text =
            `SELECT DISTINCT r.pk, r.type, r.id, r.content FROM search_reference ref JOIN resource r ON r.pk = ref.resource_pk ` +
            `WHERE ${conds.join(' AND ')} AND NOT r.deleted${access ? ` AND ${access}` : ''}`;
        }
        const rows = await sql.query<Row[]>(`${text} LIMIT ${MAX_INCLUDED}`, ...p.values);
        for (const row of rows) {
          const key = String(row.pk);
          if (seen.has(key)) continue;
          seen.add(key);
          found.push(row);
        }
      }
      out.push(...found);
      if (out.length >= MAX_INCLUDED) {
        throw new OperationOutcomeError(400, operationOutcome([{ severity: 'error', code: 'too-costly', diagnostics: `The includes would return more than ${MAX_INCLUDED} resources; narrow the search` }]));
      }
      frontier = found;
    }
    return out;
  }
}
