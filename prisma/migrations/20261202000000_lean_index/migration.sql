-- A leaner write path (bulk loads are bound by what each resource costs to store and index).
--
-- 1. resource_history keeps superseded versions only: the current version lives in `resource` alone, so a
--    create writes its body once. vread and history read both tables (src/store/resourceRepository.ts).
DELETE FROM "resource_history" h USING "resource" r WHERE r.pk = h.resource_pk AND r.version_id = h.version_id;

-- 2. Search index rows carry one bigint `key` for (store, resource type, parameter) instead of three text
--    columns: narrower rows and index entries. The key is the first 64 bits of md5('store|type|param'),
--    computed the same way in src/search/indexKey.ts. Each table keeps the indexes its searches use.
CREATE FUNCTION "search_index_key"(store TEXT, type TEXT, param TEXT) RETURNS BIGINT
  LANGUAGE SQL IMMUTABLE PARALLEL SAFE
  AS $$ SELECT ('x' || substr(md5(store || '|' || type || '|' || param), 1, 16))::bit(64)::bigint $$;

CREATE TABLE "search_string_v2" ("key" BIGINT NOT NULL, "resource_pk" BIGINT NOT NULL, "value" TEXT NOT NULL, "exact" TEXT NOT NULL);
INSERT INTO "search_string_v2" SELECT search_index_key(store, type, param), resource_pk, value, exact FROM "search_string";
DROP TABLE "search_string";
ALTER TABLE "search_string_v2" RENAME TO "search_string";
-- `:exact` matches on the normalised value first, then on `exact`.
CREATE INDEX "search_string_value_idx" ON "search_string" ("key", "value" text_pattern_ops, "resource_pk");
CREATE INDEX "search_string_pk_idx" ON "search_string" ("resource_pk");

CREATE TABLE "search_token_v2" ("key" BIGINT NOT NULL, "resource_pk" BIGINT NOT NULL, "system" TEXT, "code" TEXT, "text" TEXT);
INSERT INTO "search_token_v2" SELECT search_index_key(store, type, param), resource_pk, system, code, text FROM "search_token";
DROP TABLE "search_token";
ALTER TABLE "search_token_v2" RENAME TO "search_token";
-- resource_pk right after code: an equality lookup yields rows in pk order, so a page can stop after 20;
-- system rides along for system|code. `:text` has no index of its own (it scans the parameter's rows).
CREATE INDEX "search_token_code_idx" ON "search_token" ("key", "code", "resource_pk") INCLUDE ("system");
CREATE INDEX "search_token_pk_idx" ON "search_token" ("resource_pk");

CREATE TABLE "search_reference_v2" ("key" BIGINT NOT NULL, "resource_pk" BIGINT NOT NULL, "target_type" TEXT, "target_id" TEXT, "url" TEXT);
INSERT INTO "search_reference_v2" SELECT search_index_key(store, type, param), resource_pk, target_type, target_id, url FROM "search_reference";
DROP TABLE "search_reference";
ALTER TABLE "search_reference_v2" RENAME TO "search_reference";
-- Target first: searches, chains and _revinclude (even of every parameter) all know the target.
CREATE INDEX "search_reference_target_idx" ON "search_reference" ("target_id", "key", "target_type", "resource_pk");
CREATE INDEX "search_reference_url_idx" ON "search_reference" ("key", "url") WHERE "url" IS NOT NULL;
CREATE INDEX "search_reference_pk_idx" ON "search_reference" ("resource_pk");

CREATE TABLE "search_date_v2" ("key" BIGINT NOT NULL, "resource_pk" BIGINT NOT NULL, "low" TIMESTAMPTZ(3) NOT NULL, "high" TIMESTAMPTZ(3) NOT NULL);
INSERT INTO "search_date_v2" SELECT search_index_key(store, type, param), resource_pk, low, high FROM "search_date";
DROP TABLE "search_date";
ALTER TABLE "search_date_v2" RENAME TO "search_date";
CREATE INDEX "search_date_low_idx" ON "search_date" ("key", "low");
CREATE INDEX "search_date_high_idx" ON "search_date" ("key", "high");
CREATE INDEX "search_date_pk_idx" ON "search_date" ("resource_pk");

CREATE TABLE "search_number_v2" ("key" BIGINT NOT NULL, "resource_pk" BIGINT NOT NULL, "value" NUMERIC NOT NULL);
INSERT INTO "search_number_v2" SELECT search_index_key(store, type, param), resource_pk, value FROM "search_number";
DROP TABLE "search_number";
ALTER TABLE "search_number_v2" RENAME TO "search_number";
CREATE INDEX "search_number_value_idx" ON "search_number" ("key", "value");
CREATE INDEX "search_number_pk_idx" ON "search_number" ("resource_pk");

CREATE TABLE "search_quantity_v2" ("key" BIGINT NOT NULL, "resource_pk" BIGINT NOT NULL, "value" NUMERIC NOT NULL, "system" TEXT, "code" TEXT);
INSERT INTO "search_quantity_v2" SELECT search_index_key(store, type, param), resource_pk, value, system, code FROM "search_quantity";
DROP TABLE "search_quantity";
ALTER TABLE "search_quantity_v2" RENAME TO "search_quantity";
CREATE INDEX "search_quantity_value_idx" ON "search_quantity" ("key", "value");
CREATE INDEX "search_quantity_pk_idx" ON "search_quantity" ("resource_pk");

CREATE TABLE "search_uri_v2" ("key" BIGINT NOT NULL, "resource_pk" BIGINT NOT NULL, "value" TEXT NOT NULL);
INSERT INTO "search_uri_v2" SELECT search_index_key(store, type, param), resource_pk, value FROM "search_uri";
DROP TABLE "search_uri";
ALTER TABLE "search_uri_v2" RENAME TO "search_uri";
CREATE INDEX "search_uri_value_idx" ON "search_uri" ("key", "value" text_pattern_ops, "resource_pk");
CREATE INDEX "search_uri_pk_idx" ON "search_uri" ("resource_pk");

CREATE TABLE "search_composite_v2" (
    "key" BIGINT NOT NULL, "resource_pk" BIGINT NOT NULL, "system1" TEXT, "code1" TEXT, "system2" TEXT, "code2" TEXT,
    "number2" NUMERIC, "low2" TIMESTAMPTZ(3), "high2" TIMESTAMPTZ(3)
);
INSERT INTO "search_composite_v2" SELECT search_index_key(store, type, param), resource_pk, system1, code1, system2, code2, number2, low2, high2 FROM "search_composite";
DROP TABLE "search_composite";
ALTER TABLE "search_composite_v2" RENAME TO "search_composite";
CREATE INDEX "search_composite_idx" ON "search_composite" ("key", "code1", "system1");
CREATE INDEX "search_composite_pk_idx" ON "search_composite" ("resource_pk");
