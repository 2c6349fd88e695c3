-- Exactly what one anonymous GET /rest/v1/platforms sends: role + claims
-- and the query in one pipeline, one implicit transaction, one round trip
-- (src/sv_db.c sv_db_query_as, src/sv_rest.c).
\startpipeline
SELECT set_config('role', 'anon', true), set_config('request.jwt.claims', '{"role":"anon"}', true);
SELECT coalesce(json_agg(t), '[]')::text, count(*) FROM (SELECT * FROM public.platforms ORDER BY name) t;
\endpipeline
