-- The aggregated types (AGGREGATED_TYPES) are a property of the database, not of each process: every server
-- and worker aggregates into one record, so a process with another list would aggregate (or serve) a
-- different record, depending on which worker claimed an item. The first process to start on the database
-- records its list here; every later one compares its own with it and refuses to start on a difference,
-- unless started with AGGREGATED_TYPES_CHANGE=apply (src/aggregator/recordedAggregatedTypes.ts).
-- One row at most (the CHECK on the constant key). Raw SQL (src/aggregator), not in schema.prisma.
CREATE TABLE "agg_type_list" (
  "singleton" BOOLEAN PRIMARY KEY DEFAULT true CHECK ("singleton"),
  "types" TEXT[] NOT NULL,
  "recorded_at" TIMESTAMPTZ(3) NOT NULL DEFAULT clock_timestamp()
);
