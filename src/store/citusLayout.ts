import type { ScriptSession } from './db';

/**
 * The Citus (distributed PostgreSQL) layout of the schema, applied after the migrations when `CITUS=on`
 * (docs/scale-out.md, "Citus"). It is a post-migration step rather than a migration because the same
 * migrations must run unchanged on PGlite and single-node PostgreSQL, and because each Citus call is
 * idempotent only if we look first: a table already in `pg_dist_partition` is left as it is.
 *
 * Stage 1, what today's SQL runs on without change:
 * - the tenancy tables are reference tables (a copy on every node, joinable anywhere);
 * - the search index tables and the history are distributed by `resource_pk`, colocated: both are keyed by
 *   it, they are most of the rows a write adds (≈ 9 index rows per resource), and their maintenance (delete
 *   + insert of a resource's rows) goes to the shards of that resource;
 * - the rest stays on the coordinator. Tables with foreign keys to reference tables (`local`) must be known
 *   to Citus (`citus_add_local_table_to_metadata`); the others (`coordinator`) stay plain PostgreSQL tables,
 *   since Citus refuses on the tables it knows what the aggregator and the outbox do on theirs: volatile
 *   functions in `UPDATE … SET` and `ON CONFLICT … DO UPDATE SET` (`clock_timestamp()`, `now()`). They are:
 *   `resource`, whose unique (`store`,`type`,`id`) key the conditional creates rely on cannot be enforced by
 *   Citus unless it holds the distribution column; `agg_access`, which statements join to `resource` inside
 *   correlated subqueries (the audit log's, the access predicate's) that Citus cannot plan across a local and
 *   a distributed table; the aggregator's bookkeeping and outbox, whose claim uses `FOR UPDATE SKIP LOCKED`
 *   and advisory locks that must stay in one place.
 */

/** How one table is placed. */
export type CitusPlacement =
  | { table: string; kind: 'reference' }
  | { table: string; kind: 'distributed'; column: string; colocateWith?: string }
  | { table: string; kind: 'local' }
  | { table: string; kind: 'coordinator' };

const reference = (table: string): CitusPlacement => ({ table, kind: 'reference' });
const local = (table: string): CitusPlacement => ({ table, kind: 'local' });
const coordinator = (table: string): CitusPlacement => ({ table, kind: 'coordinator' });
const byResource = (table: string, colocateWith?: string): CitusPlacement => ({ table, kind: 'distributed', column: 'resource_pk', colocateWith });

/** In the order they are applied: reference tables first, since the local ones hold foreign keys to them. */
export const CITUS_LAYOUT: readonly CitusPlacement[] = [
  ...['customer', 'organization', 'team', 'practitioner', 'team_member', 'endpoint', 'api_client', 'agg_customer_org'].map(reference),
  byResource('search_token'),
  ...['search_string', 'search_reference', 'search_date', 'search_number', 'search_quantity', 'search_uri', 'search_composite', 'resource_history'].map((t) =>
    byResource(t, 'search_token'),
  ),
  // Linked by foreign keys to reference tables, which Citus allows only from tables it knows.
  ...[
    'client_assertion_jti',
    'native_patient',
    'native_team_member',
    'native_entry',
    'native_questionnaire',
    'native_questionnaire_answer',
    'native_letter',
    'native_invitation',
  ].map(local),
  ...[
    'resource',
    'agg_access',
    'agg_outbox',
    'agg_member',
    'agg_key',
    'agg_group',
    'agg_waiting',
    'agg_grant',
    'agg_change',
    'audit_event',
    'consent',
    'patient_access',
    'break_glass',
    'idempotency_key',
    'bulk_export_job',
    'auth_failure',
  ].map(coordinator),
];

/** SQL functions the distributed queries call on the workers. */
const DISTRIBUTED_FUNCTIONS = ['search_index_key(text, text, text)'];

export async function hasCitusExtension(session: ScriptSession): Promise<boolean> {
  const rows = await session.query<{ present: boolean }>(`SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') AS present`);
  return rows[0]?.present === true;
}

/**
 * Places every table of `CITUS_LAYOUT` that Citus does not know yet; returns the tables it placed. Fails
 * with a message naming what to do when the database has no citus extension or no worker node.
 */
export async function applyCitusLayout(session: ScriptSession, layout: readonly CitusPlacement[] = CITUS_LAYOUT): Promise<string[]> {
  if (!(await hasCitusExtension(session))) {
    throw new Error('CITUS=on but this database has no citus extension: run CREATE EXTENSION citus on the coordinator and register the workers (docs/scale-out.md)');
  }
  const known = new Set(
    (await session.query<{ table: string }>(`SELECT logicalrelid::regclass::text AS "table" FROM pg_dist_partition`)).map((r) => r.table.replace(/^"|"$/g, '')),
  );
  const existing = new Set((await session.query<{ table: string }>(`SELECT tablename AS "table" FROM pg_tables WHERE schemaname = current_schema()`)).map((r) => r.table));
  const placed: string[] = [];
  for (const placement of layout) {
    if (placement.kind === 'coordinator' || known.has(placement.table) || !existing.has(placement.table)) continue;
    await session.exec(`SELECT ${placementCall(placement)};`);
    placed.push(placement.table);
  }
  for (const fn of DISTRIBUTED_FUNCTIONS) {
    // Idempotent on Citus: a function already distributed is left as it is.
    await session.exec(`SELECT create_distributed_function(${literal(fn)});`);
  }
  return placed;
}

function placementCall(p: Exclude<CitusPlacement, { kind: 'coordinator' }>): string {
  switch (p.kind) {
    case 'reference':
      return `create_reference_table(${literal(p.table)})`;
    case 'distributed':
      return `create_distributed_table(${literal(p.table)}, ${literal(p.column)}${p.colocateWith ? `, colocate_with => ${literal(p.colocateWith)}` : ''})`;
    case 'local':
      // A local table with a foreign key to a reference table must be known to Citus; cascading brings in
      // the local tables it is linked to by foreign keys as well.
      return `citus_add_local_table_to_metadata(${literal(p.table)}, cascade_via_foreign_keys => true)`;
  }
}

function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
