-- Aggregation, second step (DESIGN §3.6–3.8): what each upstream resource's aggregated form was computed
-- from, so that a change of identity upstream (a late-arriving target, a group merge or split, a deleted
-- member, a Patient's new managingOrganization) re-aggregates exactly the resources that depend on it.
-- Raw-SQL tables and columns (src/aggregator), not in schema.prisma.

-- `Type/id` of the upstream resources (same endpoint) whose aggregated ids this member's aggregated form
-- used: its reference targets and the endpoint's default source organisation when that was used. Kept for
-- excluded members too, so that one excluded for a missing target is retried when the target arrives.
ALTER TABLE "agg_member" ADD COLUMN "depends_on" TEXT[] NOT NULL DEFAULT '{}';
CREATE INDEX "agg_member_depends_idx" ON "agg_member" USING GIN ("depends_on");

-- The organisations each customer is a source for (its identities in the access filter), maintained by
-- the aggregator instead of being recomputed from agg_access on every request.
CREATE TABLE "agg_customer_org" (
    "customer_id" TEXT NOT NULL,
    "org" TEXT NOT NULL,
    PRIMARY KEY ("customer_id", "org")
);
INSERT INTO "agg_customer_org" ("customer_id", "org")
SELECT DISTINCT c.customer_id, a.source_org
  FROM "agg_access" a CROSS JOIN LATERAL unnest(a.source_customers) AS c(customer_id)
 WHERE a.kind = 'copied' AND a.source_org IS NOT NULL
ON CONFLICT DO NOTHING;
