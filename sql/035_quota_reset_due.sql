-- 035_quota_reset_due.sql — reset every quota whose period has ended, on
-- demand (streamvibe-admin quota reset-due) and monthly through pg_cron
-- when the extension is there.
--
-- The lazy reset (003) already zeroes a user's monthly counters the first
-- time anything touches them after resets_at; rows of users who never
-- come back keep last period's numbers until then, which is what reports
-- and the operator see. This resets exactly the due rows the way the lazy
-- reset would (calendar months in UTC, resets_at moved to the next
-- boundary), so the two never disagree and running it twice, or late,
-- changes nothing more.

-- Returns how many users' quotas were reset.
CREATE FUNCTION public.reset_due_quotas() RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = ''
AS $$
    WITH reset AS (
        UPDATE public.subscription_settings s
           SET current_syncs_count = 0,
               current_ai_count = 0,
               current_indexing_count = 0,
               resets_at = public.sv_next_quota_reset(pg_catalog.now())
         WHERE s.resets_at <= pg_catalog.now()
        RETURNING 1
    )
    SELECT pg_catalog.count(*)::integer FROM reset
$$;
REVOKE ALL ON FUNCTION public.reset_due_quotas() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.reset_due_quotas() TO service_role;

-- Schedules reset_due_quotas() on the first of every month at 00:00 (UTC,
-- pg_cron's clock) as the job 'reset-monthly-quotas', the V2 document's
-- name and schedule. pg_cron runs in one database (cron.database_name)
-- and must be in shared_preload_libraries; when that is this database,
-- the extension is created here if it is not yet. Otherwise nothing is
-- scheduled, and the text says why: quotas then reset lazily, and
-- `streamvibe-admin quota reset-due` run from cron does the rest. Call it
-- again after installing pg_cron. Scheduling again replaces the job.
CREATE FUNCTION public.sv_schedule_quota_reset() RETURNS text
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'pg_cron') THEN
            RETURN 'pg_cron is not installed';
        END IF;
        IF pg_catalog.current_setting('shared_preload_libraries') !~ '(^|[\s,])"?pg_cron"?($|[\s,])' THEN
            RETURN 'pg_cron is installed but not in shared_preload_libraries';
        END IF;
        IF pg_catalog.current_setting('cron.database_name', true) IS DISTINCT FROM pg_catalog.current_database() THEN
            RETURN pg_catalog.format('pg_cron runs in database %s (cron.database_name), not in %s',
                                     pg_catalog.current_setting('cron.database_name', true),
                                     pg_catalog.current_database());
        END IF;
        -- Where a plain CREATE EXTENSION pg_cron would record it; its
        -- objects live in its own schema, cron.
        CREATE EXTENSION pg_cron SCHEMA public;
    END IF;
    PERFORM cron.schedule('reset-monthly-quotas', '0 0 1 * *', 'SELECT public.reset_due_quotas()');
    RETURN 'scheduled';
END
$$;
REVOKE ALL ON FUNCTION public.sv_schedule_quota_reset() FROM PUBLIC;

DO $$
DECLARE
    outcome text := public.sv_schedule_quota_reset();
BEGIN
    RAISE NOTICE 'reset-monthly-quotas: %', outcome;
END
$$;
