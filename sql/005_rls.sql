-- 005_rls.sql — privileges and row-level security for the API roles.
--
-- Two layers, both required:
--   * GRANTs say which tables/columns a role may touch at all (column lists
--     keep clients off server-maintained columns such as follower_count,
--     view_count and, above all, the credential ciphertexts);
--   * RLS policies say which rows: owners via user_id = auth.uid(),
--     everyone else only public, live content of public, active handles.
-- A user id sent in a row never widens access: every INSERT/UPDATE policy
-- has WITH CHECK (user_id = auth.uid()).
--
-- service_role has BYPASSRLS and gets plain table grants; the server uses
-- it for sync/AI/SEO jobs and its auth code.
--
-- RLS is ENABLEd but not FORCEd: the owner is the migration/admin role,
-- never a role requests run as, and the SECURITY DEFINER functions (quota,
-- edit history, handle protection) run as the owner and must see all rows
-- even when the owner is not a superuser (managed PostgreSQL).
--
-- auth.uid() is wrapped in a sub-select in policies so it is evaluated once
-- per statement (an InitPlan), not once per row.

GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;

-- Start from nothing, whatever defaults the database had.
REVOKE ALL ON public.platforms, public.account_handles, public.handle_content,
    public.ai_content_suggestions, public.platform_credentials, public.subscription_tiers,
    public.subscription_settings, public.quota_usage_history, public.content_edit_history,
    public.audit_log
    FROM PUBLIC, anon, authenticated, service_role;

-- ---------------------------------------------------------------------
-- service_role (BYPASSRLS)
-- ---------------------------------------------------------------------
GRANT SELECT, INSERT, UPDATE, DELETE ON public.platforms, public.account_handles, public.handle_content,
    public.ai_content_suggestions, public.platform_credentials, public.subscription_tiers,
    public.subscription_settings
    TO service_role;
-- Ledgers are append-only, and only through the functions/triggers that
-- keep them consistent with the counters and content.
GRANT SELECT ON public.quota_usage_history, public.content_edit_history TO service_role;
-- One row per finished job; never rewritten.
GRANT SELECT, INSERT ON public.audit_log TO service_role;
GRANT USAGE, SELECT ON SEQUENCE public.audit_log_id_seq TO service_role;

-- ---------------------------------------------------------------------
-- Reference data: readable by everyone.
-- ---------------------------------------------------------------------
ALTER TABLE public.platforms ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON public.platforms TO anon, authenticated;
CREATE POLICY platforms_read_all ON public.platforms
    FOR SELECT TO anon, authenticated USING (true);

ALTER TABLE public.subscription_tiers ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON public.subscription_tiers TO anon, authenticated;
CREATE POLICY subscription_tiers_read_all ON public.subscription_tiers
    FOR SELECT TO anon, authenticated USING (true);

-- ---------------------------------------------------------------------
-- account_handles
-- ---------------------------------------------------------------------
ALTER TABLE public.account_handles ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON public.account_handles TO anon, authenticated;
GRANT INSERT (user_id, platform_id, handle, display_name, profile_url, avatar_url,
              visibility, active_status, metadata)
    ON public.account_handles TO authenticated;
GRANT UPDATE (handle, display_name, profile_url, avatar_url, visibility, active_status, metadata)
    ON public.account_handles TO authenticated;
-- The prevent_handle_deletion trigger refuses handles that have content.
GRANT DELETE ON public.account_handles TO authenticated;

CREATE POLICY account_handles_public_read ON public.account_handles
    FOR SELECT TO anon, authenticated
    USING (visibility = 'public' AND active_status = 'active');
CREATE POLICY account_handles_owner_read ON public.account_handles
    FOR SELECT TO authenticated
    USING (user_id = (SELECT auth.uid()));
-- 'suspended' is an operator decision: owners can neither set nor lift it.
CREATE POLICY account_handles_owner_insert ON public.account_handles
    FOR INSERT TO authenticated
    WITH CHECK (user_id = (SELECT auth.uid()) AND active_status <> 'suspended');
CREATE POLICY account_handles_owner_update ON public.account_handles
    FOR UPDATE TO authenticated
    USING (user_id = (SELECT auth.uid()) AND active_status <> 'suspended')
    WITH CHECK (user_id = (SELECT auth.uid()) AND active_status <> 'suspended');
CREATE POLICY account_handles_owner_delete ON public.account_handles
    FOR DELETE TO authenticated
    USING (user_id = (SELECT auth.uid()));

-- ---------------------------------------------------------------------
-- handle_content
-- ---------------------------------------------------------------------
ALTER TABLE public.handle_content ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON public.handle_content TO anon, authenticated;
GRANT INSERT (handle_id, user_id, platform_id, platform_content_id, content_type, title, description,
              tags, content_url, thumbnail_url, published_at, duration_seconds, visibility, metadata)
    ON public.handle_content TO authenticated;
-- deleted_at: the API's DELETE is a soft delete (UPDATE deleted_at = now()),
-- so clients get no DELETE privilege on content at all.
GRANT UPDATE (title, description, tags, thumbnail_url, visibility, deleted_at)
    ON public.handle_content TO authenticated;

-- Public listing: live, public content of a public, active handle. The
-- sub-select runs under the caller's own RLS on account_handles, which
-- already lets anon see exactly the public, active handles.
CREATE POLICY handle_content_public_read ON public.handle_content
    FOR SELECT TO anon, authenticated
    USING (deleted_at IS NULL
           AND visibility = 'public'
           AND EXISTS (SELECT 1 FROM public.account_handles h
                        WHERE h.id = handle_content.handle_id
                          AND h.visibility = 'public'
                          AND h.active_status = 'active'));
-- Owners see all their content, soft-deleted included (to restore it).
CREATE POLICY handle_content_owner_read ON public.handle_content
    FOR SELECT TO authenticated
    USING (user_id = (SELECT auth.uid()));
-- The composite FK (handle_id, user_id, platform_id) makes user_id = uid
-- imply the handle is the caller's own.
CREATE POLICY handle_content_owner_insert ON public.handle_content
    FOR INSERT TO authenticated
    WITH CHECK (user_id = (SELECT auth.uid()));
CREATE POLICY handle_content_owner_update ON public.handle_content
    FOR UPDATE TO authenticated
    USING (user_id = (SELECT auth.uid()))
    WITH CHECK (user_id = (SELECT auth.uid()));

-- ---------------------------------------------------------------------
-- ai_content_suggestions: created by the AI job (service_role); owners
-- read them, mark parts applied, or dismiss them.
-- ---------------------------------------------------------------------
ALTER TABLE public.ai_content_suggestions ENABLE ROW LEVEL SECURITY;
GRANT SELECT, DELETE ON public.ai_content_suggestions TO authenticated;
GRANT UPDATE (title_applied, description_applied, tags_applied) ON public.ai_content_suggestions TO authenticated;
CREATE POLICY ai_content_suggestions_owner_read ON public.ai_content_suggestions
    FOR SELECT TO authenticated
    USING (user_id = (SELECT auth.uid()));
CREATE POLICY ai_content_suggestions_owner_update ON public.ai_content_suggestions
    FOR UPDATE TO authenticated
    USING (user_id = (SELECT auth.uid()))
    WITH CHECK (user_id = (SELECT auth.uid()));
CREATE POLICY ai_content_suggestions_owner_delete ON public.ai_content_suggestions
    FOR DELETE TO authenticated
    USING (user_id = (SELECT auth.uid()));

-- ---------------------------------------------------------------------
-- platform_credentials: written only by the server (service_role), which
-- encrypts. Owners may see which platforms are connected (non-secret
-- columns only — selecting a ciphertext, nonce or key_id column is a
-- permission error) and may disconnect.
-- ---------------------------------------------------------------------
ALTER TABLE public.platform_credentials ENABLE ROW LEVEL SECURITY;
GRANT SELECT (id, user_id, platform_id, token_expires_at, scopes, platform_user_id, is_active,
              last_verified_at, created_at, updated_at)
    ON public.platform_credentials TO authenticated;
GRANT DELETE ON public.platform_credentials TO authenticated;
CREATE POLICY platform_credentials_owner_read ON public.platform_credentials
    FOR SELECT TO authenticated
    USING (user_id = (SELECT auth.uid()));
CREATE POLICY platform_credentials_owner_delete ON public.platform_credentials
    FOR DELETE TO authenticated
    USING (user_id = (SELECT auth.uid()));

-- What "select *" should mean for clients. security_invoker, so the
-- column grants and the policies above still apply to the caller.
CREATE VIEW public.platform_connections WITH (security_invoker = true) AS
SELECT c.id, c.user_id, c.platform_id, p.name AS platform, p.display_name AS platform_display_name,
       c.scopes, c.platform_user_id, c.is_active, c.token_expires_at, c.last_verified_at,
       c.created_at, c.updated_at
  FROM public.platform_credentials c
  JOIN public.platforms p ON p.id = c.platform_id;
REVOKE ALL ON public.platform_connections FROM PUBLIC;
GRANT SELECT ON public.platform_connections TO authenticated, service_role;

-- ---------------------------------------------------------------------
-- Read-only own rows: quota, ledgers, audit.
-- ---------------------------------------------------------------------
ALTER TABLE public.subscription_settings ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON public.subscription_settings TO authenticated;
CREATE POLICY subscription_settings_owner_read ON public.subscription_settings
    FOR SELECT TO authenticated
    USING (user_id = (SELECT auth.uid()));

ALTER TABLE public.quota_usage_history ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON public.quota_usage_history TO authenticated;
CREATE POLICY quota_usage_history_owner_read ON public.quota_usage_history
    FOR SELECT TO authenticated
    USING (user_id = (SELECT auth.uid()));

ALTER TABLE public.content_edit_history ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON public.content_edit_history TO authenticated;
CREATE POLICY content_edit_history_owner_read ON public.content_edit_history
    FOR SELECT TO authenticated
    USING (user_id = (SELECT auth.uid()));

ALTER TABLE public.audit_log ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON public.audit_log TO authenticated;
CREATE POLICY audit_log_owner_read ON public.audit_log
    FOR SELECT TO authenticated
    USING (user_id = (SELECT auth.uid()));

-- ---------------------------------------------------------------------
-- auth: no grants for clients (001); RLS without policies as a second
-- lock in case a grant is ever added by mistake. service_role bypasses.
-- ---------------------------------------------------------------------
ALTER TABLE auth.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.login_attempts ENABLE ROW LEVEL SECURITY;
