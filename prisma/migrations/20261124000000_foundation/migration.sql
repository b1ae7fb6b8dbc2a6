-- Tenancy: customers own endpoints (one per inbound feed) and API clients.
CREATE TABLE "customer" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "customer_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "endpoint" (
    "id" TEXT NOT NULL,
    "customer_id" TEXT NOT NULL,
    "fhir_version" TEXT NOT NULL,
    "name" TEXT,
    "default_source_org" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "endpoint_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "endpoint_fhir_version_check" CHECK ("fhir_version" IN ('R4', 'STU3'))
);
CREATE INDEX "endpoint_customer_id_idx" ON "endpoint"("customer_id");
ALTER TABLE "endpoint" ADD CONSTRAINT "endpoint_customer_id_fkey" FOREIGN KEY ("customer_id") REFERENCES "customer"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

CREATE TABLE "api_client" (
    "id" TEXT NOT NULL,
    "customer_id" TEXT,
    "family" TEXT NOT NULL,
    "secret_hash" TEXT NOT NULL,
    "scopes" TEXT NOT NULL DEFAULT '',
    "name" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revoked_at" TIMESTAMPTZ(3),
    CONSTRAINT "api_client_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "api_client_customer_id_idx" ON "api_client"("customer_id");
ALTER TABLE "api_client" ADD CONSTRAINT "api_client_customer_id_fkey" FOREIGN KEY ("customer_id") REFERENCES "customer"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- The resource store: current versions, keyed by (store, type, id); store is an endpoint id or 'aggregated'.
CREATE TABLE "resource" (
    "pk" BIGSERIAL NOT NULL,
    "store" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "id" TEXT NOT NULL,
    "version_id" INTEGER NOT NULL,
    "last_updated" TIMESTAMPTZ(3) NOT NULL,
    "deleted" BOOLEAN NOT NULL DEFAULT false,
    "content" JSONB,
    CONSTRAINT "resource_pkey" PRIMARY KEY ("pk")
);
CREATE UNIQUE INDEX "resource_store_type_id_key" ON "resource"("store", "type", "id");
CREATE INDEX "resource_store_last_updated_idx" ON "resource"("store", "last_updated");

-- All versions, the current one included; a delete is a version without content.
CREATE TABLE "resource_history" (
    "resource_pk" BIGINT NOT NULL,
    "version_id" INTEGER NOT NULL,
    "store" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "id" TEXT NOT NULL,
    "last_updated" TIMESTAMPTZ(3) NOT NULL,
    "deleted" BOOLEAN NOT NULL DEFAULT false,
    "content" JSONB,
    CONSTRAINT "resource_history_pkey" PRIMARY KEY ("resource_pk", "version_id")
);
CREATE INDEX "resource_history_store_type_last_updated_idx" ON "resource_history"("store", "type", "last_updated");
CREATE INDEX "resource_history_store_last_updated_idx" ON "resource_history"("store", "last_updated");
