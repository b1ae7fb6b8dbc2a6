/**
 * Statements that PostgreSQL keeps prepared on each pooled connection (store/sql.ts sends them by name): parsed
 * and planned on a connection's first calls, then run from the plan it caches (a generic one after its first
 * five custom plans). Worth it for fixed texts run on every request: reading a resource by its key planned in
 * 39.5 µs and executed in 16.8 per read, and the audit log's batch INSERT planned in as long as it executed
 * (`pg_stat_statements` with `track_planning`, `bench/readCost.ts`). Only texts registered here are prepared, so a
 * connection holds a bounded set of them until it closes; dynamic SQL (searches) stays unnamed. The embedded
 * store runs every statement as text.
 */
const names = new Map<string, string>();

/** Registers `text` (a fixed statement) to run as a prepared statement; returns it unchanged. */
export function preparedStatement(text: string): string {
  if (!names.has(text)) names.set(text, `tributary_${names.size + 1}`);
  return text;
}

/** The name a registered statement is prepared under, or undefined for any other text. */
export function preparedName(text: string): string | undefined {
  return names.get(text);
}
