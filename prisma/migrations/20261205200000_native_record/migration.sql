-- The native record (issue 14): what the web UI writes through GraphQL and what the demographics
-- $process-message updates, in its own tables. Each organisation keeps its own record of a patient (one row
-- per organisation and NHS number); every change is also written, mapped to R4, into that organisation's
-- internal FHIR store (src/native/nativeStore.ts), from which the aggregator reads it like any other source.
CREATE TABLE "native_patient" (
    "id" TEXT NOT NULL,
    "organization_id" TEXT NOT NULL REFERENCES "organization"("id"),
    "nhs_number" TEXT NOT NULL,
    "family" TEXT NOT NULL,
    "given" TEXT[] NOT NULL,
    "birth_date" TEXT,
    "gender" TEXT,
    -- Lines, city, postal code, country: as the web UI and the demographics feed give them.
    "address" JSONB,
    "phone" TEXT,
    "email" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "native_patient_pkey" PRIMARY KEY ("id")
);
-- Matching by NHS number within an organisation is a unique key, so two concurrent creates cannot both win.
CREATE UNIQUE INDEX "native_patient_organization_id_nhs_number_key" ON "native_patient"("organization_id", "nhs_number");

CREATE TABLE "native_team_member" (
    "patient_id" TEXT NOT NULL REFERENCES "native_patient"("id") ON DELETE CASCADE,
    "team_id" TEXT NOT NULL REFERENCES "team"("id"),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "native_team_member_pkey" PRIMARY KEY ("patient_id", "team_id")
);

-- Timeline entries: appointments, clinical notes and measurements. A measurement's value is text so that
-- decimals keep exactly what was written ("7.10" stays "7.10").
CREATE TABLE "native_entry" (
    "id" TEXT NOT NULL,
    "patient_id" TEXT NOT NULL REFERENCES "native_patient"("id") ON DELETE CASCADE,
    "organization_id" TEXT NOT NULL REFERENCES "organization"("id"),
    "kind" TEXT NOT NULL CHECK ("kind" IN ('appointment', 'note', 'measurement')),
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "ends_at" TIMESTAMPTZ(3),
    "title" TEXT,
    "text" TEXT,
    "status" TEXT,
    "code_system" TEXT,
    "code" TEXT,
    "code_display" TEXT,
    "value" TEXT,
    "unit" TEXT,
    "privacy_label" TEXT NOT NULL DEFAULT 'GENERAL_HEALTH',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "native_entry_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "native_entry_patient_id_idx" ON "native_entry"("patient_id", "occurred_at");

CREATE TABLE "native_questionnaire" (
    "id" TEXT NOT NULL,
    "organization_id" TEXT NOT NULL REFERENCES "organization"("id"),
    "title" TEXT NOT NULL,
    -- [{ "linkId", "text", "type" }], type one of string, text, integer, decimal, boolean, date.
    "items" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "native_questionnaire_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "native_questionnaire_answer" (
    "id" TEXT NOT NULL,
    "questionnaire_id" TEXT NOT NULL REFERENCES "native_questionnaire"("id"),
    "patient_id" TEXT NOT NULL REFERENCES "native_patient"("id") ON DELETE CASCADE,
    "organization_id" TEXT NOT NULL REFERENCES "organization"("id"),
    -- [{ "linkId", "value" }], values as text.
    "answers" JSONB NOT NULL,
    "authored_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "native_questionnaire_answer_pkey" PRIMARY KEY ("id")
);

-- Hybrid mail: a letter is sent to the patient's record (and printed and posted when it is not read in time);
-- reading it records the receipt.
CREATE TABLE "native_letter" (
    "id" TEXT NOT NULL,
    "patient_id" TEXT NOT NULL REFERENCES "native_patient"("id") ON DELETE CASCADE,
    "organization_id" TEXT NOT NULL REFERENCES "organization"("id"),
    "subject" TEXT NOT NULL,
    "body" TEXT NOT NULL,
    "sent_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "read_at" TIMESTAMPTZ(3),
    CONSTRAINT "native_letter_pkey" PRIMARY KEY ("id")
);

-- Registration invitations: the mailer's outbox. One per organisation, patient and address, so a retried
-- $process-message never invites twice; "sent_at" is set once the mailer has delivered it.
CREATE TABLE "native_invitation" (
    "id" TEXT NOT NULL,
    "organization_id" TEXT NOT NULL REFERENCES "organization"("id"),
    "patient_id" TEXT NOT NULL REFERENCES "native_patient"("id") ON DELETE CASCADE,
    "email" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "sent_at" TIMESTAMPTZ(3),
    CONSTRAINT "native_invitation_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "native_invitation_patient_id_email_key" ON "native_invitation"("patient_id", "email");
CREATE INDEX "native_invitation_unsent_idx" ON "native_invitation"("created_at") WHERE "sent_at" IS NULL;
