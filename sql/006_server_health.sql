-- /healthz reports the newest applied migration, read by the server's own
-- login role before it switches to a request role. Only the version list
-- is exposed: no request role (anon/authenticated) gets to read it.
GRANT SELECT ON public.schema_migrations TO authenticator;
