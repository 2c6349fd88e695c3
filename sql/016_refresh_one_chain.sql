-- 016_refresh_one_chain.sql — a refresh token reused within the reuse
-- interval gets the session's live token back instead of a new branch.
--
-- 011 answered a reuse within refresh_token_reuse_interval with a new
-- child of the reused token, so rt0 -> rt1 followed by rt0 again gave a
-- second live token rt1b, and rt1 and rt1b then refreshed on their own:
-- two chains, and a copy of either went undetected. GoTrue answers such a
-- reuse with the session's currently active token. Only hashes are stored
-- here, so the server makes that possible by deriving each child from its
-- parent (child = HMAC(server secret, parent)): whoever presents a
-- token can be given any of its descendants again, and nobody without
-- the secret can compute one. The server sends p_chain, the hashes of the
-- presented token's next generations (p_chain[1] its child, p_chain[2]
-- its grandchild, ...).
--
-- Rules, for a token of a live, unexpired session of an existing user:
--   * not yet used: it is revoked and its child p_chain[1] issued
--     (o_generation 1);
--   * used less than p_reuse_interval seconds ago (counted from its
--     rotation, not from later reuses), and the session's live token is
--     one of its descendants p_chain[g]: nothing changes, o_generation g
--     tells the server which descendant to hand out again (o_reused).
--     One live token per session, always;
--   * otherwise (used earlier, or its chain no longer leads to the live
--     token): a copy is in other hands; the session and all its tokens
--     are revoked, o_error refresh_token_already_used.
-- Stricter than GoTrue, which hands the live token to its direct parent
-- at any age: here that too ends with the interval, so a stolen token
-- replayed later is detected even when its child was never used.
CREATE FUNCTION auth.sv_refresh(p_old_hash text, p_chain text[], p_reuse_interval int,
                                OUT o_error text, OUT o_user jsonb, OUT o_session uuid,
                                OUT o_created bigint, OUT o_generation int, OUT o_reused boolean)
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    t auth.refresh_tokens;
    s auth.sessions;
    u auth.users;
    live text;
BEGIN
    IF p_chain IS NULL OR pg_catalog.cardinality(p_chain) < 1 THEN
        RAISE EXCEPTION 'p_chain must hold at least the child''s hash' USING ERRCODE = '22023';
    END IF;
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
        -- The session row is locked: no other refresh of it runs now.
        SELECT r.token_hash INTO live FROM auth.refresh_tokens r
         WHERE r.session_id = s.id AND NOT r.revoked
         ORDER BY r.id DESC LIMIT 1;
        o_generation := pg_catalog.array_position(p_chain, live);
        IF o_generation IS NULL
           OR COALESCE(p_reuse_interval, 0) <= 0
           OR t.updated_at <= pg_catalog.now() - pg_catalog.make_interval(secs => p_reuse_interval) THEN
            PERFORM auth.sv_sessions_revoke(ARRAY[s.id]);
            o_error := 'refresh_token_already_used';
            o_session := s.id;
            o_generation := NULL;
            RETURN;
        END IF;
    END IF;
    SELECT * INTO u FROM auth.users WHERE id = t.user_id;
    IF NOT FOUND THEN
        o_error := 'refresh_token_not_found';
        o_generation := NULL;
        RETURN;
    END IF;
    IF u.banned_until IS NOT NULL AND u.banned_until > pg_catalog.now() THEN
        o_error := 'user_banned';
        o_generation := NULL;
        RETURN;
    END IF;

    IF NOT t.revoked THEN
        UPDATE auth.refresh_tokens SET revoked = true WHERE id = t.id;
        INSERT INTO auth.refresh_tokens (token_hash, user_id, session_id, parent)
        VALUES (p_chain[1], t.user_id, t.session_id, t.token_hash);
        o_generation := 1;
    END IF;
    o_reused := t.revoked;
    UPDATE auth.sessions SET refreshed_at = pg_catalog.now() WHERE id = s.id;
    o_user := auth.sv_user_json(u);
    o_session := s.id;
    o_created := pg_catalog.floor(extract(epoch FROM s.created_at))::bigint;
END
$$;

REVOKE ALL ON FUNCTION auth.sv_refresh(text, text[], int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.sv_refresh(text, text[], int) TO service_role;
