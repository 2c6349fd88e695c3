-- 001_roles_auth.sql — API roles, the auth schema and its helper functions.
--
-- Applied by `streamvibe-admin migrate` inside one transaction (no
-- BEGIN/COMMIT here). Must run as a superuser (or a role with CREATEROLE
-- that may grant BYPASSRLS) because it creates the cluster-wide API roles.
--
-- Roles mirror Supabase/PostgREST:
--   anon           NOLOGIN   requests without a user token
--   authenticated  NOLOGIN   requests carrying a user's access token
--   service_role   NOLOGIN BYPASSRLS   the server's own jobs and auth code
--   authenticator  LOGIN NOINHERIT     what streamvibe-fcgi connects as; it
--                  has no privileges of its own and must SET ROLE to one of
--                  the three above for every request.
-- No password is set here: the operator sets authenticator's password (or
-- uses peer/cert auth) so no secret ever lives in the repository.

-- Roles are cluster-global, so a second database in the same cluster (or a
-- re-run after a failed migration) finds them already there. Two databases
-- migrated at the same moment can race on CREATE ROLE (the advisory lock is
-- per database): the loser's duplicate error is caught and the role used.
-- We still re-assert the security-relevant attributes below in case
-- someone created a role by hand with different ones.
DO $roles$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES
            ('anon',          'NOLOGIN NOINHERIT'),
            ('authenticated', 'NOLOGIN NOINHERIT'),
            ('service_role',  'NOLOGIN NOINHERIT BYPASSRLS'),
            ('authenticator', 'LOGIN NOINHERIT')) AS v(name, attrs)
    LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r.name);
        BEGIN
            EXECUTE format('CREATE ROLE %I %s', r.name, r.attrs);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END LOOP;
END
$roles$;

-- Only when needed: ALTER ROLE and GRANT update shared catalog rows, and
-- two databases migrating at once would otherwise fail with "tuple
-- concurrently updated" on roles that are already right.
DO $attrs$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT rolname FROM pg_catalog.pg_roles
         WHERE (rolname IN ('anon', 'authenticated')
                AND (rolcanlogin OR rolsuper OR rolcreatedb OR rolcreaterole OR rolbypassrls))
            OR (rolname = 'service_role'
                AND (rolcanlogin OR rolsuper OR rolcreatedb OR rolcreaterole OR NOT rolbypassrls))
            OR (rolname = 'authenticator'
                AND (NOT rolcanlogin OR rolinherit OR rolsuper OR rolcreatedb OR rolcreaterole OR rolbypassrls))
    LOOP
        -- NOINHERIT for authenticator: a connection that forgot SET ROLE
        -- can do nothing, instead of silently having service_role's powers.
        EXECUTE format('ALTER ROLE %I %s NOSUPERUSER NOCREATEDB NOCREATEROLE %s', r.rolname,
                       CASE WHEN r.rolname = 'authenticator' THEN 'LOGIN NOINHERIT' ELSE 'NOLOGIN' END,
                       CASE WHEN r.rolname = 'service_role' THEN 'BYPASSRLS' ELSE 'NOBYPASSRLS' END);
    END LOOP;

    FOR r IN
        SELECT g.rolname
          FROM pg_catalog.pg_roles g
         WHERE g.rolname IN ('anon', 'authenticated', 'service_role')
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m
                            WHERE m.roleid = g.oid AND m.member = 'authenticator'::regrole)
    LOOP
        BEGIN
            EXECUTE format('GRANT %I TO authenticator', r.rolname);
        EXCEPTION WHEN unique_violation THEN
            NULL;                               -- granted concurrently
        END;
    END LOOP;
END
$attrs$;

-- ---------------------------------------------------------------------
-- auth schema (GoTrue-like). Only the owner and service_role touch its
-- tables; anon/authenticated get USAGE solely so that RLS policies and
-- column defaults can call auth.uid()/auth.role()/auth.jwt().
-- ---------------------------------------------------------------------
CREATE SCHEMA IF NOT EXISTS auth;
REVOKE ALL ON SCHEMA auth FROM PUBLIC;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;

-- Shared trigger function: every table with updated_at uses it.
CREATE FUNCTION public.sv_set_updated_at() RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    NEW.updated_at := pg_catalog.now();
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.sv_set_updated_at() FROM PUBLIC;

CREATE TABLE auth.users (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    aud                 text NOT NULL DEFAULT 'authenticated',
    role                text NOT NULL DEFAULT 'authenticated',
    email               text NOT NULL,
    encrypted_password  text,              -- argon2id string from crypto_pwhash_str
    email_confirmed_at  timestamptz,
    invited_at          timestamptz,
    confirmation_sent_at timestamptz,
    recovery_sent_at    timestamptz,
    last_sign_in_at     timestamptz,
    raw_app_meta_data   jsonb NOT NULL DEFAULT '{"provider": "email", "providers": ["email"]}'::jsonb,
    raw_user_meta_data  jsonb NOT NULL DEFAULT '{}'::jsonb,
    banned_until        timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_format CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    -- A user row must never mint a token for a privileged role.
    CONSTRAINT users_role_known CHECK (role = 'authenticated'),
    CONSTRAINT users_app_meta_object CHECK (jsonb_typeof(raw_app_meta_data) = 'object'),
    CONSTRAINT users_user_meta_object CHECK (jsonb_typeof(raw_user_meta_data) = 'object')
);
-- Emails are compared case-insensitively (GoTrue lower-cases them); an
-- expression index avoids depending on the citext extension.
CREATE UNIQUE INDEX users_email_lower_key ON auth.users (lower(email));
CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON auth.users
    FOR EACH ROW EXECUTE FUNCTION public.sv_set_updated_at();

CREATE TABLE auth.sessions (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    refreshed_at timestamptz,
    not_after   timestamptz,               -- hard expiry of the whole session
    ip          inet,
    user_agent  text,
    revoked_at  timestamptz
);
CREATE INDEX sessions_user_id_idx ON auth.sessions (user_id);
CREATE INDEX sessions_not_after_idx ON auth.sessions (not_after);
CREATE TRIGGER sessions_set_updated_at BEFORE UPDATE ON auth.sessions
    FOR EACH ROW EXECUTE FUNCTION public.sv_set_updated_at();

-- Refresh tokens are stored only as a hash (never the token itself), and
-- rotate: each use revokes the row and inserts a child whose parent is the
-- used token's hash, so reuse of a revoked token can revoke the session.
CREATE TABLE auth.refresh_tokens (
    id          bigserial PRIMARY KEY,
    token_hash  text NOT NULL UNIQUE,
    user_id     uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    session_id  uuid NOT NULL REFERENCES auth.sessions (id) ON DELETE CASCADE,
    parent      text,
    revoked     boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_session_id_idx ON auth.refresh_tokens (session_id, revoked);
CREATE INDEX refresh_tokens_user_id_idx ON auth.refresh_tokens (user_id);
CREATE INDEX refresh_tokens_parent_idx ON auth.refresh_tokens (parent);
CREATE TRIGGER refresh_tokens_set_updated_at BEFORE UPDATE ON auth.refresh_tokens
    FOR EACH ROW EXECUTE FUNCTION public.sv_set_updated_at();

-- Login throttling: one row per attempt; the server counts recent failures
-- per key (e.g. 'email:alice@example.com' or 'ip:203.0.113.7') and prunes
-- rows older than its window.
CREATE TABLE auth.login_attempts (
    id           bigserial PRIMARY KEY,
    key          text NOT NULL,
    succeeded    boolean NOT NULL DEFAULT false,
    attempted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_key_time_idx ON auth.login_attempts (key, attempted_at DESC);
CREATE INDEX login_attempts_time_idx ON auth.login_attempts (attempted_at);

REVOKE ALL ON ALL TABLES IN SCHEMA auth FROM PUBLIC, anon, authenticated;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA auth FROM PUBLIC, anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA auth TO service_role;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA auth TO service_role;

-- ---------------------------------------------------------------------
-- Claims helpers, as in Supabase. The server does, per request,
--   SET LOCAL ROLE <role>;
--   SELECT set_config('request.jwt.claims', '<claims json>', true);
-- A missing or empty setting (anon request, service job, psql session)
-- yields NULL instead of an error, so policies simply match nothing.
-- ---------------------------------------------------------------------
CREATE FUNCTION auth.jwt() RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT NULLIF(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb
$$;

CREATE FUNCTION auth.uid() RETURNS uuid
LANGUAGE sql STABLE
AS $$
    SELECT NULLIF(
        NULLIF(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub',
        '')::uuid
$$;

CREATE FUNCTION auth.role() RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT NULLIF(
        NULLIF(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'role',
        '')
$$;

REVOKE ALL ON FUNCTION auth.jwt(), auth.uid(), auth.role() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.jwt(), auth.uid(), auth.role()
    TO anon, authenticated, service_role, authenticator;

-- ---------------------------------------------------------------------
-- Enums used across the schema.
-- ---------------------------------------------------------------------
CREATE TYPE public.visibility AS ENUM ('public', 'unlisted', 'private');
CREATE TYPE public.active_status AS ENUM ('active', 'inactive', 'suspended');
CREATE TYPE public.job_type AS ENUM ('platform_sync', 'ai_enhancement', 'seo_submission', 'token_refresh');
-- Jobs are recorded only when they end (see audit_log), so there is no
-- 'pending'/'running' state: a running job is a live process plus a spool
-- descriptor, not a row.
CREATE TYPE public.job_status AS ENUM ('completed', 'failed', 'cancelled', 'interrupted');
CREATE TYPE public.quota_type AS ENUM ('syncs', 'ai', 'indexing', 'handles');
CREATE TYPE public.subscription_tier AS ENUM ('free', 'pro', 'business');
