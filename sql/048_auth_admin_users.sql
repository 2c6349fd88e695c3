-- 048_auth_admin_users.sql — the account operations behind GoTrue's
-- /auth/v1/admin/users (supabase-js auth.admin.*), which the server
-- answers for the service role only (src/auth/sv_auth_admin_users.c).
--
-- As in 008: one function per request, one statement, run as
-- service_role; not SECURITY DEFINER (service_role already owns the
-- rights these need on auth.users and auth.sessions, and nothing here
-- should run with more); client errors come back as o_error (GoTrue's
-- error_code). Password hashing stays in the server: only argon2id
-- hashes arrive here. Deleting an account is auth.delete_user (004),
-- the same function `streamvibe-admin user delete` runs.
--
-- GoTrue's user JSON shows banned_until when it is set (models.User's
-- `json:"banned_until,omitempty"`); the one builder, sv_user_json,
-- gains it here, so GET /user and sessions show it too.

CREATE OR REPLACE FUNCTION auth.sv_user_json(u auth.users) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = ''
AS $$
    SELECT pg_catalog.jsonb_build_object(
        'id', u.id,
        'aud', u.aud,
        'role', u.role,
        'email', u.email,
        'email_confirmed_at', auth.sv_ts(u.email_confirmed_at),
        'phone', '',
        'confirmed_at', auth.sv_ts(u.email_confirmed_at),
        'last_sign_in_at', auth.sv_ts(u.last_sign_in_at),
        'app_metadata', u.raw_app_meta_data,
        'user_metadata', u.raw_user_meta_data,
        'identities', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
            'identity_id', u.id,
            'id', u.id,
            'user_id', u.id,
            'identity_data', pg_catalog.jsonb_build_object(
                'email', u.email,
                'email_verified', u.email_confirmed_at IS NOT NULL,
                'phone_verified', false,
                'sub', u.id),
            'provider', 'email',
            'last_sign_in_at', auth.sv_ts(u.last_sign_in_at),
            'created_at', auth.sv_ts(u.created_at),
            'updated_at', auth.sv_ts(u.updated_at),
            'email', u.email)),
        'created_at', auth.sv_ts(u.created_at),
        'updated_at', auth.sv_ts(u.updated_at),
        'is_anonymous', false)
        || CASE WHEN u.banned_until IS NULL THEN '{}'::jsonb
                ELSE pg_catalog.jsonb_build_object('banned_until', auth.sv_ts(u.banned_until)) END
$$;

-- GoTrue's metadata update (models.User.UpdateAppMetaData and
-- UpdateUserMetaData): key by key, a null value removing the key.
CREATE FUNCTION auth.sv_meta_merge(p_old jsonb, p_new jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = ''
AS $$
    SELECT CASE WHEN p_new IS NULL THEN p_old
                ELSE (p_old || p_new)
                     - ARRAY(SELECT e.key FROM pg_catalog.jsonb_each(p_new) e
                              WHERE e.value = 'null'::jsonb) END
$$;

-- GET /admin/users?page=&per_page=: {"users": [...], "aud"} newest first
-- (GoTrue's default sort, created_at desc; id breaks ties so pages never
-- overlap), and the number of accounts for X-Total-Count. p_page >= 1.
CREATE FUNCTION auth.sv_admin_users(p_page bigint, p_per_page int,
                                    OUT o_total bigint, OUT o_list jsonb)
LANGUAGE sql STABLE
SET search_path = ''
AS $$
    SELECT (SELECT pg_catalog.count(*) FROM auth.users WHERE aud = 'authenticated'),
           pg_catalog.jsonb_build_object(
               'users', COALESCE((
                   SELECT pg_catalog.jsonb_agg(auth.sv_user_json(p.u)
                                               ORDER BY p.created_at DESC, p.id DESC)
                     FROM (SELECT x AS u, x.created_at, x.id FROM auth.users x
                            WHERE x.aud = 'authenticated'
                            ORDER BY x.created_at DESC, x.id DESC
                           OFFSET (p_page - 1) * p_per_page LIMIT p_per_page) p),
                   '[]'::jsonb),
               'aud', 'authenticated')
$$;

-- GET /admin/users/<id>: the user, or o_user NULL when there is none.
CREATE FUNCTION auth.sv_admin_user_get(p_user uuid, OUT o_user jsonb)
LANGUAGE sql STABLE
SET search_path = ''
AS $$
    SELECT auth.sv_user_json(u) FROM auth.users u WHERE u.id = p_user
$$;

-- POST /admin/users. p_hash NULL: no password was given (GoTrue gives the
-- account a random one nobody knows; no password does the same, without
-- an argon2id hash of nothing). p_ban NULL: not banned. app_metadata is
-- merged into the provider keys GoTrue writes first.
CREATE FUNCTION auth.sv_admin_user_create(p_email text, p_hash text, p_user_meta jsonb,
                                          p_app_meta jsonb, p_confirm boolean, p_ban interval,
                                          OUT o_error text, OUT o_user jsonb)
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    u auth.users;
BEGIN
    BEGIN
        INSERT INTO auth.users (email, encrypted_password, email_confirmed_at,
                                raw_user_meta_data, raw_app_meta_data, banned_until)
        VALUES (p_email, p_hash, CASE WHEN p_confirm THEN pg_catalog.now() END,
                COALESCE(p_user_meta, '{}'::jsonb),
                auth.sv_meta_merge('{"provider": "email", "providers": ["email"]}'::jsonb, p_app_meta),
                pg_catalog.now() + p_ban)
        RETURNING * INTO u;
    EXCEPTION
        WHEN unique_violation THEN
            o_error := 'email_exists';
            RETURN;
        WHEN check_violation THEN
            o_error := 'email_address_invalid';
            RETURN;
    END;
    o_user := auth.sv_user_json(u);
END
$$;

-- PUT /admin/users/<id>: each argument NULL leaves its column alone,
-- except p_ban when p_ban_set (NULL then lifts the ban). As GoTrue's
-- adminUserUpdate: a new email keeps the confirmation state; a new
-- password signs the user out of every session (models.User.
-- UpdatePassword with no session: Logout); a ban leaves sessions alone
-- (a banned user's refresh is refused, sql/016).
CREATE FUNCTION auth.sv_admin_user_update(p_user uuid, p_email text, p_hash text,
                                          p_user_meta jsonb, p_app_meta jsonb,
                                          p_confirm boolean, p_ban_set boolean, p_ban interval,
                                          OUT o_error text, OUT o_user jsonb)
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    u auth.users;
BEGIN
    PERFORM 1 FROM auth.users x WHERE x.id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        o_error := 'user_not_found';
        RETURN;
    END IF;
    BEGIN
        UPDATE auth.users x SET
            email = COALESCE(p_email, x.email),
            email_confirmed_at = CASE WHEN p_confirm THEN pg_catalog.now()
                                      ELSE x.email_confirmed_at END,
            encrypted_password = COALESCE(p_hash, x.encrypted_password),
            raw_user_meta_data = auth.sv_meta_merge(x.raw_user_meta_data, p_user_meta),
            raw_app_meta_data = auth.sv_meta_merge(x.raw_app_meta_data, p_app_meta),
            banned_until = CASE WHEN p_ban_set THEN pg_catalog.now() + p_ban
                                ELSE x.banned_until END
         WHERE x.id = p_user
        RETURNING * INTO u;
    EXCEPTION
        WHEN unique_violation THEN
            o_error := 'email_exists';
            RETURN;
        WHEN check_violation THEN
            o_error := 'email_address_invalid';
            RETURN;
    END;
    IF p_hash IS NOT NULL THEN
        PERFORM auth.sv_sessions_revoke(ARRAY(
            SELECT s.id FROM auth.sessions s
             WHERE s.user_id = p_user AND s.revoked_at IS NULL));
    END IF;
    o_user := auth.sv_user_json(u);
END
$$;

-- Whether a user who gave the right password may sign in: GoTrue's
-- password grant answers email_not_confirmed for an unconfirmed address
-- (internal/api/token.go, after the password check). Signup confirms at
-- once; an account the service role created without email_confirm waits
-- for an update with it.
CREATE FUNCTION auth.sv_login_confirmed(p_user uuid) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = ''
AS $$
    SELECT COALESCE((SELECT u.email_confirmed_at IS NOT NULL FROM auth.users u WHERE u.id = p_user),
                    false)
$$;

REVOKE ALL ON FUNCTION
    auth.sv_login_confirmed(uuid),
    auth.sv_meta_merge(jsonb, jsonb),
    auth.sv_admin_users(bigint, int),
    auth.sv_admin_user_get(uuid),
    auth.sv_admin_user_create(text, text, jsonb, jsonb, boolean, interval),
    auth.sv_admin_user_update(uuid, text, text, jsonb, jsonb, boolean, boolean, interval)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    auth.sv_login_confirmed(uuid),
    auth.sv_meta_merge(jsonb, jsonb),
    auth.sv_admin_users(bigint, int),
    auth.sv_admin_user_get(uuid),
    auth.sv_admin_user_create(text, text, jsonb, jsonb, boolean, interval),
    auth.sv_admin_user_update(uuid, text, text, jsonb, jsonb, boolean, boolean, interval)
    TO service_role;
