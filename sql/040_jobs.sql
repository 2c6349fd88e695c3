-- 040_jobs.sql — accepting and finishing jobs (sync, ai, seo).
--
-- There is no job table. A job is accepted by reserving its quota: the
-- quota_usage_history row of that spend carries the job id, so "accepted"
-- is visible from every host. It ends with exactly one audit_log row
-- (job_id is UNIQUE). So, from any host sharing the database:
--   running  = a spend with the job id and no audit_log row for it;
--   finished = the audit_log row (completed, failed, interrupted).
-- The process that does the work is streamvibe-job; its spool descriptor
-- on the host that runs it serves crash recovery only.

-- The quota each kind of job spends.
CREATE FUNCTION public.sv_job_quota_type(_job_type public.job_type) RETURNS public.quota_type
LANGUAGE sql IMMUTABLE
SET search_path = ''
AS $$
    SELECT CASE _job_type
             WHEN 'platform_sync' THEN 'syncs'
             WHEN 'ai_enhancement' THEN 'ai'
             WHEN 'seo_submission' THEN 'indexing'
           END::public.quota_type;
$$;

-- The jobs of _user_id accepted since _since and not finished. A job runs
-- under a wall-clock limit of minutes, so callers bound _since to keep
-- the scan to a few rows.
CREATE FUNCTION public.sv_job_running_ids(_user_id uuid, _since timestamptz)
RETURNS TABLE (job_id uuid, quota_type public.quota_type, amount integer, accepted_at timestamptz)
LANGUAGE sql STABLE
SET search_path = ''
AS $$
    SELECT h.job_id, h.quota_type, h.amount, h.created_at
      FROM public.quota_usage_history h
     WHERE h.user_id = _user_id
       AND h.created_at >= _since
       AND h.job_id IS NOT NULL
       AND h.amount > 0
       AND h.reason LIKE 'job:%'
       AND NOT EXISTS (SELECT 1 FROM public.audit_log a WHERE a.job_id = h.job_id);
$$;

-- Accepts a job for _user_id, atomically: the targets must be the user's
-- (sync: a handle; ai: one live content row; seo: content rows that are
-- live, public and on a public, active handle), the user may not have
-- _max_running jobs running already, a handle may not be syncing already,
-- and the quota must cover the job (one sync or one ai; one indexing per
-- URL). On success the quota is spent with the job id (which makes the job
-- "running" for every host) and a sync marks its handle syncing.
--
-- Concurrent accepts of one user serialise on the user's subscription row,
-- so the running cap and the quota hold exactly under any concurrency.
--
-- Returns {"status":"accepted"} or a refusal the caller maps to HTTP:
--   {"status":"not_found"}                              404
--   {"status":"not_public","ids":[…]}                    422
--   {"status":"busy","running":n,"limit":m}              429
--   {"status":"already_syncing"}                         409
--   {"status":"over_quota","quota":…,"limit":…,"used":…,"resets_at":…}  429
-- A sync handle marked syncing longer than _stale_after_s (a host that
-- vanished before its spool was reconciled) counts as not syncing.
CREATE FUNCTION public.sv_job_accept(_job_id uuid, _user_id uuid, _job_type public.job_type,
                                     _targets uuid[], _max_running integer, _stale_after_s integer)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    qt public.quota_type := public.sv_job_quota_type(_job_type);
    s public.subscription_settings%ROWTYPE;
    n integer;
    bad uuid[];
    amount integer := 1;
BEGIN
    IF _job_id IS NULL OR _user_id IS NULL OR qt IS NULL OR _targets IS NULL
       OR pg_catalog.cardinality(_targets) = 0 THEN
        RAISE EXCEPTION 'sv_job_accept: job id, user, a job type with a quota and targets are required'
            USING ERRCODE = '22023';
    END IF;

    PERFORM public.sv_quota_reset_if_due(_user_id);
    SELECT * INTO s FROM public.subscription_settings WHERE user_id = _user_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN pg_catalog.jsonb_build_object('status', 'not_found');
    END IF;

    IF _job_type = 'platform_sync' THEN
        IF pg_catalog.cardinality(_targets) <> 1 OR NOT EXISTS (
               SELECT 1 FROM public.account_handles h
                WHERE h.id = _targets[1] AND h.user_id = _user_id) THEN
            RETURN pg_catalog.jsonb_build_object('status', 'not_found');
        END IF;
    ELSE
        SELECT pg_catalog.array_agg(t) INTO bad
          FROM pg_catalog.unnest(_targets) t
         WHERE NOT EXISTS (SELECT 1 FROM public.handle_content c
                            WHERE c.id = t AND c.user_id = _user_id AND c.deleted_at IS NULL);
        IF bad IS NOT NULL OR (_job_type = 'ai_enhancement' AND pg_catalog.cardinality(_targets) <> 1) THEN
            RETURN pg_catalog.jsonb_build_object('status', 'not_found');
        END IF;
    END IF;
    IF _job_type = 'seo_submission' THEN
        SELECT pg_catalog.array_agg(DISTINCT c.id) INTO bad
          FROM public.handle_content c
          JOIN public.account_handles h ON h.id = c.handle_id
         WHERE c.id = ANY (_targets)
           AND NOT (c.visibility = 'public' AND h.visibility = 'public' AND h.active_status = 'active');
        IF bad IS NOT NULL THEN
            RETURN pg_catalog.jsonb_build_object('status', 'not_public', 'ids', pg_catalog.to_jsonb(bad));
        END IF;
        SELECT count(DISTINCT t)::integer INTO amount FROM pg_catalog.unnest(_targets) t;
    END IF;

    SELECT count(*)::integer INTO n
      FROM public.sv_job_running_ids(_user_id, pg_catalog.now() - interval '1 day');
    IF n >= _max_running THEN
        RETURN pg_catalog.jsonb_build_object('status', 'busy', 'running', n, 'limit', _max_running);
    END IF;

    IF _job_type = 'platform_sync' AND EXISTS (
           SELECT 1 FROM public.account_handles h
            WHERE h.id = _targets[1] AND h.sync_status = 'syncing'
              AND h.updated_at >= pg_catalog.now() - pg_catalog.make_interval(secs => _stale_after_s)) THEN
        RETURN pg_catalog.jsonb_build_object('status', 'already_syncing');
    END IF;

    IF NOT public.sv_quota_spend(_user_id, qt, amount, 'job:' || _job_type::text, _job_id) THEN
        RETURN pg_catalog.jsonb_build_object(
            'status', 'over_quota',
            'quota', qt,
            'amount', amount,
            'used', CASE qt WHEN 'syncs' THEN s.current_syncs_count
                            WHEN 'ai' THEN s.current_ai_count
                            ELSE s.current_indexing_count END,
            'limit', CASE qt WHEN 'syncs' THEN s.max_syncs_per_month
                             WHEN 'ai' THEN s.max_ai_per_month
                             ELSE s.max_indexing_per_month END,
            'resets_at', s.resets_at);
    END IF;
    IF _job_type = 'platform_sync' THEN
        UPDATE public.account_handles h SET sync_status = 'syncing' WHERE h.id = _targets[1];
    END IF;
    RETURN pg_catalog.jsonb_build_object('status', 'accepted', 'amount', amount);
END
$$;

-- Ends an accepted job: writes its one audit_log row and, only when this
-- call wrote it, refunds the quota of a job that did not complete and settles a
-- sync's handle. Whoever comes second (the supervisor and the spool
-- reconciler can race) changes nothing and gets false. Wakes the
-- requests waiting on the job (NOTIFY sv_job_done, the job id).
CREATE FUNCTION public.sv_job_finish(_job_id uuid, _user_id uuid, _job_type public.job_type,
                                     _status public.job_status, _payload jsonb, _result jsonb,
                                     _error text, _started_at timestamptz, _completed_at timestamptz)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    qt public.quota_type := public.sv_job_quota_type(_job_type);
    written bigint;
    spent integer;
    resource uuid;
BEGIN
    -- A job exists once its quota was spent (sv_job_accept). A descriptor
    -- without a spend is a reservation whose accept never happened (the
    -- worker died in between): there is no job to end.
    IF NOT EXISTS (SELECT 1 FROM public.quota_usage_history h
                    WHERE h.job_id = _job_id AND h.user_id = _user_id AND h.amount > 0) THEN
        RETURN false;
    END IF;
    -- What the job was about, as the V2 document's functions log it.
    BEGIN
        resource := coalesce(_payload ->> 'handleId', _payload ->> 'contentId')::uuid;
    EXCEPTION WHEN invalid_text_representation THEN
        resource := NULL;
    END;
    INSERT INTO public.audit_log (user_id, action, resource_type, resource_id, details,
                                  job_id, job_type, job_status, job_payload, job_result, job_error,
                                  job_started_at, job_completed_at)
    VALUES (_user_id, _job_type::text,
            CASE _job_type WHEN 'platform_sync' THEN 'account_handle' ELSE 'handle_content' END,
            resource, '{}'::jsonb,
            _job_id, _job_type, _status, _payload, _result, _error, _started_at, _completed_at)
    ON CONFLICT (job_id) DO NOTHING
    RETURNING id INTO written;
    IF written IS NULL THEN
        RETURN false;
    END IF;

    IF _status <> 'completed' AND qt IS NOT NULL THEN
        SELECT coalesce(sum(h.amount), 0)::integer INTO spent
          FROM public.quota_usage_history h
         WHERE h.job_id = _job_id AND h.user_id = _user_id AND h.amount > 0;
        IF spent > 0 THEN
            PERFORM public.sv_quota_refund(_user_id, qt, spent, 'job ' || _status::text, _job_id);
        END IF;
    END IF;

    IF _job_type = 'platform_sync' THEN
        UPDATE public.account_handles h
           SET sync_status = CASE WHEN _status = 'completed' THEN 'ok' ELSE 'failed' END,
               last_synced_at = CASE WHEN _status = 'completed' THEN _completed_at ELSE h.last_synced_at END
         WHERE h.id = resource AND h.user_id = _user_id;
    END IF;

    PERFORM pg_catalog.pg_notify('sv_job_done', _job_id::text);
    RETURN true;
END
$$;

-- A job as its owner sees it: finished from its audit_log row, running
-- from its spend; NULL when there is no such job of _user_id (NULL
-- _user_id: the service role, any job).
CREATE FUNCTION public.sv_job_status(_job_id uuid, _user_id uuid) RETURNS jsonb
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = ''
AS $$
    SELECT coalesce(
        (SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                    'job_id', a.job_id, 'type', a.job_type,
                    'status', a.job_status, 'started_at', a.job_started_at,
                    'completed_at', a.job_completed_at, 'duration_ms', a.job_duration_ms,
                    'result', a.job_result, 'error', a.job_error))
           FROM public.audit_log a
          WHERE a.job_id = _job_id AND (_user_id IS NULL OR a.user_id = _user_id)),
        (SELECT pg_catalog.jsonb_build_object(
                    'job_id', h.job_id,
                    'type', CASE h.quota_type WHEN 'syncs' THEN 'platform_sync'
                                              WHEN 'ai' THEN 'ai_enhancement'
                                              ELSE 'seo_submission' END,
                    'status', 'running', 'started_at', h.created_at)
           FROM public.quota_usage_history h
          WHERE h.job_id = _job_id AND h.amount > 0 AND h.reason LIKE 'job:%'
            AND (_user_id IS NULL OR h.user_id = _user_id)
          ORDER BY h.id
          LIMIT 1));
$$;

-- The running jobs of _user_id, newest first, as a JSON array of the
-- sv_job_status shape.
CREATE FUNCTION public.sv_job_list_running(_user_id uuid) RETURNS jsonb
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = ''
AS $$
    SELECT coalesce(pg_catalog.jsonb_agg(public.sv_job_status(r.job_id, _user_id)
                                         ORDER BY r.accepted_at DESC), '[]'::jsonb)
      FROM public.sv_job_running_ids(_user_id, pg_catalog.now() - interval '1 day') r;
$$;

REVOKE ALL ON FUNCTION public.sv_job_quota_type(public.job_type),
    public.sv_job_running_ids(uuid, timestamptz),
    public.sv_job_accept(uuid, uuid, public.job_type, uuid[], integer, integer),
    public.sv_job_finish(uuid, uuid, public.job_type, public.job_status, jsonb, jsonb, text,
                         timestamptz, timestamptz),
    public.sv_job_status(uuid, uuid),
    public.sv_job_list_running(uuid)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    public.sv_job_accept(uuid, uuid, public.job_type, uuid[], integer, integer),
    public.sv_job_finish(uuid, uuid, public.job_type, public.job_status, jsonb, jsonb, text,
                         timestamptz, timestamptz),
    public.sv_job_status(uuid, uuid),
    public.sv_job_list_running(uuid)
    TO service_role;

-- Applies the chosen fields ('title', 'description', 'tags') of an AI
-- suggestion to its content, as the caller: row-level security decides,
-- so a user reaches only their own suggestions. The content's edit
-- history records the change as made by 'ai'. The service role names the
-- user it acts for in _for_user. Returns {"suggestion_id","content_id",
-- "applied":[…],"status":"applied"|"partly_applied"}, or NULL when there
-- is no such suggestion of the caller's (or its content is gone).
CREATE FUNCTION public.apply_ai_suggestion(_suggestion_id uuid, _fields text[],
                                           _for_user uuid DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    s public.ai_content_suggestions%ROWTYPE;
    fully boolean;
    f text;
BEGIN
    IF _fields IS NULL OR pg_catalog.cardinality(_fields) = 0
       OR NOT (_fields <@ ARRAY['title', 'description', 'tags']) THEN
        RAISE EXCEPTION 'fields must be a non-empty list of title, description, tags'
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO s FROM public.ai_content_suggestions WHERE id = _suggestion_id FOR UPDATE;
    IF NOT FOUND OR (auth.role() = 'service_role' AND s.user_id IS DISTINCT FROM _for_user) THEN
        RETURN NULL;
    END IF;
    FOREACH f IN ARRAY _fields LOOP
        IF (f = 'title' AND s.suggested_title IS NULL)
           OR (f = 'description' AND s.suggested_description IS NULL)
           OR (f = 'tags' AND s.suggested_tags IS NULL) THEN
            RAISE EXCEPTION 'the suggestion has no %', f USING ERRCODE = '22023';
        END IF;
    END LOOP;

    PERFORM pg_catalog.set_config('streamvibe.changed_by', 'ai', true);
    UPDATE public.handle_content c
       SET title = CASE WHEN 'title' = ANY (_fields) THEN s.suggested_title ELSE c.title END,
           description = CASE WHEN 'description' = ANY (_fields) THEN s.suggested_description
                              ELSE c.description END,
           tags = CASE WHEN 'tags' = ANY (_fields) THEN s.suggested_tags ELSE c.tags END
     WHERE c.id = s.content_id AND c.deleted_at IS NULL;
    IF NOT FOUND THEN
        PERFORM pg_catalog.set_config('streamvibe.changed_by', '', true);
        RETURN NULL;
    END IF;
    UPDATE public.ai_content_suggestions x
       SET title_applied = x.title_applied OR 'title' = ANY (_fields),
           description_applied = x.description_applied OR 'description' = ANY (_fields),
           tags_applied = x.tags_applied OR 'tags' = ANY (_fields)
     WHERE x.id = s.id
    RETURNING x.fully_applied INTO fully;
    PERFORM pg_catalog.set_config('streamvibe.changed_by', '', true);
    RETURN pg_catalog.jsonb_build_object(
        'suggestion_id', s.id, 'content_id', s.content_id,
        'applied', pg_catalog.to_jsonb(_fields),
        'status', CASE WHEN fully THEN 'applied' ELSE 'partly_applied' END);
END
$$;
REVOKE ALL ON FUNCTION public.apply_ai_suggestion(uuid, text[], uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.apply_ai_suggestion(uuid, text[], uuid) TO authenticated, service_role;
