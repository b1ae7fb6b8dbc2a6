-- Bulk Data export jobs (issue 19 item 5): their state lives here so that any server process can answer a
-- status poll; the export itself runs in the process that took the kick-off.
CREATE TABLE "bulk_export_job" (
    "id" TEXT PRIMARY KEY,
    "client_id" TEXT NOT NULL,
    "request" TEXT NOT NULL,
    "status" TEXT NOT NULL CHECK ("status" IN ('in-progress', 'completed', 'failed', 'cancelled')),
    "transaction_time" TIMESTAMPTZ(3) NOT NULL,
    "progress" TEXT,
    "output" JSONB NOT NULL DEFAULT '[]',
    "error" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT clock_timestamp(),
    "expires_at" TIMESTAMPTZ(3) NOT NULL
);
CREATE INDEX "bulk_export_job_expires_idx" ON "bulk_export_job" ("expires_at");
