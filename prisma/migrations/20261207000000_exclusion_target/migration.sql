-- The resource type an exclusion is about, beside its rule (src/aggregator/rules.ts `exclusionTarget`): the
-- type a reference names that the aggregation does not support, or the type of the target an exclusion waits
-- for, as the upstream reference names it. AGGREGATED_TYPES_CHANGE=apply requeues the members excluded for
-- referring to a type now added by this column (src/aggregator/recordedAggregatedTypes.ts), and the
-- aggregation report names the referenced types from it, rather than either reading the reason texts, whose
-- wording is for people. Raw-SQL column (src/aggregator), not in schema.prisma.
ALTER TABLE "agg_member" ADD COLUMN "target_type" TEXT;

-- Rows excluded before this column existed: the type read once here from the texts the aggregator wrote
-- (rules.ts, copies.ts and aggregator.ts, unchanged in wording since those rules were recorded).
UPDATE "agg_member" SET "target_type" = CASE "rule"
    WHEN 'reference-to-unsupported-type'
      THEN substring("reason" FROM '^[^ ]+ refers to ([A-Z][A-Za-z]+), which the aggregation does not support$')
    WHEN 'target-not-aggregated'
      THEN substring("reason" FROM '^[^ ]+ refers to ([A-Z][A-Za-z]+)/[A-Za-z0-9.-]+, which is not in the aggregated record')
    WHEN 'source-organization-not-aggregated'
      THEN substring("reason" FROM '^the endpoint''s default source organisation ([A-Z][A-Za-z]+)/[A-Za-z0-9.-]+ is not in the aggregated record')
    END
 WHERE "status" = 'excluded' AND "rule" IN ('reference-to-unsupported-type', 'target-not-aggregated', 'source-organization-not-aggregated');
