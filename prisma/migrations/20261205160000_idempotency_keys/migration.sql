-- Idempotent retries (issue 16 item 3): a write or Bundle sent with an Idempotency-Key header records its
-- response here in the same transaction as the write, so a retry of the same request within the window
-- (IDEMPOTENCY_WINDOW) gets the first response back instead of writing again, also after a crash between
-- the commit and the response. Keys are scoped per API client and endpoint (store); `fingerprint` is a hash
-- of the request, so the same key on a different request is refused rather than replayed.
CREATE TABLE "idempotency_key" (
  "scope" TEXT NOT NULL,
  "key" TEXT NOT NULL,
  "fingerprint" TEXT NOT NULL,
  "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT now(),
  "status" INTEGER,
  "headers" JSONB,
  "body" JSONB,
  PRIMARY KEY ("scope", "key")
);
CREATE INDEX "idempotency_key_created_at_idx" ON "idempotency_key" ("created_at");
