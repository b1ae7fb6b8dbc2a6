-- Resources excluded because a reference target is missing (or excluded) wait for that target here: when it
-- is aggregated, exactly they are queued again (src/aggregator/dependents.ts). A small table with a btree
-- key keeps that look-up cheap for every newly aggregated resource, whatever the statistics say; the
-- depends_on index serves the rarer identity changes.
CREATE TABLE "agg_waiting" (
    "store" TEXT NOT NULL,
    "target" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "res_id" TEXT NOT NULL,
    PRIMARY KEY ("store", "target", "type", "res_id")
);
CREATE INDEX "agg_waiting_member_idx" ON "agg_waiting" ("store", "type", "res_id");

-- Lookups by (store, type, id) must find the unique index whatever the statistics: on a table loaded in
-- bulk before autovacuum has analysed it, the planner took this index (store, type prefix, then a filter
-- on id) for them and scanned a whole type per lookup. `_lastUpdated` searches and type history use
-- (store, last_updated) instead.
DROP INDEX "resource_store_type_last_updated_idx";
