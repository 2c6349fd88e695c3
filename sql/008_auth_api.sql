-- 008_auth_api.sql — the account operations behind /auth/v1.
--
-- Each /auth/v1 request runs exactly one of these functions as one
-- statement (as service_role, in the request's single transaction), so a
-- signup, a login, a refresh or a logout is atomic. The server does the
-- parts that must not happen here: argon2id hashing/verification, token
-- generation and JWT signing. Only hashes of refresh tokens arrive here.
--
-- Errors a client caused are returned as an o_error code (GoTrue's
-- error_code values), not raised, so the caller can answer in GoTrue's
-- shape and the transaction still commits what must be kept (e.g. the
-- revocation of a session whose refresh token was reused).
--
-- None of these are SECURITY DEFINER: they run with the caller's rights,
-- and only service_role may execute them (anon/authenticated have no
-- privileges on the auth tables anyway).

-- GoTrue's timestamp format: RFC 3339 in UTC with microseconds.
CREATE FUNCTION auth.sv_ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE
SET search_path = ''
AS $$
    SELECT pg_catalog.to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- The user object GoTrue returns (GET /user, and "user" in a session).
CREATE FUNCTION auth.sv_user_json(u auth.users) RETURNS jsonb
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
$$;

-- Opens a session for a user with its first refresh token.
CREATE FUNCTION auth.sv_session_open(p_user uuid, p_token_hash text, p_ip inet, p_ua text,
                                     OUT o_session uuid, OUT o_created bigint)
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    s auth.sessions;
BEGIN
    INSERT INTO auth.sessions (user_id, ip, user_agent)
    VALUES (p_user, p_ip, p_ua)
    RETURNING * INTO s;
    INSERT INTO auth.refresh_tokens (token_hash, user_id, session_id)
    VALUES (p_token_hash, p_user, s.id);
    o_session := s.id;
    o_created := pg_catalog.floor(extract(epoch FROM s.created_at))::bigint;
END
$$;

-- Revokes sessions and all their refresh tokens.
CREATE FUNCTION auth.sv_sessions_revoke(p_sessions uuid[]) RETURNS void
LANGUAGE sql
SET search_path = ''
AS $$
    UPDATE auth.sessions SET revoked_at = pg_catalog.now()
     WHERE id = ANY (p_sessions) AND revoked_at IS NULL;
    UPDATE auth.refresh_tokens SET revoked = true
     WHERE session_id = ANY (p_sessions) AND NOT revoked;
$$;

-- POST /signup with autoconfirm: the user, confirmed and signed in.
CREATE FUNCTION auth.sv_signup(p_email text, p_hash text, p_meta jsonb, p_token_hash text,
                               p_ip inet, p_ua text,
                               OUT o_error text, OUT o_user jsonb, OUT o_session uuid,
                               OUT o_created bigint)
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    u auth.users;
BEGIN
    BEGIN
        INSERT INTO auth.users (email, encrypted_password, email_confirmed_at, last_sign_in_at,
                                raw_user_meta_data)
        VALUES (p_email, p_hash, pg_catalog.now(), pg_catalog.now(),
                COALESCE(p_meta, '{}'::jsonb))
        RETURNING * INTO u;
    EXCEPTION
        WHEN unique_violation THEN
            o_error := 'user_already_exists';
            RETURN;
        WHEN check_violation THEN
            o_error := 'email_address_invalid';
            RETURN;
    END;
    SELECT s.o_session, s.o_created INTO o_session, o_created
      FROM auth.sv_session_open(u.id, p_token_hash, p_ip, p_ua) s;
    o_user := auth.sv_user_json(u);
END
$$;

-- Start of a password login. Throttling: failures are counted per key
-- ('email:<address>' and 'ip:<address>') within the window; at max the
-- answer is o_retry_after > 0 (seconds until the oldest failure that keeps
-- the key over the limit leaves the window) and nothing is recorded.
-- Otherwise a failure is recorded now for each key, before the password
-- is checked, so parallel guesses count against each other;
-- sv_login_succeed turns them into successes. The user's hash is returned
-- even for banned users as NULL (a banned user cannot log in, and answers
-- like a wrong password).
CREATE FUNCTION auth.sv_login_begin(p_email text, p_ip text, p_max int, p_window int,
                                    OUT o_retry_after int, OUT o_user_id uuid, OUT o_hash text,
                                    OUT o_attempts bigint[])
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    keys text[] := ARRAY['email:' || p_email];
    k text;
    n bigint;
    edge timestamptz;
    since timestamptz := pg_catalog.now() - pg_catalog.make_interval(secs => p_window);
BEGIN
    IF p_ip IS NOT NULL THEN
        keys := keys || ('ip:' || p_ip);
    END IF;
    o_retry_after := 0;
    o_attempts := '{}';

    -- Serialise the check-then-record per key across workers.
    FOREACH k IN ARRAY keys LOOP
        PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(k, 8008));
    END LOOP;

    DELETE FROM auth.login_attempts WHERE attempted_at < since;

    FOREACH k IN ARRAY keys LOOP
        SELECT count(*) INTO n FROM auth.login_attempts a
         WHERE a.key = k AND NOT a.succeeded AND a.attempted_at >= since;
        IF n >= p_max THEN
            SELECT a.attempted_at INTO edge FROM auth.login_attempts a
             WHERE a.key = k AND NOT a.succeeded AND a.attempted_at >= since
             ORDER BY a.attempted_at
             OFFSET n - p_max LIMIT 1;
            o_retry_after := GREATEST(o_retry_after, GREATEST(1, pg_catalog.ceil(extract(epoch FROM
                             edge + pg_catalog.make_interval(secs => p_window) - pg_catalog.now()))::int));
        END IF;
    END LOOP;
    IF o_retry_after > 0 THEN
        RETURN;
    END IF;

    WITH ins AS (
        INSERT INTO auth.login_attempts (key, succeeded)
        SELECT x, false FROM pg_catalog.unnest(keys) AS x
        RETURNING id)
    SELECT pg_catalog.array_agg(ins.id) INTO o_attempts FROM ins;

    SELECT u.id, CASE WHEN u.banned_until IS NULL OR u.banned_until <= pg_catalog.now()
                      THEN u.encrypted_password END
      INTO o_user_id, o_hash
      FROM auth.users u
     WHERE pg_catalog.lower(u.email) = pg_catalog.lower(p_email);
END
$$;

-- The password was right: the attempts of sv_login_begin become successes,
-- the account's failure count starts over, and a session opens.
CREATE FUNCTION auth.sv_login_succeed(p_user uuid, p_attempts bigint[], p_email_key text,
                                      p_token_hash text, p_ip inet, p_ua text,
                                      OUT o_user jsonb, OUT o_session uuid, OUT o_created bigint)
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    u auth.users;
BEGIN
    UPDATE auth.login_attempts SET succeeded = true WHERE id = ANY (p_attempts);
    DELETE FROM auth.login_attempts WHERE key = p_email_key AND NOT succeeded;
    UPDATE auth.users SET last_sign_in_at = pg_catalog.now()
     WHERE id = p_user AND (banned_until IS NULL OR banned_until <= pg_catalog.now())
    RETURNING * INTO u;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT s.o_session, s.o_created INTO o_session, o_created
      FROM auth.sv_session_open(u.id, p_token_hash, p_ip, p_ua) s;
    o_user := auth.sv_user_json(u);
END
$$;

-- grant_type=refresh_token. The used token is revoked and a child issued
-- (parent = the used token's hash). A token that was already used means
-- two parties hold it: the whole session is revoked.
CREATE FUNCTION auth.sv_refresh(p_old_hash text, p_new_hash text,
                                OUT o_error text, OUT o_user jsonb, OUT o_session uuid,
                                OUT o_created bigint)
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    t auth.refresh_tokens;
    s auth.sessions;
    u auth.users;
BEGIN
    SELECT * INTO t FROM auth.refresh_tokens WHERE token_hash = p_old_hash FOR UPDATE;
    IF NOT FOUND THEN
        o_error := 'refresh_token_not_found';
        RETURN;
    END IF;
    SELECT * INTO s FROM auth.sessions WHERE id = t.session_id FOR UPDATE;
    IF NOT FOUND OR s.revoked_at IS NOT NULL THEN
        o_error := 'refresh_token_not_found';
        RETURN;
    END IF;
    IF s.not_after IS NOT NULL AND s.not_after <= pg_catalog.now() THEN
        o_error := 'session_expired';
        RETURN;
    END IF;
    IF t.revoked THEN
        PERFORM auth.sv_sessions_revoke(ARRAY[s.id]);
        o_error := 'refresh_token_already_used';
        o_session := s.id;
        RETURN;
    END IF;
    SELECT * INTO u FROM auth.users WHERE id = t.user_id;
    IF NOT FOUND THEN
        o_error := 'refresh_token_not_found';
        RETURN;
    END IF;
    IF u.banned_until IS NOT NULL AND u.banned_until > pg_catalog.now() THEN
        o_error := 'user_banned';
        RETURN;
    END IF;

    UPDATE auth.refresh_tokens SET revoked = true WHERE id = t.id;
    INSERT INTO auth.refresh_tokens (token_hash, user_id, session_id, parent)
    VALUES (p_new_hash, t.user_id, t.session_id, t.token_hash);
    UPDATE auth.sessions SET refreshed_at = pg_catalog.now() WHERE id = s.id;
    o_user := auth.sv_user_json(u);
    o_session := s.id;
    o_created := pg_catalog.floor(extract(epoch FROM s.created_at))::bigint;
END
$$;

-- GET /user: the user, if the token's session is still live. o_hash is
-- for the server's same-password check only; it never leaves the server.
CREATE FUNCTION auth.sv_user_get(p_user uuid, p_session uuid,
                                 OUT o_error text, OUT o_user jsonb, OUT o_hash text)
LANGUAGE plpgsql STABLE
SET search_path = ''
AS $$
DECLARE
    u auth.users;
BEGIN
    PERFORM 1 FROM auth.sessions s
      WHERE s.id = p_session AND s.user_id = p_user AND s.revoked_at IS NULL
        AND (s.not_after IS NULL OR s.not_after > pg_catalog.now());
    IF NOT FOUND THEN
        o_error := 'session_not_found';
        RETURN;
    END IF;
    SELECT * INTO u FROM auth.users WHERE id = p_user;
    IF NOT FOUND THEN
        o_error := 'user_not_found';
        RETURN;
    END IF;
    o_user := auth.sv_user_json(u);
    o_hash := u.encrypted_password;
END
$$;

-- PUT /user: new email (confirmed at once: no mail is sent), new password
-- hash (other sessions are signed out), user metadata merged key by key
-- (a null value removes the key), as GoTrue does.
CREATE FUNCTION auth.sv_user_update(p_user uuid, p_session uuid, p_email text, p_hash text,
                                    p_meta jsonb, OUT o_error text, OUT o_user jsonb)
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    u auth.users;
BEGIN
    PERFORM 1 FROM auth.sessions s
      WHERE s.id = p_session AND s.user_id = p_user AND s.revoked_at IS NULL
        AND (s.not_after IS NULL OR s.not_after > pg_catalog.now());
    IF NOT FOUND THEN
        o_error := 'session_not_found';
        RETURN;
    END IF;
    SELECT * INTO u FROM auth.users WHERE id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        o_error := 'user_not_found';
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

-- POST /logout?scope=local|global|others.
CREATE FUNCTION auth.sv_logout(p_user uuid, p_session uuid, p_scope text) RETURNS void
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    PERFORM auth.sv_sessions_revoke(ARRAY(
        SELECT s.id FROM auth.sessions s
         WHERE s.user_id = p_user AND s.revoked_at IS NULL
           AND CASE p_scope
                   WHEN 'global' THEN true
                   WHEN 'others' THEN s.id <> p_session
                   ELSE s.id = p_session
               END));
END
$$;

REVOKE ALL ON FUNCTION
    auth.sv_ts(timestamptz),
    auth.sv_user_json(auth.users),
    auth.sv_session_open(uuid, text, inet, text),
    auth.sv_sessions_revoke(uuid[]),
    auth.sv_signup(text, text, jsonb, text, inet, text),
    auth.sv_login_begin(text, text, int, int),
    auth.sv_login_succeed(uuid, bigint[], text, text, inet, text),
    auth.sv_refresh(text, text),
    auth.sv_user_get(uuid, uuid),
    auth.sv_user_update(uuid, uuid, text, text, jsonb),
    auth.sv_logout(uuid, uuid, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    auth.sv_ts(timestamptz),
    auth.sv_user_json(auth.users),
    auth.sv_session_open(uuid, text, inet, text),
    auth.sv_sessions_revoke(uuid[]),
    auth.sv_signup(text, text, jsonb, text, inet, text),
    auth.sv_login_begin(text, text, int, int),
    auth.sv_login_succeed(uuid, bigint[], text, text, inet, text),
    auth.sv_refresh(text, text),
    auth.sv_user_get(uuid, uuid),
    auth.sv_user_update(uuid, uuid, text, text, jsonb),
    auth.sv_logout(uuid, uuid, text)
    TO service_role;
