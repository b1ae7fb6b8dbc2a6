-- The audit log (src/audit/): one row per audited interaction, the IHE BALP AuditEvent in "body". The
-- columns beside it are what admins and patients search by: the aggregated Patients the event concerns
-- (GIN, for `patient_ids @> ARRAY[$1]`), when it was recorded, the client, action, subtype and outcome.
CREATE TABLE "audit_event" (
    "id" TEXT PRIMARY KEY,
    "recorded" TIMESTAMPTZ(3) NOT NULL,
    "patient_ids" TEXT[] NOT NULL DEFAULT '{}',
    "client" TEXT,
    "action" TEXT NOT NULL,
    "subtype" TEXT NOT NULL,
    "outcome" TEXT NOT NULL,
    "body" JSONB NOT NULL
);
CREATE INDEX "audit_event_patient_idx" ON "audit_event" USING GIN ("patient_ids");
CREATE INDEX "audit_event_recorded_idx" ON "audit_event" ("recorded", "id");
