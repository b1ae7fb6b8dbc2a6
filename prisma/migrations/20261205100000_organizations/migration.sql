-- Who (issue 13): a customer has organisations, an organisation has teams and practitioners, practitioners
-- belong to teams, and an API client acts for one organisation, optionally bound to one of its teams or
-- practitioners. Disabling stops tokens; nothing is deleted, so what was done in a name stays traceable.
CREATE TABLE "organization" (
    "id" TEXT NOT NULL,
    "customer_id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    -- The legacy family names the caller's organisation by this (header X-Org-Public-Id), never by its id.
    "public_id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "default_team_id" TEXT,
    "disabled_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "organization_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "organization_public_id_key" ON "organization"("public_id");
CREATE INDEX "organization_customer_id_idx" ON "organization"("customer_id");
ALTER TABLE "organization" ADD CONSTRAINT "organization_customer_id_fkey" FOREIGN KEY ("customer_id") REFERENCES "customer"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

CREATE TABLE "team" (
    "id" TEXT NOT NULL,
    "organization_id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    -- How a message names the team ($process-message team-alias); unique within its organisation.
    "alias" TEXT,
    "disabled_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "team_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "team_organization_id_alias_key" ON "team"("organization_id", "alias");
ALTER TABLE "team" ADD CONSTRAINT "team_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "organization"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "organization" ADD CONSTRAINT "organization_default_team_id_fkey" FOREIGN KEY ("default_team_id") REFERENCES "team"("id") ON DELETE NO ACTION ON UPDATE NO ACTION;

CREATE TABLE "practitioner" (
    "id" TEXT NOT NULL,
    "organization_id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "disabled_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "practitioner_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "practitioner_organization_id_idx" ON "practitioner"("organization_id");
ALTER TABLE "practitioner" ADD CONSTRAINT "practitioner_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "organization"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

CREATE TABLE "team_member" (
    "team_id" TEXT NOT NULL,
    "practitioner_id" TEXT NOT NULL,
    CONSTRAINT "team_member_pkey" PRIMARY KEY ("team_id", "practitioner_id")
);
CREATE INDEX "team_member_practitioner_id_idx" ON "team_member"("practitioner_id");
ALTER TABLE "team_member" ADD CONSTRAINT "team_member_team_id_fkey" FOREIGN KEY ("team_id") REFERENCES "team"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "team_member" ADD CONSTRAINT "team_member_practitioner_id_fkey" FOREIGN KEY ("practitioner_id") REFERENCES "practitioner"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- The organisation a customer's clients act for unless told otherwise.
ALTER TABLE "customer" ADD COLUMN "default_organization_id" TEXT;
ALTER TABLE "customer" ADD CONSTRAINT "customer_default_organization_id_fkey" FOREIGN KEY ("default_organization_id") REFERENCES "organization"("id") ON DELETE NO ACTION ON UPDATE NO ACTION;

ALTER TABLE "api_client" ADD COLUMN "organization_id" TEXT;
ALTER TABLE "api_client" ADD COLUMN "team_id" TEXT;
ALTER TABLE "api_client" ADD COLUMN "practitioner_id" TEXT;
CREATE INDEX "api_client_organization_id_idx" ON "api_client"("organization_id");
ALTER TABLE "api_client" ADD CONSTRAINT "api_client_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "organization"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "api_client" ADD CONSTRAINT "api_client_team_id_fkey" FOREIGN KEY ("team_id") REFERENCES "team"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "api_client" ADD CONSTRAINT "api_client_practitioner_id_fkey" FOREIGN KEY ("practitioner_id") REFERENCES "practitioner"("id") ON DELETE SET NULL ON UPDATE CASCADE;
-- At most one binding: a team's web UI or a practitioner's app, not both.
ALTER TABLE "api_client" ADD CONSTRAINT "api_client_one_binding_check" CHECK ("team_id" IS NULL OR "practitioner_id" IS NULL);

-- Existing customers get the default organisation (named after them) and its default team that new customers
-- get at creation, and their clients act for it, so existing flows keep working.
CREATE TEMPORARY TABLE "backfill" AS
SELECT "id" AS "customer_id", "name",
       'org-' || substr(md5(random()::text || "id"), 1, 16) AS "org_id",
       'team-' || substr(md5(random()::text || "id" || 'team'), 1, 16) AS "team_id"
FROM "customer";
INSERT INTO "organization" ("id", "customer_id", "name") SELECT "org_id", "customer_id", "name" FROM "backfill";
INSERT INTO "team" ("id", "organization_id", "name") SELECT "team_id", "org_id", 'Default team' FROM "backfill";
UPDATE "organization" o SET "default_team_id" = b."team_id" FROM "backfill" b WHERE o."id" = b."org_id";
UPDATE "customer" c SET "default_organization_id" = b."org_id" FROM "backfill" b WHERE c."id" = b."customer_id";
UPDATE "api_client" c SET "organization_id" = b."org_id" FROM "backfill" b WHERE c."customer_id" = b."customer_id";
DROP TABLE "backfill";
