-- Issue 15 items 6 and 7. Raw-SQL columns (src/aggregator), not in schema.prisma.

-- Which inclusion rule excluded a member (src/aggregator/exclusionRules.ts), so the aggregation report can
-- count exclusions per rule without reading their reason texts. Rows excluded before this column existed are
-- classified once here from the texts the aggregator wrote.
ALTER TABLE "agg_member" ADD COLUMN "rule" TEXT;
UPDATE "agg_member" SET "rule" = CASE
    WHEN "reason" = 'deleted on its endpoint' THEN 'deleted'
    WHEN "reason" LIKE '%which is not in the aggregated record%' THEN 'target-not-aggregated'
    WHEN "reason" LIKE 'no source organisation%' THEN 'no-source-organization'
    WHEN "reason" LIKE '%has no ''reference''%' THEN 'identifier-only-reference'
    WHEN "reason" LIKE '%is a contained reference%' THEN 'contained-reference'
    WHEN "reason" LIKE '%is not a reference to a resource with a persistent identity%' THEN 'reference-not-resolvable'
    WHEN "reason" LIKE '%which the aggregation does not support' THEN 'reference-to-unsupported-type'
    WHEN "reason" LIKE '%is not a type the aggregation supports' THEN 'unsupported-type'
    WHEN "reason" LIKE '%needs at least one identifier%' THEN 'identifier-missing'
    WHEN "reason" LIKE '%.identifier[%] has no system' THEN 'identifier-without-system'
    WHEN "reason" LIKE '%needs code.coding%' THEN 'code-coding-missing'
    WHEN "reason" LIKE '%.code.coding[%] has no system' THEN 'coding-without-system'
    WHEN "reason" = 'Person needs link.target' THEN 'link-target-missing'
    WHEN "reason" = 'PractitionerRole needs practitioner' THEN 'practitioner-missing'
    WHEN "reason" = 'PractitionerRole needs organization' THEN 'organization-missing'
    WHEN "reason" LIKE 'not valid R4 after mapping%' THEN 'invalid-after-mapping'
    ELSE 'other' END
 WHERE "status" = 'excluded';

-- The aggregated id of the group a merged-type member joined before any merge of groups moved it: when a
-- group splits again, the part holding an absorbed group's members takes that id back (DESIGN §3.8), instead
-- of a new id while the old one keeps answering `replaced-by` a group that no longer holds them.
ALTER TABLE "agg_member" ADD COLUMN "home_id" TEXT;
