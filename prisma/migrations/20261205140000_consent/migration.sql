-- Consent (issue 13 items 2-4). A patient (aggregated Patient id) grants privacy labels to one grantee, a team
-- (`CareTeam/team-…`) or a practitioner (`Practitioner/prac-…`). One row per patient and grantee, served as
-- the R4 Consent resource `resource_id` of the aggregated store; revoking every label sets it inactive, it is
-- never deleted. The access filter reads this table on every request (no cache), so a change counts at once.
CREATE TABLE "consent" (
    "resource_id" TEXT PRIMARY KEY,
    "patient_id" TEXT NOT NULL,
    "grantee" TEXT NOT NULL CHECK ("grantee" ~ '^(CareTeam|Practitioner)/[A-Za-z0-9.-]{1,64}$'),
    "labels" TEXT[] NOT NULL DEFAULT '{}'
        CHECK ("labels" <@ ARRAY['GENERAL_HEALTH', 'MENTAL_HEALTH', 'SEXUAL_HEALTH', 'SOCIAL_CARE']::text[]),
    "status" TEXT NOT NULL CHECK ("status" IN ('active', 'inactive')),
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT clock_timestamp(),
    UNIQUE ("patient_id", "grantee")
);
CREATE INDEX "consent_grantee_idx" ON "consent" ("grantee", "patient_id") WHERE "status" = 'active';

-- The first cut's grants went to a customer or an aggregated Organization, which the new model has no
-- place for (grants go to teams and practitioners): they are dropped rather than guessed at.
DROP TABLE "agg_grant";

-- Consent resources live in the aggregated store; their access rows name the grantee, so the predicate can
-- show them to the patient and the grantee only.
ALTER TABLE "agg_access" DROP CONSTRAINT "agg_access_kind_check";
ALTER TABLE "agg_access" ADD CONSTRAINT "agg_access_kind_check" CHECK ("kind" IN ('copied', 'patient', 'shared', 'consent'));
ALTER TABLE "agg_access" ADD COLUMN "grantee" TEXT;

-- A patient's own settings: frozen → their self access stops until they unfreeze it.
CREATE TABLE "patient_access" (
    "patient_id" TEXT PRIMARY KEY,
    "frozen" BOOLEAN NOT NULL DEFAULT false,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT clock_timestamp()
);

-- Break-the-glass: every emergency access asserted, for the patient to list afterwards.
CREATE TABLE "break_glass" (
    "id" TEXT PRIMARY KEY,
    "patient_id" TEXT NOT NULL,
    "client_id" TEXT NOT NULL,
    "customer_id" TEXT NOT NULL,
    "organization_id" TEXT,
    "team_id" TEXT,
    "practitioner_id" TEXT,
    "reason" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT clock_timestamp(),
    "until" TIMESTAMPTZ(3) NOT NULL
);
CREATE INDEX "break_glass_patient_idx" ON "break_glass" ("patient_id", "created_at");
