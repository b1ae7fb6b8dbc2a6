-- Failed client authentications at the token endpoints (issue 16 item 6), shared by every server so that a
-- lockout holds on all of them and survives a restart. Counts are bucketed: one row per client id or source
-- address per slice of the window (AUTH_FAILURE_WINDOW_MS / 10), so a key costs at most 11 rows however
-- often it fails, and the statement that records an attempt deletes the slices that left the window: the
-- table holds at most the keys that failed within one window. No foreign key: made-up client ids count too.
CREATE TABLE "auth_failure" (
  "kind" TEXT NOT NULL CHECK ("kind" IN ('client', 'address')),
  "key" TEXT NOT NULL,
  "bucket" TIMESTAMPTZ(3) NOT NULL,
  "failures" INTEGER NOT NULL,
  PRIMARY KEY ("kind", "key", "bucket")
);
CREATE INDEX "auth_failure_bucket_idx" ON "auth_failure" ("bucket");
