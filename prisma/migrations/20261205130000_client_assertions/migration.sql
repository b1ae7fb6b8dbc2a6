-- private_key_jwt client authentication (SMART Backend Services): a client may register the public keys
-- (a JWKS) it signs its client assertions with; each assertion's jti is kept until the assertion expires,
-- so that a replayed assertion is refused (insert-or-refuse on the primary key), then pruned.
ALTER TABLE "api_client" ADD COLUMN "jwks" JSONB;

CREATE TABLE "client_assertion_jti" (
  "client_id" TEXT NOT NULL REFERENCES "api_client"("id"),
  "jti" TEXT NOT NULL,
  "expires_at" TIMESTAMPTZ(3) NOT NULL,
  PRIMARY KEY ("client_id", "jti")
);
CREATE INDEX "client_assertion_jti_expires_at_idx" ON "client_assertion_jti" ("expires_at");
