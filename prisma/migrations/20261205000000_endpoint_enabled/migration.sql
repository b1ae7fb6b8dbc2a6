-- An endpoint can be disabled (its feed stopped) without deleting it: its FHIR requests are refused while
-- what it already sent stays in the aggregated record. Existing endpoints stay enabled.
ALTER TABLE "endpoint" ADD COLUMN "enabled" BOOLEAN NOT NULL DEFAULT true;
