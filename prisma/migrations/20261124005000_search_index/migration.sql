-- Search indexes: one typed table per search-parameter type, rows keyed by the current version's
-- resource.pk and carrying (store, type, param) so every query stays inside one store and one parameter.
-- Written with raw SQL by src/search/indexer.ts inside the resource write's transaction; not modelled in
-- schema.prisma because nothing reads them through the typed client.

CREATE TABLE "search_string" (
    "resource_pk" BIGINT NOT NULL,
    "store" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "param" TEXT NOT NULL,
    "value" TEXT NOT NULL,        -- lower case, accents removed: the default (starts-with) match
    "exact" TEXT NOT NULL         -- as sent: `:exact`
);
CREATE INDEX "search_string_value_idx" ON "search_string" ("store", "type", "param", "value" text_pattern_ops);
CREATE INDEX "search_string_exact_idx" ON "search_string" ("store", "type", "param", "exact", "resource_pk");
CREATE INDEX "search_string_pk_idx" ON "search_string" ("resource_pk");

CREATE TABLE "search_token" (
    "resource_pk" BIGINT NOT NULL,
    "store" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "param" TEXT NOT NULL,
    "system" TEXT,
    "code" TEXT,
    "text" TEXT                   -- display / CodeableConcept.text, lower case: `:text`
);
-- resource_pk last: an equality lookup then yields rows in pk order, so a page can stop after 20.
CREATE INDEX "search_token_code_idx" ON "search_token" ("store", "type", "param", "code", "system", "resource_pk");
CREATE INDEX "search_token_code_pk_idx" ON "search_token" ("store", "type", "param", "code", "resource_pk");
CREATE INDEX "search_token_text_idx" ON "search_token" ("store", "type", "param", "text" text_pattern_ops);
CREATE INDEX "search_token_pk_idx" ON "search_token" ("resource_pk");

CREATE TABLE "search_reference" (
    "resource_pk" BIGINT NOT NULL,
    "store" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "param" TEXT NOT NULL,
    "target_type" TEXT,           -- null for references that are not Type/id (urn:, canonical URLs)
    "target_id" TEXT,
    "url" TEXT                    -- the reference as written when it is not Type/id
);
CREATE INDEX "search_reference_target_idx" ON "search_reference" ("store", "target_type", "target_id", "param", "type", "resource_pk");
CREATE INDEX "search_reference_source_idx" ON "search_reference" ("resource_pk", "param");
CREATE INDEX "search_reference_url_idx" ON "search_reference" ("store", "type", "param", "url");

CREATE TABLE "search_date" (
    "resource_pk" BIGINT NOT NULL,
    "store" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "param" TEXT NOT NULL,
    "low" TIMESTAMPTZ(3) NOT NULL,  -- the value's implicit range at its precision, both ends inclusive
    "high" TIMESTAMPTZ(3) NOT NULL
);
CREATE INDEX "search_date_low_idx" ON "search_date" ("store", "type", "param", "low");
CREATE INDEX "search_date_high_idx" ON "search_date" ("store", "type", "param", "high");
CREATE INDEX "search_date_pk_idx" ON "search_date" ("resource_pk");

CREATE TABLE "search_number" (
    "resource_pk" BIGINT NOT NULL,
    "store" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "param" TEXT NOT NULL,
    "value" NUMERIC NOT NULL
);
CREATE INDEX "search_number_value_idx" ON "search_number" ("store", "type", "param", "value");
CREATE INDEX "search_number_pk_idx" ON "search_number" ("resource_pk");

CREATE TABLE "search_quantity" (
    "resource_pk" BIGINT NOT NULL,
    "store" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "param" TEXT NOT NULL,
    "value" NUMERIC NOT NULL,
    "system" TEXT,
    "code" TEXT                   -- Quantity.code, else Quantity.unit
);
CREATE INDEX "search_quantity_value_idx" ON "search_quantity" ("store", "type", "param", "value");
CREATE INDEX "search_quantity_pk_idx" ON "search_quantity" ("resource_pk");

CREATE TABLE "search_uri" (
    "resource_pk" BIGINT NOT NULL,
    "store" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "param" TEXT NOT NULL,
    "value" TEXT NOT NULL
);
CREATE INDEX "search_uri_value_idx" ON "search_uri" ("store", "type", "param", "value" text_pattern_ops, "resource_pk");
CREATE INDEX "search_uri_pk_idx" ON "search_uri" ("resource_pk");

-- Composite parameters (token + token|quantity|date|string|uri): both components from the same element.
CREATE TABLE "search_composite" (
    "resource_pk" BIGINT NOT NULL,
    "store" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "param" TEXT NOT NULL,
    "system1" TEXT,
    "code1" TEXT,
    "system2" TEXT,
    "code2" TEXT,                 -- token code, quantity code/unit, string (normalised) or uri
    "number2" NUMERIC,
    "low2" TIMESTAMPTZ(3),
    "high2" TIMESTAMPTZ(3)
);
CREATE INDEX "search_composite_idx" ON "search_composite" ("store", "type", "param", "code1", "system1");
CREATE INDEX "search_composite_pk_idx" ON "search_composite" ("resource_pk");

-- Default paging order of a type within a store, and _lastUpdated.
CREATE INDEX "resource_store_type_pk_idx" ON "resource" ("store", "type", "pk") WHERE NOT "deleted";
CREATE INDEX "resource_store_type_last_updated_idx" ON "resource" ("store", "type", "last_updated");
