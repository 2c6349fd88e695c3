-- 000_v1_detach.sql — first half of the upgrade path from the V1 draft
-- schema (see "Breaking Changes & Migration" in the Schema V2 document).
--
-- On a fresh database, or any database without public.video_content, this
-- does nothing.
--
-- On a V1 database (public.video_content exists), it moves every V1 object
-- out of the way, untouched, so 001..005 can build the V2 schema as on a
-- fresh database:
--   * all tables, views, sequences, types and functions of schema public
--     (except extension members and the migrator's schema_migrations) go
--     to schema v1_legacy — with their data, indexes, triggers, policies;
--   * schema auth (Supabase/GoTrue's) is renamed v1_auth.
-- 007_v1_import.sql then copies the data into the V2 tables. Both legacy
-- schemas are kept, closed to every API role, for the operator to check
-- and then drop:
--   DROP SCHEMA v1_legacy CASCADE; DROP SCHEMA v1_auth CASCADE;
-- Everything runs in the migration's transaction: a failure anywhere in
-- 000 leaves the V1 database exactly as it was (every later file runs in
-- its own transaction; re-running migrate continues where it stopped).

DO $detach$
DECLARE
    r record;
BEGIN
    IF to_regclass('public.video_content') IS NULL THEN
        RETURN;                                 -- not a V1 database
    END IF;
    IF to_regclass('public.handle_content') IS NOT NULL THEN
        RAISE EXCEPTION 'public.video_content and public.handle_content both exist: this looks like a half-upgraded database'
            USING HINT = 'Rename or drop one of them by hand, then run migrate again.';
    END IF;
    IF to_regnamespace('v1_legacy') IS NOT NULL OR to_regnamespace('v1_auth') IS NOT NULL THEN
        RAISE EXCEPTION 'schema v1_legacy or v1_auth already exists; an earlier V1 upgrade was not cleaned up'
            USING HINT = 'Drop or rename it, then run migrate again.';
    END IF;

    CREATE SCHEMA v1_legacy;

    -- Relations. Sequences owned by a column, indexes and constraints
    -- follow their table.
    FOR r IN
        SELECT c.oid::regclass AS rel, c.relkind
          FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'public'::regnamespace
           AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
           AND c.relname <> 'schema_migrations'
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                            WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                              AND d.deptype IN ('e', 'a', 'i'))
           AND NOT c.relispartition
    LOOP
        EXECUTE format('ALTER %s %s SET SCHEMA v1_legacy',
                       CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                      WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE'
                                      ELSE 'TABLE' END,
                       r.rel);
    END LOOP;

    -- Stand-alone types: enums, domains, ranges, composite types that are
    -- not a table's row type. Array types follow their element type.
    FOR r IN
        SELECT t.oid::regtype AS typ, t.typtype
          FROM pg_catalog.pg_type t
         WHERE t.typnamespace = 'public'::regnamespace
           AND t.typtype IN ('e', 'd', 'r', 'm', 'c')
           AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                            WHERE d.classid = 'pg_catalog.pg_type'::regclass AND d.objid = t.oid
                              AND d.deptype IN ('e', 'i'))
    LOOP
        EXECUTE format('ALTER %s %s SET SCHEMA v1_legacy',
                       CASE r.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, r.typ);
    END LOOP;

    -- Functions and procedures (trigger functions keep working: triggers
    -- reference them by OID).
    FOR r IN
        SELECT p.oid::regprocedure AS fn, p.prokind
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                            WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
                              AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER %s %s SET SCHEMA v1_legacy',
                       CASE r.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
                       r.fn);
    END LOOP;

    IF to_regnamespace('auth') IS NOT NULL THEN
        ALTER SCHEMA auth RENAME TO v1_auth;
    END IF;

    -- Legacy data is for the operator only: take back every privilege
    -- anyone but the owner had on the two schemas (V1 granted the API
    -- roles broadly), which closes everything inside them.
    FOR r IN
        SELECT n.nspname, a.grantee
          FROM pg_catalog.pg_namespace n, LATERAL pg_catalog.aclexplode(n.nspacl) a
         WHERE n.nspname IN ('v1_legacy', 'v1_auth')
           AND a.grantee <> n.nspowner
    LOOP
        EXECUTE format('REVOKE ALL ON SCHEMA %I FROM %s', r.nspname,
                       CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE r.grantee::regrole::text END);
    END LOOP;
    REVOKE ALL ON SCHEMA v1_legacy FROM PUBLIC;

    RAISE WARNING 'V1 schema detected: moved to schema v1_legacy%; 007_v1_import.sql copies the data into V2',
        CASE WHEN to_regnamespace('v1_auth') IS NOT NULL THEN ' (and auth to v1_auth)' ELSE '' END;
END
$detach$;
