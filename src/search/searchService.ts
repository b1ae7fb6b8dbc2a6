import type { SqlClient } from '../store/sql';
import { badRequest, OperationOutcomeError, operationOutcome, type OperationOutcomeIssue } from '../fhir/outcome';
import { resourceTypes } from '../fhir/definitions';
import { indexedAs, searchParameter, searchParameterMap } from '../fhir/searchParameters';
import { applySummary, type SummaryMode } from '../fhir/summary';
import type { Bundle, BundleEntry, FhirVersion, Resource } from '../fhir/types';
import type { AccessFilter, MatchRef, ScanPage, ScanQuery, ScanText, SearchPort, SearchQuery } from '../service/ports';
import { LEADING_MEMBERS, servedJsonText, type StoredJsonParts } from '../store/servedJsonText';
import { servedOrder, type Sql, type Tx } from '../store/resourceRepository';
import { ConditionBuilder } from './conditionBuilder';
import { assertSearchLimits } from './searchLimits';
import { withDeadline } from '../store/queryScope';
import { indexKey } from './indexKey';
import type { IndexLookup } from './predicates/indexLookup';
import { splitEscaped } from './predicates/searchValue';
import { UnknownParameter } from './predicates/unknownParameter';
import {
  Aliased,
  AnyOf,
  Binary,
  Conjunction,
  Constant,
  Disjunction,
  eq,
  Fn,
  InSubquery,
  IsNull,
  type Join,
  JsonMember,
  JsonText,
  JsonWithout,
  Not,
  type OrderKey,
  Param,
  renderSql,
  RESOURCE_TABLE,
  SelectQuery,
  type SqlNode,
  Star,
  Table,
  Unnest,
} from './sql/sqlTree';

/**
 * FHIR search over the SQL index (search.html): the match query, keyset paging, `_include`/`_revinclude`,
 * totals and the searchset Bundle. Every filter — the search's and the caller's access filter — is SQL, so
 * paging, totals and includes can never reveal what the caller may not see.
 */
const DEFAULT_COUNT = 20;
const MAX_COUNT = 1000;
const MAX_INCLUDE_ROUNDS = 4;
const MAX_INCLUDED = 5000;
const CONTROL = new Set([
  '_count',
  '_sort',
  '_include',
  '_revinclude',
  '_total',
  '_summary',
  '_elements',
  '_cursor',
  '_offset',
  '_type',
  '_include:iterate',
  '_revinclude:iterate',
  '_format',
  '_pretty',
  '_contained',
  '_containedType',
]);

interface Row {
  pk: bigint;
  type: string;
  id: string;
  content: Resource;
}

interface Plan {
  /** The conditions on the searched rows `r` (the access filter is the tree's, added when rendered). */
  where: SqlNode[];
  order: OrderKey[];
  /** What the sort keys join in (on Citus: the grouped index rows they order by). */
  orderJoins: Join[];
  used: [string, string][];
  ignored: [string, string][];
  /** The first condition's index lookup, when it can drive the page in resource_pk order. */
  driver?: IndexLookup;
  /** The conditions in `where` that only say which store and type (and live): the driver's key says them too. */
  scope: SqlNode[];
}

/** Cursors of `scanText`, unique within the process (a transaction may hold several). */
let cursors = 0;

/** The searched rows. */
const R = new Table(RESOURCE_TABLE, 'r');
const ROW_COLUMNS = [R.column('pk'), R.column('type'), R.column('id'), R.column('content')];
/** A row's served JSON in parts (store/servedJsonText.ts): its type and id columns, its meta's and the rest's jsonb text. */
const SERVED_PART_COLUMNS = [
  R.column('type'),
  R.column('id'),
  new Aliased(new JsonText(new JsonMember(R.column('content'), 'meta')), 'meta'),
  new Aliased(new JsonText(new JsonWithout(R.column('content'), LEADING_MEMBERS)), 'rest'),
];

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

function intParam(name: string, value: string, max: number): number {
  if (!/^\d+$/.test(value)) throw badRequest(`'${name}' must be a whole number, not '${value}'`, name);
  return Math.min(Number(value), max);
}

/**
 * "Not deleted" for a row found by (store, type, id). Deleted rows have no content; saying so rather than
 * `NOT r.deleted` keeps the partial paging index (store, type, pk) WHERE NOT deleted out of the planner's
 * choice for an id lookup, which on a freshly loaded table without statistics it may otherwise take.
 */
const LIVE_BY_ID = new IsNull(R.column('content'), true);

/** The index keys of reference parameter `param` (`*`: every reference parameter) of each source type. */
function referenceKeys(store: string, version: FhirVersion, types: string[], param: string): string[] {
  const keys = new Set<string>();
  for (const type of types) {
    const codes =
      param === '*' ? [...searchParameterMap(type, version).values()].filter((d) => d.type === 'reference' && !d.derivedFrom).map((d) => d.code) : indexedAs(type, param, version);
    for (const code of codes) keys.add(indexKey(store, type, code));
  }
  return [...keys];
}

export interface SearchOptions {
  /** SEARCH_TIMEOUT_MS: a search still running after this is cancelled on the server and answered 503 (0: never). */
  timeoutMs?: number;
  /**
   * The index tables are sharded away from `resource` (Citus, `CITUS=on`, src/store/citusLayout.ts). Citus
   * cannot join a sharded table to a coordinator table in one statement together with correlated subqueries
   * (the access filter's), nor run a correlated subquery from one into the other; it can run an uncorrelated
   * `r.pk IN (SELECT i.resource_pk …)` (the lookup first, on the shards). So no index lookup drives the page,
   * and predicates that probe the index per row say it that way (ConditionBuilder).
   */
  shardedIndex?: boolean;
}

export class SearchService implements SearchPort {
  constructor(
    private readonly sql: SqlClient,
    private readonly options: SearchOptions = {},
  ) {}

  private plan(query: Pick<SearchQuery, 'store' | 'fhirVersion' | 'resourceType' | 'params' | 'handling'>, types: string[]): Plan {
    const builder = new ConditionBuilder(query.fhirVersion, { shardedIndex: this.options.shardedIndex });
    const where: SqlNode[] = [eq(R.column('store'), new Param(query.store)), new Not(R.column('deleted'))];
    const used: [string, string][] = [];
    const ignored: [string, string][] = [];
    const byType: SqlNode[][] = types.map(() => []);
    let driver: IndexLookup | undefined;
    for (const [name, value] of query.params) {
      if (CONTROL.has(name) || name.startsWith('_include') || name.startsWith('_revinclude')) continue;
      if (!types.length) throw badRequest(`Searching all types by '${name}' needs _type to say which types`, name);
      try {
        types.forEach((type, i) => {
          const built = builder.conditionWithDriver({ store: query.store, type, alias: R.alias }, name, value);
          if (types.length === 1 && !driver && built.driver) driver = built.driver;
          byType[i].push(built.condition);
        });
        used.push([name, value]);
      } catch (err) {
        if (!(err instanceof UnknownParameter)) throw err;
        if (query.handling === 'strict') throw badRequest(`${err.message} (Prefer: handling=strict)`, err.parameter);
        ignored.push([name, value]);
      }
    }
    const ofType = (type: string) => eq(R.column('type'), new Param(type));
    const scope = [...where];
    if (types.length === 1) {
      scope.push(ofType(types[0]));
      where.push(scope[scope.length - 1], ...byType[0]);
    } else if (types.length > 1) where.push(new Disjunction(types.map((t, i) => new Conjunction([ofType(t), ...byType[i]]))));

    const order: OrderKey[] = [];
    const orderJoins: Join[] = [];
    const sort = query.params.filter(([n]) => n === '_sort').flatMap(([, v]) => v.split(','));
    for (const key of sort.filter((s) => s !== '')) {
      const descending = key.startsWith('-');
      const code = descending ? key.slice(1) : key;
      if (types.length !== 1 && code !== '_id' && code !== '_lastUpdated') throw badRequest(`_sort by '${code}' needs a single resource type`, '_sort');
      try {
        const { expr, join } = builder.sortKey({ store: query.store, type: types[0] ?? '', alias: R.alias }, code, descending);
        order.push({ expr, descending, nullsLast: true });
        if (join) orderJoins.push(join);
      } catch (err) {
        if (!(err instanceof UnknownParameter)) throw err;
        if (query.handling === 'strict') throw badRequest(err.message, '_sort');
        ignored.push(['_sort', key]);
      }
    }
    if (sort.length) used.push(['_sort', sort.join(',')]);
    return { where, order, orderJoins, used, ignored, driver, scope };
  }

  private typesOf(query: SearchQuery): string[] {
    if (query.resourceType) return [query.resourceType];
    const listed = query.params
      .filter(([n]) => n === '_type')
      .flatMap(([, v]) => v.split(','))
      .filter((t) => t !== '');
    return listed;
  }

  async findMatches(
    query: { store: string; fhirVersion?: FhirVersion; resourceType: string; params: [string, string][]; accessFilter?: AccessFilter },
    limit: number,
    tx?: Tx,
  ): Promise<MatchRef[]> {
    if (!query.params.length) throw badRequest('Conditional interactions need search criteria');
    assertSearchLimits(query.params);
    const plan = this.plan({ ...query, fhirVersion: query.fhirVersion ?? 'R4', handling: 'strict' }, [query.resourceType]);
    const select = new SelectQuery({
      columns: [R.column('type'), R.column('id'), R.column('version_id')],
      from: R,
      where: plan.where,
      orderBy: [{ expr: R.column('pk') }],
      limit,
    });
    const { text, values } = renderSql(select, query.accessFilter);
    const rows = await (tx ?? this.sql).query<{ type: string; id: string; version_id: number }[]>(text, ...values);
    return rows.map((r) => ({ type: r.type, id: r.id, versionId: Number(r.version_id) }));
  }

  async scan(query: ScanQuery, tx?: Tx): Promise<ScanPage> {
    const { text, values } = renderSql(
      new SelectQuery({ columns: ROW_COLUMNS, from: R, where: this.scanWhere(query), orderBy: [{ expr: R.column('pk') }], limit: query.limit + 1 }),
      query.accessFilter,
    );
    const rows = await (tx ?? this.sql).query<Row[]>(text, ...values);
    const page = rows.slice(0, query.limit);
    return { resources: page.map((r) => servedOrder(r.content)), next: rows.length > query.limit ? String(page[page.length - 1].pk) : undefined };
  }

  /**
   * Every row of a scan (`limit`: rows per page; `after` is not used), handed to `onPage` as NDJSON pages
   * until it answers false. One statement walks the rows once, through a cursor in `tx` (a page's statement of
   * its own would find its place again and, for large pages, sort what is left of the type each time), in no
   * particular order. Each line is the text a read serves, put together from PostgreSQL's text of the stored
   * jsonb (store/servedJsonText.ts): no resource is parsed or serialised here. The next page is fetched while
   * `onPage` handles one.
   */
  async scanText(query: ScanQuery, onPage: (page: ScanText) => Promise<boolean>, tx: Tx): Promise<void> {
    const cursor = `scan_text_${++cursors}`;
    const { text, values } = renderSql(new SelectQuery({ columns: SERVED_PART_COLUMNS, from: R, where: this.scanWhere(query) }), query.accessFilter);
    await tx.execute(`DECLARE ${cursor} NO SCROLL CURSOR FOR ${text}`, ...values);
    const fetch = () => tx.query<StoredJsonParts[]>(`FETCH FORWARD ${Math.max(1, Math.floor(query.limit))} FROM ${cursor}`);
    let next: Promise<StoredJsonParts[]> | undefined = fetch();
    try {
      while (next) {
        const rows: StoredJsonParts[] = await next;
        next = rows.length === query.limit ? fetch() : undefined;
        let ndjson = '';
        for (const row of rows) ndjson += `${servedJsonText(row)}\n`;
        if (!(await onPage({ ndjson, count: rows.length }))) break;
      }
    } finally {
      // A page fetched ahead and not wanted: its rows (or its failure, once the export stopped) do not matter.
      await next?.catch(() => undefined);
    }
    await tx.execute(`CLOSE ${cursor}`);
  }

  /** The rows a scan walks (see ScanQuery); the access filter is added when the statement is rendered. */
  private scanWhere(query: ScanQuery): SqlNode[] {
    const perType = query.types.map((type) => {
      const ofType = eq(R.column('type'), new Param(type));
      const lists = query.filters?.[type] ?? [];
      if (!lists.length) return ofType;
      // Each list is one `_typeFilter` query; several for one type match when any does (bulk-data export.html).
      return new Conjunction([
        ofType,
        new Disjunction(lists.map((params) => new Conjunction(this.plan({ store: query.store, fhirVersion: 'R4', params, handling: 'strict' }, [type]).where.slice(2)))),
      ]);
    });
    const where: SqlNode[] = [eq(R.column('store'), new Param(query.store)), new Not(R.column('deleted')), new Disjunction(perType)];
    if (query.since) where.push(new Binary(R.column('last_updated'), '>', new Param(query.since.toISOString(), 'timestamptz')));
    if (query.after) where.push(new Binary(R.column('pk'), '>', new Param(query.after, 'bigint')));
    if (query.patients) {
      const access = new Table('agg_access', 'cmp');
      const inCompartment = query.patients === 'all' ? new IsNull(access.column('patient_id'), true) : new AnyOf(access.column('patient_id'), new Param(query.patients, 'text[]'));
      const compartments = new InSubquery(R.column('pk'), new SelectQuery({ columns: [access.column('resource_pk')], from: access, where: [inCompartment] }));
      // A Group is in no compartment of its own (aggregator/upstream.ts `patientOf`): the exported one is named.
      const group = query.group === undefined ? undefined : new Conjunction([eq(R.column('type'), new Param('Group')), eq(R.column('id'), new Param(query.group))]);
      where.push(group ? new Disjunction([compartments, group]) : compartments);
    }
    return where;
  }

  async search(query: SearchQuery, tx?: Tx): Promise<Bundle> {
    assertSearchLimits(query.params);
    return withDeadline(this.options.timeoutMs ?? 0, 'SEARCH_TIMEOUT_MS', () => this.run(query, tx));
  }

  private async run(query: SearchQuery, tx?: Tx): Promise<Bundle> {
    const single = (name: string) => {
      const values = query.params.filter(([n]) => n === name).map(([, v]) => v);
      if (values.length > 1) throw badRequest(`'${name}' may appear only once`, name);
      return values[0];
    };
    const types = this.typesOf(query);
    for (const t of types) if (!searchParameterMap(t, query.fhirVersion).size) throw badRequest(`'${t}' is not a resource type`, '_type');
    const countText = single('_count');
    const count = countText === undefined ? DEFAULT_COUNT : intParam('_count', countText, MAX_COUNT);
    const summary = single('_summary') as SummaryMode | undefined;
    if (summary && !['true', 'text', 'data', 'count', 'false'].includes(summary)) throw badRequest(`_summary must be true, text, data, count or false`, '_summary');
    const total = single('_total') ?? (summary === 'count' ? 'accurate' : 'none');
    if (!['none', 'estimate', 'accurate'].includes(total)) throw badRequest(`_total must be none, estimate or accurate`, '_total');
    const elementsText = single('_elements');
    const elements = elementsText
      ?.split(',')
      .map((e) => e.trim())
      .filter((e) => e !== '');
    const cursorText = single('_cursor');
    const offsetText = single('_offset');

    const plan = this.plan(query, types);
    const sql: Sql = tx ?? this.sql;
    const entries: BundleEntry[] = [];
    let rows: Row[] = [];
    let next: string | undefined;
    let previous: string | undefined;

    if (summary !== 'count' && count > 0) {
      const run = async (select: SelectQuery) => {
        const { text, values } = renderSql(select, query.accessFilter);
        return sql.query<Row[]>(text, ...values);
      };
      if (plan.order.length) {
        const offset = offsetText ? intParam('_offset', offsetText, 1_000_000) : 0;
        // With a driver, its rows are the candidates: the lookup's key already pins store and type, so the
        // rows' own store/type/deleted conditions are left out (LIVE_BY_ID says "live" without the partial
        // index), leaving the planner no index on `resource` but its primary key. Kept, they let a planner
        // without statistics for a freshly grown table think store+type picks one row and scan every row of
        // the type, probing the lookup for each (a cost growing with the table, not with the matches).
        const d = this.options.shardedIndex ? undefined : plan.driver;
        const where = d ? [LIVE_BY_ID, ...plan.where.filter((w) => !plan.scope.includes(w))] : plan.where;
        rows = await run(
          new SelectQuery({ columns: ROW_COLUMNS, from: R, joins: plan.orderJoins, where, orderBy: [...plan.order, { expr: R.column('pk') }], limit: count + 1, offset }),
        );
        if (rows.length > count) next = `_offset=${offset + count}`;
        if (offset > 0) previous = `_offset=${Math.max(0, offset - count)}`;
        rows = rows.slice(0, count);
      } else {
        const cursor = cursorText ? decodeCursor(cursorText) : undefined;
        const backwards = cursor?.dir === 'before';
        const d = this.options.shardedIndex ? undefined : plan.driver;
        // Driven by one index lookup, the page streams in resource_pk order straight off the index
        // (one index range, no sort of all matches); otherwise the planner joins the conditions itself.
        const pk = d ? d.resourcePk : R.column('pk');
        const where = d ? [d.key, d.where, ...plan.where.filter((w) => w !== d)] : [...plan.where];
        if (cursor) where.push(new Binary(pk, cursor.dir === 'after' ? '>' : '<', new Param(cursor.pk, 'bigint')));
        const page = { columns: ROW_COLUMNS, where, orderBy: [{ expr: pk, descending: backwards }], limit: count + 1 };
        rows = await run(
          d ? new SelectQuery({ ...page, distinctOn: [pk], from: d.table, joins: [{ table: R, on: [eq(R.column('pk'), pk)] }] }) : new SelectQuery({ ...page, from: R }),
        );
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
      const { text, values } = renderSql(new SelectQuery({ columns: [new Aliased(new Fn('count', [new Star()]), 'n')], from: R, where: plan.where }), query.accessFilter);
      const [{ n }] = await sql.query<{ n: bigint }[]>(text, ...values);
      totalValue = Number(n);
    } else if (total === 'estimate') {
      const { text, values } = renderSql(new SelectQuery({ columns: [new Constant(1)], from: R, where: plan.where }), query.accessFilter);
      const [plan0] = await sql.query<{ 'QUERY PLAN': { Plan: { 'Plan Rows': number } }[] }[]>(`EXPLAIN (FORMAT JSON) ${text}`, ...values);
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
          const def = searchParameter(source, param, query.fhirVersion);
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
        const ref = new Table('search_reference', 'ref');
        let select: SelectQuery;
        if (!spec.reverse) {
          const sources = frontier.filter((r) => spec.source === '*' || r.type === spec.source);
          if (!sources.length) continue;
          // A row's key already says which store, type and parameter it belongs to: the sources' own rows
          // (every reference of theirs, for `*`) are the ones to follow.
          const conds: SqlNode[] = [
            new AnyOf(
              ref.column('resource_pk'),
              new Param(
                sources.map((r) => String(r.pk)),
                'bigint[]',
              ),
            ),
          ];
          if (spec.param !== '*')
            conds.push(new AnyOf(ref.column('key'), new Param(referenceKeys(query.store, query.fhirVersion, [...new Set(sources.map((r) => r.type))], spec.param), 'bigint[]')));
          if (spec.target) conds.push(eq(ref.column('target_type'), new Param(spec.target)));
          // The referenced rows as a semi-join on their key, not a join: each comes once however many
          // references point at it (no DISTINCT over their content), and on Citus the references are read on
          // the shards first and the coordinator's rows found by key, where a join would move one side whole.
          select = new SelectQuery({
            columns: ROW_COLUMNS,
            from: R,
            where: [
              eq(R.column('store'), new Param(query.store)),
              new InSubquery([R.column('type'), R.column('id')], new SelectQuery({ columns: [ref.column('target_type'), ref.column('target_id')], from: ref, where: conds })),
              LIVE_BY_ID,
            ],
            limit: MAX_INCLUDED,
          });
        } else {
          const targets = frontier.filter((r) => !spec.target || r.type === spec.target);
          if (!targets.length) continue;
          const sourceTypes = spec.source === '*' ? [...resourceTypes(query.fhirVersion)] : [spec.source];
          const wanted = new Unnest(
            [
              new Param(
                targets.map((r) => r.type),
                'text[]',
              ),
              new Param(
                targets.map((r) => r.id),
                'text[]',
              ),
            ],
            'u',
            ['type', 'id'],
          );
          // The referring rows by pk, a semi-join like the forward include's.
          const referring = new SelectQuery({
            columns: [ref.column('resource_pk')],
            from: ref,
            where: [
              new InSubquery([ref.column('target_type'), ref.column('target_id')], new SelectQuery({ columns: [new Star()], from: wanted })),
              new AnyOf(ref.column('key'), new Param(referenceKeys(query.store, query.fhirVersion, sourceTypes, spec.param), 'bigint[]')),
            ],
          });
          select = new SelectQuery({
            columns: ROW_COLUMNS,
            from: R,
            where: [new InSubquery(R.column('pk'), referring), new Not(R.column('deleted'))],
            limit: MAX_INCLUDED,
          });
        }
        const { text, values } = renderSql(select, query.accessFilter);
        const rows = await sql.query<Row[]>(text, ...values);
        for (const row of rows) {
          const key = String(row.pk);
          if (seen.has(key)) continue;
          seen.add(key);
          found.push(row);
        }
      }
      out.push(...found);
      if (out.length >= MAX_INCLUDED) {
        throw new OperationOutcomeError(
          400,
          operationOutcome([{ severity: 'error', code: 'too-costly', diagnostics: `The includes would return more than ${MAX_INCLUDED} resources; narrow the search` }]),
        );
      }
      frontier = found;
    }
    return out;
  }
}
