-- 017_auth_user_session_checks.sql — GET/PUT /user and /logout check
-- the token's user, then its session, as GoTrue's requireAuthentication
-- does for all three: a deleted user is 403 user_not_found (before, its
-- sessions were gone with it and the answer was session_not_found), a
-- session that was signed out or expired is 403 session_not_found, also
-- on /logout (which answered 204 to a token of a session long gone).

-- GET /user (same signature as 008; o_hash as there).
CREATE OR REPLACE FUNCTION auth.sv_user_get(p_user uuid, p_session uuid,
                                            OUT o_error text, OUT o_user jsonb, OUT o_hash text)
LANGUAGE plpgsql STABLE
SET search_path = ''
AS $$
DECLARE
    u auth.users;
BEGIN
    SELECT * INTO u FROM auth.users WHERE id = p_user;
    IF NOT FOUND THEN
        o_error := 'user_not_found';
        RETURN;
    END IF;
    PERFORM 1 FROM auth.sessions s
      WHERE s.id = p_session AND s.user_id = p_user AND s.revoked_at IS NULL
        AND (s.not_after IS NULL OR s.not_after > pg_catalog.now());
    IF NOT FOUND THEN
        o_error := 'session_not_found';
        RETURN;
    END IF;
    o_user := auth.sv_user_json(u);
    o_hash := u.encrypted_password;
END
$$;

-- PUT /user (same signature and behaviour as 008, user checked first).
CREATE OR REPLACE FUNCTION auth.sv_user_update(p_user uuid, p_session uuid, p_email text, p_hash text,
                                               p_meta jsonb, OUT o_error text, OUT o_user jsonb)
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    u auth.users;
BEGIN
    SELECT * INTO u FROM auth.users WHERE id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        o_error := 'user_not_found';
        RETURN;
    END IF;
    PERFORM 1 FROM auth.sessions s
      WHERE s.id = p_session AND s.user_id = p_user AND s.revoked_at IS NULL
        AND (s.not_after IS NULL OR s.not_after > pg_catalog.now());
    IF NOT FOUND THEN
        o_error := 'session_not_found';
        RETURN;
    END IF;

    BEGIN
        UPDATE auth.users x SET
            email = CASE WHEN p_email IS NULL THEN x.email ELSE p_email END,
            email_confirmed_at = CASE WHEN p_email IS NULL OR pg_catalog.lower(p_email) = pg_catalog.lower(x.email)
                                      THEN x.email_confirmed_at ELSE pg_catalog.now() END,
            encrypted_password = COALESCE(p_hash, x.encrypted_password),
            raw_user_meta_data = CASE WHEN p_meta IS NULL THEN x.raw_user_meta_data
                ELSE (x.raw_user_meta_data || p_meta)
                     - ARRAY(SELECT e.key FROM pg_catalog.jsonb_each(p_meta) e
                              WHERE e.value = 'null'::jsonb) END
         WHERE x.id = p_user
        RETURNING * INTO u;
    EXCEPTION
        WHEN unique_violation THEN
            o_error := 'email_exists';
            RETURN;
    END;

    IF p_hash IS NOT NULL THEN
        PERFORM auth.sv_sessions_revoke(ARRAY(
            SELECT s.id FROM auth.sessions s
             WHERE s.user_id = p_user AND s.id <> p_session AND s.revoked_at IS NULL));
    END IF;
    o_user := auth.sv_user_json(u);
END
$$;

-- POST /logout?scope=local|global|others, after the same checks:
-- o_error user_not_found or session_not_found, and nothing is revoked.
CREATE FUNCTION auth.sv_signout(p_user uuid, p_session uuid, p_scope text, OUT o_error text)
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    PERFORM 1 FROM auth.users WHERE id = p_user;
    IF NOT FOUND THEN
        o_error := 'user_not_found';
        RETURN;
    END IF;
    PERFORM 1 FROM auth.sessions s
      WHERE s.id = p_session AND s.user_id = p_user AND s.revoked_at IS NULL
        AND (s.not_after IS NULL OR s.not_after > pg_catalog.now())
      FOR UPDATE;
    IF NOT FOUND THEN
        o_error := 'session_not_found';
        RETURN;
    END IF;
    PERFORM auth.sv_logout(p_user, p_session, p_scope);
END
$$;

REVOKE ALL ON FUNCTION auth.sv_signout(uuid, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.sv_signout(uuid, uuid, text) TO service_role;
