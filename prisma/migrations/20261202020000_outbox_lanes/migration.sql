-- The items one write transaction enqueues share a lane (its transaction id), so that a bundle's resources,
-- which refer to one another, are aggregated by one worker at a time (src/aggregator/claim.ts).
ALTER TABLE "agg_outbox" ADD COLUMN "lane" BIGINT NOT NULL DEFAULT txid_current();
CREATE INDEX "agg_outbox_lane_idx" ON "agg_outbox" ("lane", "id") WHERE NOT "parked";
