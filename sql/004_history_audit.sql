-- 004_history_audit.sql — content edit history (trigger-maintained),
-- audit_log with the job columns, and account deletion.

-- ---------------------------------------------------------------------
-- content_edit_history
--
-- One row per changed tracked field per UPDATE of handle_content. Who made
-- the change is read from the transaction-local setting
--   SELECT set_config('streamvibe.changed_by', 'sync', true);
--   -- or: SET LOCAL streamvibe.changed_by = 'ai';
-- unset or empty means 'user'; anything else but 'user'/'ai'/'sync' is an
-- error (a typo must not silently attribute changes to the user).
-- Content is only soft-deleted, so its history stays; a hard delete (only
-- by account deletion) removes it with the content.
-- ---------------------------------------------------------------------
CREATE TABLE public.content_edit_history (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    content_id  uuid NOT NULL REFERENCES public.handle_content (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    field_name  text NOT NULL,
    old_value   text,
    new_value   text,
    changed_by  text NOT NULL DEFAULT 'user' CHECK (changed_by IN ('user', 'ai', 'sync')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX content_edit_history_content_idx ON public.content_edit_history (content_id, created_at DESC);
CREATE INDEX content_edit_history_user_idx ON public.content_edit_history (user_id, created_at DESC);

-- SECURITY DEFINER because clients may not write history themselves.
CREATE FUNCTION public.sv_record_content_edits() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    who text := coalesce(NULLIF(pg_catalog.current_setting('streamvibe.changed_by', true), ''), 'user');
BEGIN
    IF who NOT IN ('user', 'ai', 'sync') THEN
        RAISE EXCEPTION 'invalid streamvibe.changed_by "%"', who
            USING ERRCODE = '22023',
                  HINT = 'Set it to user, ai or sync (SET LOCAL streamvibe.changed_by = ''sync'').';
    END IF;

    -- Tags are recorded as JSON arrays so clients can parse them back.
    INSERT INTO public.content_edit_history (content_id, user_id, field_name, old_value, new_value, changed_by)
    SELECT NEW.id, NEW.user_id, f.field_name, f.old_value, f.new_value, who
      FROM (VALUES
            ('title',         OLD.title IS DISTINCT FROM NEW.title,
                              OLD.title, NEW.title),
            ('description',   OLD.description IS DISTINCT FROM NEW.description,
                              OLD.description, NEW.description),
            ('tags',          OLD.tags IS DISTINCT FROM NEW.tags,
                              pg_catalog.to_jsonb(OLD.tags)::text, pg_catalog.to_jsonb(NEW.tags)::text),
            ('thumbnail_url', OLD.thumbnail_url IS DISTINCT FROM NEW.thumbnail_url,
                              OLD.thumbnail_url, NEW.thumbnail_url),
            ('content_url',   OLD.content_url IS DISTINCT FROM NEW.content_url,
                              OLD.content_url, NEW.content_url),
            ('visibility',    OLD.visibility IS DISTINCT FROM NEW.visibility,
                              OLD.visibility::text, NEW.visibility::text),
            ('content_type',  OLD.content_type IS DISTINCT FROM NEW.content_type,
                              OLD.content_type, NEW.content_type),
            ('published_at',  OLD.published_at IS DISTINCT FROM NEW.published_at,
                              OLD.published_at::text, NEW.published_at::text)
           ) AS f(field_name, changed, old_value, new_value)
     WHERE f.changed;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION public.sv_record_content_edits() FROM PUBLIC;
CREATE TRIGGER handle_content_record_edits
    AFTER UPDATE ON public.handle_content
    FOR EACH ROW
    EXECUTE FUNCTION public.sv_record_content_edits();

-- ---------------------------------------------------------------------
-- audit_log
--
-- General audit trail plus the V2 job record: a job writes exactly one row
-- when it ends (job_id is UNIQUE, so a second writer for the same job gets
-- a unique violation instead of a duplicate). Written by service_role
-- only; users read their own rows.
-- ---------------------------------------------------------------------
CREATE TABLE public.audit_log (
    id                bigserial PRIMARY KEY,
    user_id           uuid REFERENCES auth.users (id) ON DELETE SET NULL,
    action            text,
    resource_type     text,
    resource_id       uuid,
    details           jsonb NOT NULL DEFAULT '{}'::jsonb,
    ip_address        inet,
    user_agent        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    job_id            uuid UNIQUE,
    job_type          public.job_type,
    job_status        public.job_status,
    job_payload       jsonb,
    job_result        jsonb,
    job_error         text,
    job_started_at    timestamptz,
    job_completed_at  timestamptz,
    job_duration_ms   integer CHECK (job_duration_ms >= 0),
    -- The V2 document's failure path inserts no action; a row must still
    -- say what it is about.
    CONSTRAINT audit_log_action_or_job CHECK (action IS NOT NULL OR job_type IS NOT NULL),
    CONSTRAINT audit_log_job_type_status CHECK ((job_type IS NULL) = (job_status IS NULL)),
    CONSTRAINT audit_log_job_id_has_job CHECK (job_id IS NULL OR job_type IS NOT NULL),
    CONSTRAINT audit_log_job_times CHECK (job_completed_at IS NULL OR job_started_at IS NULL
                                          OR job_completed_at >= job_started_at)
);
CREATE INDEX idx_audit_log_job_type ON public.audit_log (job_type, job_status) WHERE job_type IS NOT NULL;
CREATE INDEX audit_log_user_created_idx ON public.audit_log (user_id, created_at DESC);
CREATE INDEX audit_log_resource_idx ON public.audit_log (resource_type, resource_id);

-- Fill job_duration_ms when the writer gave start and end but no duration
-- (the V2 document's inserts do exactly that).
CREATE FUNCTION public.sv_audit_log_job_duration() RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    IF NEW.job_duration_ms IS NULL AND NEW.job_started_at IS NOT NULL AND NEW.job_completed_at IS NOT NULL THEN
        NEW.job_duration_ms := greatest(0, pg_catalog.round(
            EXTRACT(epoch FROM (NEW.job_completed_at - NEW.job_started_at)) * 1000)::integer);
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.sv_audit_log_job_duration() FROM PUBLIC;
CREATE TRIGGER audit_log_job_duration BEFORE INSERT OR UPDATE ON public.audit_log
    FOR EACH ROW EXECUTE FUNCTION public.sv_audit_log_job_duration();

-- ---------------------------------------------------------------------
-- Account deletion.
--
-- handle_content is protected by ON DELETE RESTRICT and the
-- prevent_handle_deletion trigger, so a bare DELETE FROM auth.users of a
-- user with content fails (on purpose: nothing is lost by accident). This
-- removes the user's content first (its suggestions and edit history go
-- with it), then the user, whose handles, credentials, sessions, quota and
-- history cascade; audit rows are kept with user_id set to NULL.
-- Returns true when the user existed. service_role only.
-- ---------------------------------------------------------------------
CREATE FUNCTION auth.delete_user(_user_id uuid) RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
BEGIN
    -- FOR UPDATE conflicts with the KEY SHARE locks that FK checks take,
    -- so no handle (FK to the user) or content (FK to a handle) can be
    -- added by a concurrent sync between the deletes below.
    PERFORM 1 FROM auth.users u WHERE u.id = _user_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM 1 FROM public.account_handles h WHERE h.user_id = _user_id FOR UPDATE;
    DELETE FROM public.handle_content c WHERE c.user_id = _user_id;
    DELETE FROM public.account_handles h WHERE h.user_id = _user_id;
    DELETE FROM auth.users u WHERE u.id = _user_id;
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION auth.delete_user(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.delete_user(uuid) TO service_role;
