-- The aggregator (DESIGN §3): an outbox written in the same transaction as each customer write, the state of
-- every upstream resource the aggregator has seen, the identity keys and groups of merged types, and what
-- the access filter needs per aggregated resource. Raw-SQL tables (src/aggregator), not in schema.prisma.

CREATE TABLE "agg_outbox" (
    "id" BIGSERIAL PRIMARY KEY,
    "store" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "res_id" TEXT NOT NULL,
    "enqueued_at" TIMESTAMPTZ(3) NOT NULL DEFAULT clock_timestamp(),
    "available_at" TIMESTAMPTZ(3) NOT NULL DEFAULT clock_timestamp(),
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,
    "parked" BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX "agg_outbox_ready_idx" ON "agg_outbox" ("available_at", "id") WHERE NOT "parked";

-- One row per upstream resource: included (with its aggregated id and its R4 form) or excluded (with why).
CREATE TABLE "agg_member" (
    "store" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "res_id" TEXT NOT NULL,
    "status" TEXT NOT NULL CHECK ("status" IN ('included', 'excluded')),
    "reason" TEXT,
    "expression" TEXT,
    "agg_id" TEXT,
    "content" JSONB,
    "upstream_updated" TIMESTAMPTZ(3),
    "joined_at" TIMESTAMPTZ(3) NOT NULL DEFAULT clock_timestamp(),
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY ("store", "type", "res_id")
);
CREATE INDEX "agg_member_group_idx" ON "agg_member" ("type", "agg_id");

-- Identity keys of included members of merged types (identifier system|value, coding system|code, …).
CREATE TABLE "agg_key" (
    "type" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "store" TEXT NOT NULL,
    "res_id" TEXT NOT NULL,
    "agg_id" TEXT NOT NULL,
    PRIMARY KEY ("type", "key", "store", "res_id")
);
CREATE INDEX "agg_key_member_idx" ON "agg_key" ("store", "type", "res_id");

CREATE TABLE "agg_group" (
    "type" TEXT NOT NULL,
    "agg_id" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT clock_timestamp(),
    "replaced_by" TEXT,
    PRIMARY KEY ("type", "agg_id")
);

-- What the access filter needs per aggregated resource row (resource.pk in store 'aggregated').
CREATE TABLE "agg_access" (
    "resource_pk" BIGINT PRIMARY KEY,
    "kind" TEXT NOT NULL CHECK ("kind" IN ('copied', 'patient', 'shared')),
    "patient_id" TEXT,
    "source_org" TEXT,
    "source_customers" TEXT[] NOT NULL DEFAULT '{}',
    "label" TEXT
);
CREATE INDEX "agg_access_patient_idx" ON "agg_access" ("patient_id");
CREATE INDEX "agg_access_customers_idx" ON "agg_access" USING GIN ("source_customers");

-- Consent: a patient (aggregated Patient id) grants a privacy label to an organisation (aggregated
-- Organization id) or a customer.
CREATE TABLE "agg_grant" (
    "patient_id" TEXT NOT NULL,
    "grantee" TEXT NOT NULL,
    "label" TEXT NOT NULL CHECK ("label" IN ('GENERAL_HEALTH', 'MENTAL_HEALTH', 'SEXUAL_HEALTH', 'SOCIAL_CARE')),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY ("patient_id", "grantee", "label")
);
CREATE INDEX "agg_grant_grantee_idx" ON "agg_grant" ("grantee");
