-- A token's code belongs to its parameter: `key` and `code` are strongly correlated, and estimated as if
-- independent the planner thinks a common code (LOINC 8302-2 among a store's Observations) matches a few
-- dozen rows, sorts them all instead of reading the (key, code, resource_pk) index in order and stopping
-- after one page — 70 ms instead of 1 ms at 500 patients. Multivariate statistics give it the real counts.
CREATE STATISTICS "search_token_key_code_stats" (dependencies, mcv) ON "key", "code" FROM "search_token";
CREATE STATISTICS "search_composite_key_code_stats" (dependencies, mcv) ON "key", "code1" FROM "search_composite";
