-- Indexes every aggregated resource paid for and no query uses: batches are claimed by lane (and by id
-- within the ready head of the queue, through the primary key), and the access filter reaches agg_access
-- by resource_pk or patient_id.
DROP INDEX "agg_outbox_ready_idx";
DROP INDEX "agg_access_customers_idx";
