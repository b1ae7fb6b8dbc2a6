/**
 * Statements prepared once per connection (PostgreSQL's extended protocol: a named Parse, then only Bind and
 * Execute): for the fixed-text statements every aggregation batch and bulk write runs, so PostgreSQL parses,
 * analyses and plans each of them once per connection (after five custom plans it keeps a generic one when
 * that costs no more) rather than at every call. Only fixed texts belong here: each distinct text is one
 * prepared statement held by every connection of the pool for its lifetime, so a text assembled from data
 * (the index statement, whose tables vary per batch) would grow that set without bound.
 *
 * `prepared(text)` marks a text and returns it unchanged; the PostgreSQL client (sql.ts) names the marked
 * ones, the embedded store ignores the mark. Names are per process (and per worker thread), as are the pools.
 */
const names = new Map<string, string>();

export function prepared(text: string): string {
  if (!names.has(text)) names.set(text, `tributary_${names.size + 1}`);
  return text;
}

/** The name `text` is prepared under, if it was marked. */
export function preparedName(text: string): string | undefined {
  return names.get(text);
}
