-- 011_auth_signup_refresh.sql — signup throttling and the refresh token
-- reuse interval.

-- Start of a signup, before the server spends an argon2id hash on it.
-- Signups are counted per address (key 'signup:<address>'; IPv6 per /64,
-- which one client usually has whole) in auth.login_attempts, shared by
-- all workers, within p_window seconds. At p_max the answer is
-- o_retry_after > 0 (seconds until the oldest signup that keeps the address
-- at the limit leaves the window) and nothing is recorded; otherwise the
-- signup is recorded (whether it then succeeds or not: each one costs a
-- hash). No address, or p_max <= 0: not throttled.
CREATE FUNCTION auth.sv_signup_begin(p_ip inet, p_max int, p_window int, OUT o_retry_after int)
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    k text;
    n bigint;
    edge timestamptz;
    since timestamptz := pg_catalog.now() - pg_catalog.make_interval(secs => p_window);
BEGIN
    o_retry_after := 0;
    IF p_ip IS NULL OR p_max IS NULL OR p_max <= 0 THEN
        RETURN;
    END IF;
    k := 'signup:' || CASE WHEN pg_catalog.family(p_ip) = 6
                           THEN pg_catalog.text(pg_catalog.network(pg_catalog.set_masklen(p_ip, 64)))
                           ELSE pg_catalog.host(p_ip) END;

    -- Serialise the check-then-record per key across workers.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(k, 8008));
    DELETE FROM auth.login_attempts a WHERE a.key = k AND a.attempted_at < since;

    SELECT count(*) INTO n FROM auth.login_attempts a
     WHERE a.key = k AND a.attempted_at >= since;
    IF n >= p_max THEN
        SELECT a.attempted_at INTO edge FROM auth.login_attempts a
         WHERE a.key = k AND a.attempted_at >= since
         ORDER BY a.attempted_at
         OFFSET n - p_max LIMIT 1;
        o_retry_after := GREATEST(1, pg_catalog.ceil(extract(epoch FROM
                         edge + pg_catalog.make_interval(secs => p_window) - pg_catalog.now()))::int);
        RETURN;
    END IF;
    INSERT INTO auth.login_attempts (key, succeeded) VALUES (k, false);
END
$$;

-- grant_type=refresh_token with GoTrue's reuse interval: as
-- auth.sv_refresh(text, text), except that a token rotated less than
-- p_reuse_interval seconds ago (two tabs, or an SSR server, refreshing at
-- the same moment) is still accepted once more: it gets a new child of its
-- own in the same session (only hashes are stored, so the child issued
-- first cannot be handed out again) and the session stays up. Reuse after
-- the interval revokes the whole session, as before. 0 = strict.
CREATE FUNCTION auth.sv_refresh(p_old_hash text, p_new_hash text, p_reuse_interval int,
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
    -- A revoked token of a live session was rotated (it has a child; its
    -- updated_at is when). Within the interval that is a concurrent
    -- refresh, after it a stolen copy.
    IF t.revoked AND NOT (COALESCE(p_reuse_interval, 0) > 0
                          AND t.updated_at > pg_catalog.now() - pg_catalog.make_interval(secs => p_reuse_interval)
                          AND EXISTS (SELECT 1 FROM auth.refresh_tokens c
                                       WHERE c.parent = t.token_hash AND c.session_id = t.session_id)) THEN
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

    IF NOT t.revoked THEN
        -- (a reused token keeps its updated_at: the interval never grows)
        UPDATE auth.refresh_tokens SET revoked = true WHERE id = t.id;
    END IF;
    INSERT INTO auth.refresh_tokens (token_hash, user_id, session_id, parent)
    VALUES (p_new_hash, t.user_id, t.session_id, t.token_hash);
    UPDATE auth.sessions SET refreshed_at = pg_catalog.now() WHERE id = s.id;
    o_user := auth.sv_user_json(u);
    o_session := s.id;
    o_created := pg_catalog.floor(extract(epoch FROM s.created_at))::bigint;
END
$$;

REVOKE ALL ON FUNCTION
    auth.sv_signup_begin(inet, int, int),
    auth.sv_refresh(text, text, int)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    auth.sv_signup_begin(inet, int, int),
    auth.sv_refresh(text, text, int)
    TO service_role;
