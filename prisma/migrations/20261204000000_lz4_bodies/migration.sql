-- Resource bodies over ~2 kB are compressed when stored (TOAST). pglz, the default, cost about 5 % of the
-- database's CPU during bulk loads; lz4 compresses several times faster for a slightly larger result.
-- Builds without lz4 (the embedded WASM build) keep pglz.
DO $$
BEGIN
  ALTER TABLE "resource" ALTER COLUMN "content" SET COMPRESSION lz4;
  ALTER TABLE "resource_history" ALTER COLUMN "content" SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
  RAISE NOTICE 'lz4 is not available: resource bodies stay pglz-compressed';
END $$;
