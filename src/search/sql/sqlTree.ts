/**
 * Search SQL as a small expression tree — columns, bind parameters, conditions, selects with joins — rendered
 * once into text and values. Values are bound only when rendered, so a statement carries exactly the
 * parameters it uses, in the order it uses them.
 *
 * The caller's access filter is a property of the tree, not of each feature: every `resource` table a select
 * reads (the searched rows, chain hops, `_has` levels, included rows, counts) is constrained by the filter of
 * the context the statement is rendered in. A feature cannot forget it, because it never adds it.
 */
import type { AccessFilter } from '../../service/ports';

export interface SqlNode {
  render(ctx: SqlContext): string;
}

/** The statement being rendered: its bind values, the caller's access filter and the CTEs its nodes declared. */
export class SqlContext {
  readonly values: unknown[] = [];
  /** `name AS MATERIALIZED (…)`, each after the ones its own text reads. */
  readonly ctes: string[] = [];
  constructor(readonly accessFilter?: AccessFilter) {}

  bind(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }

  /** Declares `query` as a materialized CTE of the statement (its binds numbered like any other's); returns its name. */
  cte(query: SelectQuery): string {
    const body = query.render(this);
    const name = `cte${this.ctes.length + 1}`;
    this.ctes.push(`${name} AS MATERIALIZED (${body})`);
    return name;
  }
}

/** Renders `node` as one statement: its text and its values, every `resource` row filtered by `accessFilter`. */
export function renderSql(node: SqlNode, accessFilter?: AccessFilter): { text: string; values: unknown[] } {
  const ctx = new SqlContext(accessFilter);
  const text = node.render(ctx);
  return { text: ctx.ctes.length ? `WITH ${ctx.ctes.join(', ')} ${text}` : text, values: ctx.values };
}

/** The table whose rows the access filter guards. */
export const RESOURCE_TABLE = 'resource';

export class Column implements SqlNode {
  constructor(
    readonly alias: string,
    readonly name: string,
  ) {}
  render(): string {
    return `${this.alias}.${this.name}`;
  }
}

/** A bind parameter, cast when PostgreSQL cannot infer its type. */
export class Param implements SqlNode {
  constructor(
    readonly value: unknown,
    readonly cast?: 'bigint' | 'bigint[]' | 'text' | 'text[]' | 'timestamptz' | 'numeric' | 'int',
  ) {}
  render(ctx: SqlContext): string {
    const placeholder = ctx.bind(this.value);
    return this.cast ? `${placeholder}::${this.cast}` : placeholder;
  }
}

/** A constant written by this code (never a request's value): a number, a boolean or a short string. */
export class Constant implements SqlNode {
  constructor(readonly value: number | boolean | string) {}
  render(): string {
    if (typeof this.value === 'string') return `'${this.value.replace(/'/g, "''")}'`;
    if (typeof this.value === 'number' && !Number.isFinite(this.value)) throw new Error('Not a finite SQL number');
    return String(this.value).toUpperCase();
  }
}

export class Star implements SqlNode {
  render(): string {
    return '*';
  }
}

/** `name(args…)`; for an aggregate, `filter` adds `FILTER (WHERE filter)`: only the rows it holds for are aggregated. */
export class Fn implements SqlNode {
  constructor(
    readonly name: 'count' | 'min' | 'max' | 'replace' | 'unnest',
    readonly args: SqlNode[],
    readonly filter?: SqlNode,
  ) {}
  render(ctx: SqlContext): string {
    const call = `${this.name}(${this.args.map((a) => a.render(ctx)).join(', ')})`;
    return this.filter ? `${call} FILTER (WHERE ${this.filter.render(ctx)})` : call;
  }
}

export type BinaryOperator = '=' | '<' | '>' | '<=' | '>=' | 'LIKE' | '||';

export class Binary implements SqlNode {
  constructor(
    readonly left: SqlNode,
    readonly op: BinaryOperator,
    readonly right: SqlNode,
  ) {}
  render(ctx: SqlContext): string {
    return `${this.left.render(ctx)} ${this.op} ${this.right.render(ctx)}`;
  }
}

export const eq = (left: SqlNode, right: SqlNode) => new Binary(left, '=', right);

/** `left = ANY(array)`. */
export class AnyOf implements SqlNode {
  constructor(
    readonly left: SqlNode,
    readonly array: SqlNode,
  ) {}
  render(ctx: SqlContext): string {
    return `${this.left.render(ctx)} = ANY(${this.array.render(ctx)})`;
  }
}

export class IsNull implements SqlNode {
  constructor(
    readonly expr: SqlNode,
    readonly negated = false,
  ) {}
  render(ctx: SqlContext): string {
    return `${this.expr.render(ctx)} IS ${this.negated ? 'NOT ' : ''}NULL`;
  }
}

/** All of `conditions` (TRUE when there are none). */
export class Conjunction implements SqlNode {
  constructor(readonly conditions: SqlNode[]) {}
  render(ctx: SqlContext): string {
    if (!this.conditions.length) return 'TRUE';
    if (this.conditions.length === 1) return this.conditions[0].render(ctx);
    return `(${this.conditions.map((c) => c.render(ctx)).join(' AND ')})`;
  }
}

/** Any of `conditions` (FALSE when there are none). */
export class Disjunction implements SqlNode {
  constructor(readonly conditions: SqlNode[]) {}
  render(ctx: SqlContext): string {
    if (!this.conditions.length) return 'FALSE';
    if (this.conditions.length === 1) return this.conditions[0].render(ctx);
    return `(${this.conditions.map((c) => c.render(ctx)).join(' OR ')})`;
  }
}

export class Not implements SqlNode {
  constructor(readonly condition: SqlNode) {}
  render(ctx: SqlContext): string {
    return `NOT (${this.condition.render(ctx)})`;
  }
}

/** `left IN (query)`, or `(a, b) IN (query)` for several columns. */
export class InSubquery implements SqlNode {
  constructor(
    readonly left: SqlNode | SqlNode[],
    readonly query: SqlNode,
  ) {}
  render(ctx: SqlContext): string {
    const left = Array.isArray(this.left) ? `(${this.left.map((l) => l.render(ctx)).join(', ')})` : this.left.render(ctx);
    return `${left} IN (${this.query.render(ctx)})`;
  }
}

/**
 * `left IN (SELECT * FROM cte)`, `query` being a materialized CTE of the statement. On Citus a subquery over
 * the coordinator's tables that itself reads sharded ones must not sit inside a subquery over a sharded table:
 * Citus 13.2 plans it as a nested subplan and, with the access filter's correlated subqueries in it, crashes
 * the coordinator or reads its inner results as empty (citusdata/citus#8548, #8312). As a CTE it is planned
 * first, as a statement of its own, like a top-level search.
 */
export class InCte implements SqlNode {
  constructor(
    readonly left: SqlNode | SqlNode[],
    readonly query: SelectQuery,
  ) {}
  render(ctx: SqlContext): string {
    const name = ctx.cte(this.query);
    const left = Array.isArray(this.left) ? `(${this.left.map((l) => l.render(ctx)).join(', ')})` : this.left.render(ctx);
    return `${left} IN (SELECT * FROM ${name})`;
  }
}

export class Exists implements SqlNode {
  constructor(readonly query: SelectQuery) {}
  render(ctx: SqlContext): string {
    return `EXISTS (${this.query.render(ctx)})`;
  }
}

/**
 * A jsonb value as PostgreSQL writes it, `(json)::text`: keys in jsonb's order, numbers with the digits they
 * were stored with, control characters escaped (so the text is one line).
 */
export class JsonText implements SqlNode {
  constructor(readonly json: SqlNode) {}
  render(ctx: SqlContext): string {
    return `(${this.json.render(ctx)})::text`;
  }
}

/** `json -> 'key'`: one member of a jsonb object (NULL when absent). */
export class JsonMember implements SqlNode {
  constructor(
    readonly json: SqlNode,
    readonly key: string,
  ) {}
  render(ctx: SqlContext): string {
    return `(${this.json.render(ctx)} -> ${new Constant(this.key).render()})`;
  }
}

/** `json - ARRAY['k1', …]`: a jsonb object without the members `keys`. */
export class JsonWithout implements SqlNode {
  constructor(
    readonly json: SqlNode,
    readonly keys: string[],
  ) {}
  render(ctx: SqlContext): string {
    return `(${this.json.render(ctx)} - ARRAY[${this.keys.map((k) => new Constant(k).render()).join(', ')}]::text[])`;
  }
}

/** The caller's access filter on the `resource` row `alias`; added by SelectQuery, never by a feature. */
class AccessCondition implements SqlNode {
  constructor(
    readonly filter: AccessFilter,
    readonly alias: string,
  ) {}
  render(ctx: SqlContext): string {
    return `(${this.filter.condition(this.alias, (value) => ctx.bind(value))})`;
  }
}

export class Table {
  constructor(
    readonly name: string,
    readonly alias: string,
  ) {}
  column(name: string): Column {
    return new Column(this.alias, name);
  }
  render(): string {
    return `${this.name} ${this.alias}`;
  }
}

/** `unnest(a, b, …) AS alias(c1, c2, …)`: rows from parallel arrays. */
export class Unnest {
  constructor(
    readonly arrays: SqlNode[],
    readonly alias: string,
    readonly columns: string[],
  ) {}
  column(name: string): Column {
    return new Column(this.alias, name);
  }
  render(ctx: SqlContext): string {
    return `unnest(${this.arrays.map((a) => a.render(ctx)).join(', ')}) AS ${this.alias}(${this.columns.join(', ')})`;
  }
}

/** `(SELECT …) alias`: a subquery read as a table (joined, its columns named by the query's aliases). */
export class Derived {
  constructor(
    readonly query: SelectQuery,
    readonly alias: string,
  ) {}
  column(name: string): Column {
    return new Column(this.alias, name);
  }
  render(ctx: SqlContext): string {
    return `(${this.query.render(ctx)}) ${this.alias}`;
  }
}

/** A join: inner unless `left` (the joined side may have no row; its columns are then NULL). */
export interface Join {
  table: Table | Derived;
  on: SqlNode[];
  left?: boolean;
}

export interface OrderKey {
  expr: SqlNode;
  descending?: boolean;
  nullsLast?: boolean;
}

export interface SelectParts {
  columns: SqlNode[];
  from: Table | Unnest;
  joins?: Join[];
  where?: SqlNode[];
  groupBy?: SqlNode[];
  distinct?: boolean;
  distinctOn?: SqlNode[];
  orderBy?: OrderKey[];
  limit?: number;
  offset?: number;
}

/**
 * `SELECT … FROM … JOIN … WHERE … GROUP BY … ORDER BY … LIMIT …`. Every `resource` table in its FROM or joins
 * gets the context's access filter in its WHERE.
 */
export class SelectQuery implements SqlNode {
  constructor(readonly parts: SelectParts) {}

  render(ctx: SqlContext): string {
    const { columns, from, joins = [], where = [], groupBy = [], distinct, distinctOn, orderBy = [], limit, offset } = this.parts;
    const guarded = ctx.accessFilter ? [from, ...joins.map((j) => j.table)].filter((t): t is Table => t instanceof Table && t.name === RESOURCE_TABLE) : [];
    const head = distinctOn ? `DISTINCT ON (${distinctOn.map((d) => d.render(ctx)).join(', ')}) ` : distinct ? 'DISTINCT ' : '';
    let text = `SELECT ${head}${columns.map((c) => c.render(ctx)).join(', ')} FROM ${from.render(ctx)}`;
    for (const join of joins) text += ` ${join.left ? 'LEFT ' : ''}JOIN ${join.table.render(ctx)} ON ${join.on.map((c) => c.render(ctx)).join(' AND ')}`;
    const conditions = [...where, ...guarded.map((t) => new AccessCondition(ctx.accessFilter as AccessFilter, t.alias))];
    if (conditions.length) text += ` WHERE ${conditions.map((c) => c.render(ctx)).join(' AND ')}`;
    if (groupBy.length) text += ` GROUP BY ${groupBy.map((g) => g.render(ctx)).join(', ')}`;
    if (orderBy.length) {
      text += ` ORDER BY ${orderBy.map((o) => `${o.expr.render(ctx)} ${o.descending ? 'DESC' : 'ASC'}${o.nullsLast ? ' NULLS LAST' : ''}`).join(', ')}`;
    }
    if (limit !== undefined) text += ` LIMIT ${integer(limit)}`;
    if (offset !== undefined) text += ` OFFSET ${integer(offset)}`;
    return text;
  }
}

/** `q1 UNION q2 …`. */
export class Union implements SqlNode {
  constructor(readonly queries: SelectQuery[]) {}
  render(ctx: SqlContext): string {
    return this.queries.map((q) => q.render(ctx)).join(' UNION ');
  }
}

/** An expression with a column name: `count(*) AS n`. */
export class Aliased implements SqlNode {
  constructor(
    readonly expr: SqlNode,
    readonly name: string,
  ) {}
  render(ctx: SqlContext): string {
    return `${this.expr.render(ctx)} AS ${this.name}`;
  }
}

/** A scalar subquery: `(SELECT …)`. */
export class Scalar implements SqlNode {
  constructor(readonly query: SelectQuery) {}
  render(ctx: SqlContext): string {
    return `(${this.query.render(ctx)})`;
  }
}

function integer(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`Not a row count: ${n}`);
  return String(n);
}
