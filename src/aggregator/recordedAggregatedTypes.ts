/**
 * The aggregated types (AGGREGATED_TYPES) as a property of the database. Every server and worker of one
 * database aggregates into one record: a process with another list would take in (or serve) a different
 * record, and what the aggregate holds would depend on which worker claimed an item. So the first process to
 * start on a database records its list (table `agg_type_list`), and every later one compares its own with it
 * and refuses to start on a difference, naming both lists and how to change them.
 *
 * A change is the operator's explicit act: with every server and worker stopped, one process starts with the
 * new list and `AGGREGATED_TYPES_CHANGE=apply`. It queues for re-aggregation what the change can affect, then
 * records the new list; the others then start with the new list. Requeued before recorded, so a crash between
 * the two leaves the old list recorded and the next `apply` queues the same items again (aggregation is
 * idempotent), never a recorded list whose consequences were not queued.
 */
import { ConfigError } from '../config';
import { resourceTypes } from '../fhir/definitions';
import type { Sql } from '../store/sql';
import { aggregatedType } from './aggregatedType';
import { aggregatedTypesText } from './aggregatedTypeList';
import { AGGREGATED_STORE } from './outbox';

/** What starting with a list did to the database's record of it. */
export type RecordedTypesOutcome =
  /** The database had no list: this process's is now the database's. */
  | { kind: 'recorded' }
  /** The same list as recorded; `changeIgnored` when AGGREGATED_TYPES_CHANGE=apply had nothing to apply. */
  | { kind: 'matched'; changeIgnored: boolean }
  /** AGGREGATED_TYPES_CHANGE=apply changed the database's list from `from`, queueing `requeued` resources. */
  | { kind: 'changed'; from: readonly string[]; requeued: number };

export interface RecordedTypesOptions {
  /** AGGREGATED_TYPES_CHANGE=apply: a list that differs from the recorded one replaces it instead of being refused. */
  applyChange?: boolean;
}

/** Compares `types` with the database's list, recording it when there is none; throws a ConfigError on a difference not applied. */
export async function recordedAggregatedTypes(sql: Sql, types: readonly string[], options: RecordedTypesOptions = {}): Promise<RecordedTypesOutcome> {
  const ours = [...new Set(types)].sort();
  // Two processes starting together on a new database: one row wins, the other compares with it below.
  if (await sql.execute(`INSERT INTO agg_type_list (types) VALUES ($1::text[]) ON CONFLICT DO NOTHING`, ours)) return { kind: 'recorded' };
  const [row] = await sql.query<{ types: string[]; recorded_at: Date }[]>(`SELECT types, recorded_at FROM agg_type_list`);
  const theirs = [...row.types].sort();
  if (ours.join(',') === theirs.join(',')) return { kind: 'matched', changeIgnored: options.applyChange === true };
  if (!options.applyChange) throw new ConfigError([mismatch(ours, theirs, row.recorded_at)]);
  const requeued = await requeueAffected(sql, withStu3Names(ours.filter((t) => !theirs.includes(t))), withStu3Names(theirs.filter((t) => !ours.includes(t))));
  await sql.execute(`UPDATE agg_type_list SET types = $1::text[], recorded_at = clock_timestamp()`, ours);
  return { kind: 'changed', from: theirs, requeued };
}

/** What a start that was not refused has to tell the operator, if anything: a line for the log. */
export function recordedTypesNote(outcome: RecordedTypesOutcome, types: readonly string[]): { level: 'info' | 'warn'; message: string } | undefined {
  const value = (t: readonly string[]) => `AGGREGATED_TYPES='${aggregatedTypesText(t)}'`;
  switch (outcome.kind) {
    case 'recorded':
      return { level: 'info', message: `recorded ${value(types)} as this database's aggregated types: every server and worker of it must start with the same` };
    case 'matched':
      return outcome.changeIgnored
        ? { level: 'warn', message: `AGGREGATED_TYPES_CHANGE=apply: the database already has ${value(types)}, nothing to apply; remove the setting` }
        : undefined;
    case 'changed':
      return {
        level: 'warn',
        message:
          `AGGREGATED_TYPES_CHANGE=apply: this database's aggregated types changed from ${value(outcome.from)} to ${value(types)}; ` +
          `${outcome.requeued} resources queued for re-aggregation. Start every other server and worker with ${value(types)}, and remove AGGREGATED_TYPES_CHANGE`,
      };
  }
}

/** The refusal: both lists as AGGREGATED_TYPES values, what differs, and the two ways on. */
function mismatch(ours: string[], theirs: string[], recordedAt: Date): string {
  const value = (types: string[]) => `AGGREGATED_TYPES='${aggregatedTypesText(types)}'`;
  const added = ours.filter((t) => !theirs.includes(t));
  const dropped = theirs.filter((t) => !ours.includes(t));
  const differs = [...added.map((t) => `${t} is aggregated here only`), ...dropped.map((t) => `${t} is not aggregated here`)].join('; ');
  return (
    `AGGREGATED_TYPES differs from this database's list: this process has ${value(ours)}, the database ${value(theirs)} ` +
    `(recorded ${recordedAt.toISOString()}): ${differs}. Every server and worker of one database must aggregate the same types. ` +
    `To join the others, start this process with ${value(theirs)}. To change the database's list, stop every server and worker, ` +
    `start one with ${value(ours)} and AGGREGATED_TYPES_CHANGE=apply (it records the new list and re-aggregates what the change affects), ` +
    `then the others with ${value(ours)}.`
  );
}

/** The types as upstream resources may name them: R4's, and the STU3 names R4 renamed (aggregatedType.ts). */
function withStu3Names(types: string[]): string[] {
  return [...new Set([...types, ...resourceTypes('STU3').filter((t) => types.includes(aggregatedType(t)))])];
}

/**
 * Queues the upstream resources whose aggregation the change can alter: those of a type added or dropped,
 * and those excluded for referring to a type now added (rule `reference-to-unsupported-type`; the type is
 * `agg_member.target_type`, as the reference names it, so possibly an STU3 name: rules.ts `exclusionTarget`.
 * Not the reason text, whose wording is for people). What depends on *them* follows as it does for any
 * change of identity: a member that leaves the record requeues every member whose aggregated form used it,
 * one that arrives those waiting for it (dependents.ts). Any other member's outcome does not depend on the
 * list. One statement per endpoint, so that each is a lane of its own (its merged types first) and endpoints
 * are worked on side by side.
 */
async function requeueAffected(sql: Sql, added: string[], dropped: string[]): Promise<number> {
  const changed = [...added, ...dropped];
  const stores = await sql.query<{ store: string }[]>(`SELECT DISTINCT store FROM agg_member WHERE store <> $1`, AGGREGATED_STORE);
  let requeued = 0;
  for (const { store } of stores) {
    requeued += await sql.execute(
      `INSERT INTO agg_outbox (store, type, res_id)
       SELECT m.store, m.type, m.res_id FROM agg_member m
        WHERE m.store = $1
          AND (m.type = ANY($2::text[])
               OR (m.status = 'excluded' AND m.rule = 'reference-to-unsupported-type' AND m.target_type = ANY($3::text[])))
          AND EXISTS (SELECT 1 FROM resource r WHERE r.store = m.store AND r.type = m.type AND r.id = m.res_id AND NOT r.deleted)`,
      store,
      changed,
      added,
    );
  }
  return requeued;
}
