-- 044_job_suggestion_once.sql — an enhance-ai job stores its suggestion
-- at most once, and only a job that completes keeps one.
--
-- A job's statements may go through the job launcher (doc/jobs.md). When
-- the launcher is killed or stopped after the suggestion's INSERT ran
-- but before its answer reached the job, the job cannot tell whether the
-- row exists. So the store is idempotent (sv_job_store_suggestion: one
-- row per job_id, a repeat returns the stored row's id), and the job
-- sends it once more over its own connection and completes. If that
-- fails too the job fails, and the suggestion of a job that did not
-- complete is removed in the transaction that writes its audit_log row
-- (a trigger): a failed, interrupted or timed-out job (a child killed
-- just after the store, say) never leaves a suggestion behind.
--
-- The two serialise on a transaction-level advisory lock on the job id,
-- and the store refuses a job that has ended: a store the launcher runs
-- late (stopped, then continued after the job ended) adds nothing.

-- One suggestion per job. V2 jobs have always inserted one, but rows
-- imported from V1 (007) may share a job id that means nothing here: all
-- but the first of such a group lose it, so the index can be built.
UPDATE public.ai_content_suggestions s
   SET job_id = NULL
 WHERE s.job_id IS NOT NULL
   AND EXISTS (SELECT 1 FROM public.ai_content_suggestions o
                WHERE o.job_id = s.job_id
                  AND (o.created_at, o.id) < (s.created_at, s.id));
CREATE UNIQUE INDEX ai_content_suggestions_job_id_key ON public.ai_content_suggestions (job_id);

-- The lock a job's suggestion and its end take, so that neither runs
-- between the other's check and write.
CREATE FUNCTION public.sv_job_lock(_job_id uuid) RETURNS void
LANGUAGE sql
SET search_path = ''
AS $$
    SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(_job_id::text, 4012));
$$;

-- Stores the suggestion of ai job _job_id for _content_id of _user_id
-- (_tags a JSON array of strings) and returns its id; when the job has
-- stored one already (the same job sending it again after a lost
-- answer), returns that one's id and changes nothing. Raises (P0001)
-- when the job has ended already: its audit_log row is written, and a
-- suggestion stored now would outlive a job that did not keep one.
CREATE FUNCTION public.sv_job_store_suggestion(_job_id uuid, _content_id uuid, _user_id uuid,
                                               _title text, _description text, _tags jsonb,
                                               _model text, _prompt_version text)
RETURNS uuid
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    sid uuid;
BEGIN
    IF _job_id IS NULL THEN
        RAISE EXCEPTION 'sv_job_store_suggestion: a job id is required' USING ERRCODE = '22023';
    END IF;
    PERFORM public.sv_job_lock(_job_id);
    IF EXISTS (SELECT 1 FROM public.audit_log a WHERE a.job_id = _job_id) THEN
        RAISE EXCEPTION 'sv_job_store_suggestion: job % has ended', _job_id USING ERRCODE = 'P0001';
    END IF;
    -- Under the lock a store of the same job has committed or rolled
    -- back, and this statement's snapshot sees which.
    SELECT s.id INTO sid FROM public.ai_content_suggestions s WHERE s.job_id = _job_id;
    IF FOUND THEN
        RETURN sid;
    END IF;
    INSERT INTO public.ai_content_suggestions (content_id, user_id, suggested_title, suggested_description,
                                               suggested_tags, model, prompt_version, job_id)
    VALUES (_content_id, _user_id, _title, _description,
            ARRAY(SELECT pg_catalog.jsonb_array_elements_text(_tags)), _model, _prompt_version, _job_id)
    RETURNING id INTO sid;
    RETURN sid;
END
$$;

-- A job that did not complete keeps no suggestion: when its audit_log
-- row is written (sv_job_finish, once per job) as failed or interrupted,
-- under the job's lock, its suggestion goes (one its owner already
-- applied part of, in the instant between, stays: the content changed
-- with it). A trigger rather than a new sv_job_finish: whatever writes a
-- job's end, the rule holds.
CREATE FUNCTION public.sv_job_drop_suggestion() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
BEGIN
    PERFORM public.sv_job_lock(NEW.job_id);
    DELETE FROM public.ai_content_suggestions s
     WHERE s.job_id = NEW.job_id AND s.user_id = NEW.user_id
       AND NOT (s.title_applied OR s.description_applied OR s.tags_applied);
    RETURN NULL;
END
$$;
CREATE TRIGGER audit_log_job_drop_suggestion AFTER INSERT ON public.audit_log
    FOR EACH ROW WHEN (NEW.job_type = 'ai_enhancement' AND NEW.job_status <> 'completed')
    EXECUTE FUNCTION public.sv_job_drop_suggestion();

REVOKE ALL ON FUNCTION public.sv_job_lock(uuid), public.sv_job_drop_suggestion(),
    public.sv_job_store_suggestion(uuid, uuid, uuid, text, text, jsonb, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.sv_job_lock(uuid),
    public.sv_job_store_suggestion(uuid, uuid, uuid, text, text, jsonb, text, text) TO service_role;
