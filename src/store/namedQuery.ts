/**
 * Runs a prepared statement (preparedStatements.ts) on a `pg` connection without the per-call work `pg` spends on
 * an ad hoc query: its `client.query({ name, text, values })` copies the config through property descriptors,
 * and every result rebuilds each column's type parser and a dictionary-mode row template that each row is then
 * spread from. Together that was ≈ 9 % of the server's CPU for a read by key (`bench/readCost.ts`, profiled),
 * more than the read's own SQL. A prepared statement returns the same columns on every call, so their parsers
 * and names are looked up once per statement and pool (checked against each result's description, so a
 * schema change can only cost a rebuild), and rows are plain objects built in column order.
 *
 * Built on `pg`'s own Query, as custom query classes are (pg-cursor, pg-query-stream): the submit, prepare and
 * error paths are pg's; only the row description and the rows are handled here.
 */
import type pg from 'pg';

/** A column as `pg` describes it in a result's RowDescription. */
interface FieldDescription {
  name: string;
  dataTypeID: number;
  format?: string;
}

type Parser = (raw: string) => unknown;

/** The columns of one prepared statement's results and their parsers. */
interface RowShape {
  fields: FieldDescription[];
  names: string[];
  parsers: Parser[];
}

/** The `pg` Query internals this class takes over from (pg 8: lib/query.js). */
interface QueryInternals {
  _result: { fields: FieldDescription[]; rows: Record<string, unknown>[] };
  _accumulateRows: unknown;
  _canceledDueToError: unknown;
  _checkForMultirow(): void;
}

function sameColumns(a: FieldDescription[], b: FieldDescription[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i].name !== b[i].name || a[i].dataTypeID !== b[i].dataTypeID || (a[i].format ?? 'text') !== (b[i].format ?? 'text')) return false;
  }
  return true;
}

export type NamedQueryRunner = (client: pg.PoolClient, name: string, text: string, values: unknown[]) => Promise<{ rows: unknown[]; rowCount: number | null }>;

/** Returns the runner for one pool: `getTypeParser` is the pool's (the same one its ad hoc queries use). */
export function namedQueryRunner(Query: typeof pg.Query, getTypeParser: (oid: number, format?: string) => Parser): NamedQueryRunner {
  const shapes = new Map<string, RowShape>();
  const shapeOf = (name: string, fields: FieldDescription[]): RowShape => {
    const known = shapes.get(name);
    if (known && sameColumns(known.fields, fields)) return known;
    const shape = { fields, names: fields.map((f) => f.name), parsers: fields.map((f) => getTypeParser(f.dataTypeID, f.format ?? 'text')) };
    shapes.set(name, shape);
    return shape;
  };

  class NamedQuery extends Query {
    private shape: RowShape | undefined;

    constructor(
      private readonly statement: string,
      text: string,
      values: unknown[],
      callback: (err: Error | undefined, result: { rows: unknown[]; rowCount: number | null }) => void,
    ) {
      // A text config, which pg does not copy; the name is what makes it a prepared statement (pg's `name`).
      super(text, values, callback as never);
      (this as unknown as { name: string }).name = statement;
    }

    handleRowDescription(msg: { fields: FieldDescription[] }): void {
      const self = this as unknown as QueryInternals;
      self._checkForMultirow();
      self._result.fields = msg.fields;
      this.shape = shapeOf(this.statement, msg.fields);
      self._accumulateRows = true;
    }

    handleDataRow(msg: { fields: (string | null)[] }): void {
      const self = this as unknown as QueryInternals;
      if (self._canceledDueToError) return;
      const { names, parsers } = this.shape as RowShape;
      const row: Record<string, unknown> = {};
      try {
        for (let i = 0; i < names.length; i++) {
          const raw = msg.fields[i];
          row[names[i]] = raw === null ? null : parsers[i](raw);
        }
      } catch (err) {
        // As pg does: the error is reported once the statement's ReadyForQuery arrives, so the connection stays in step.
        self._canceledDueToError = err;
        return;
      }
      self._result.rows.push(row);
    }
  }

  return (client, name, text, values) =>
    new Promise((resolve, reject) => {
      client.query(new NamedQuery(name, text, values, (err, result) => (err ? reject(err) : resolve(result))));
    });
}
