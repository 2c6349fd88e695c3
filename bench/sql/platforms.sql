-- What one anonymous GET /rest/v1/platforms sends (as captured by bench/run
-- from the PostgreSQL log): role + claims and the query in one pipeline, one
-- implicit transaction, one round trip (src/db/sv_db.c sv_db_query_as_prepared,
-- src/rest/sv_rest.c). bench/run uses this file only with --hand-written.
\startpipeline
SELECT set_config('role', 'anon', true), set_config('request.jwt.claims', '{"role":"anon"}', true), set_config('statement_timeout', '29500', true);
WITH pgrst_source AS (SELECT "platforms".* FROM public."platforms" WHERE true) SELECT NULL::bigint, pg_catalog.count(*), coalesce(pg_catalog.json_agg(_pgrst_s), '[]')::text FROM pgrst_source _pgrst_s;
\endpipeline
