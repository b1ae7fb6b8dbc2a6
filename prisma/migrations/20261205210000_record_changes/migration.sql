-- The aggregated record's change log (issue 18: live record). One row per committed version of an
-- aggregated resource, written in the aggregation's own transaction; subscribers are told of it by
-- NOTIFY at commit and resume from a position (`seq`) after a reconnect. Rows older than the retention
-- are pruned by the server (src/live/liveRecord.ts).
CREATE TABLE "agg_change" (
  "seq" BIGSERIAL PRIMARY KEY,
  "type" TEXT NOT NULL,
  "res_id" TEXT NOT NULL,
  "version_id" INTEGER NOT NULL,
  "kind" TEXT NOT NULL,
  "patient_id" TEXT,
  "at" TIMESTAMPTZ(3) NOT NULL DEFAULT now()
);
CREATE INDEX "agg_change_patient_idx" ON "agg_change" ("patient_id", "seq");
CREATE INDEX "agg_change_type_idx" ON "agg_change" ("type", "seq");
CREATE INDEX "agg_change_at_idx" ON "agg_change" ("at");
