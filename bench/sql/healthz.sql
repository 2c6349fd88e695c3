-- What one GET /healthz costs the database: src/ops/sv_ops.c (sv_ops_healthz)
-- runs this one statement as the login role, outside a transaction.
SELECT max(version) FROM public.schema_migrations;
