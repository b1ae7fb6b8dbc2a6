-- The audit log keeps what each event recorded ("activity": the interaction, caller, resources, query) rather
-- than its whole AuditEvent, which is written from it when the event is read (src/audit/auditEvent.ts): events
-- are written on every request and read rarely, and the 1.6 kB body of a read cost PostgreSQL about 90 µs per
-- event. Rows written before this keep their "body" and are served from it.
ALTER TABLE "audit_event" ALTER COLUMN "body" DROP NOT NULL;
ALTER TABLE "audit_event" ADD COLUMN "activity" JSONB;
ALTER TABLE "audit_event" ADD CONSTRAINT "audit_event_body_or_activity" CHECK ("body" IS NOT NULL OR "activity" IS NOT NULL) NOT VALID;
