-- 015_login_throttle_known_addresses.sql — the account-wide login limit
-- no longer locks the owner out.
--
-- 014 refused an account's logins from every address once it had 10 x
-- p_max failures in the window, so someone with ten addresses could keep
-- the right password refused from an eleventh. Now (same signatures):
--   the account from one address ('email:X ip:A')   p_max failures, or 1
--   one address, any account ('ip:A')               4 x p_max
--   the account from all addresses ('email:X')      counted, never refused
-- While an account has 10 x p_max failures in the window it is under
-- attack, and an address it has never signed in from (within 90 days) is
-- allowed one failure on it per window instead of p_max. An address that
-- has signed in to it before (auth.login_known_addresses) keeps p_max. So
-- the owner always gets in from a familiar address, and from a new one
-- gets one try per window; a distributed guesser gets one guess per
-- address per window instead of p_max. The address is the server's key
-- for it (an IPv6 client's /64, see sv_addr_key in the server).

-- Addresses an account has signed in from: key 'email:X ip:A', as in
-- auth.login_attempts. Forgotten 90 days after the last sign-in.
CREATE TABLE auth.login_known_addresses (
    key             text PRIMARY KEY,
    last_success_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_known_addresses_time_idx ON auth.login_known_addresses (last_success_at);
REVOKE ALL ON auth.login_known_addresses FROM PUBLIC, anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON auth.login_known_addresses TO service_role;
-- RLS without policies, as on the other auth tables (005): a second lock
-- should a grant to clients ever be added by mistake.
ALTER TABLE auth.login_known_addresses ENABLE ROW LEVEL SECURITY;

CREATE OR REPLACE FUNCTION auth.sv_login_begin(p_email text, p_ip text, p_max int, p_window int,
                                               OUT o_retry_after int, OUT o_user_id uuid,
                                               OUT o_hash text, OUT o_attempts bigint[])
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    keys text[];
    limits int[];
    n bigint;
    edge timestamptz;
    since timestamptz := pg_catalog.now() - pg_catalog.make_interval(secs => p_window);
BEGIN
    IF p_ip IS NULL THEN
        keys := ARRAY['email:' || p_email];
    ELSE
        keys := ARRAY['email:' || p_email || ' ip:' || p_ip, 'ip:' || p_ip, 'email:' || p_email];
    END IF;
    o_retry_after := 0;
    o_attempts := '{}';

    -- Serialise the check-then-record per key across workers.
    FOR i IN 1 .. pg_catalog.array_length(keys, 1) LOOP
        PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(keys[i], 8008));
    END LOOP;

    DELETE FROM auth.login_attempts WHERE attempted_at < since;

    IF p_ip IS NULL THEN
        -- no address (a CGI call without REMOTE_ADDR): the account alone
        limits := ARRAY[p_max];
    ELSE
        SELECT count(*) INTO n FROM auth.login_attempts a
         WHERE a.key = keys[3] AND NOT a.succeeded AND a.attempted_at >= since;
        IF n >= 10 * p_max AND NOT EXISTS (
               SELECT 1 FROM auth.login_known_addresses k
                WHERE k.key = keys[1]
                  AND k.last_success_at >= pg_catalog.now() - interval '90 days') THEN
            limits := ARRAY[LEAST(p_max, 1), 4 * p_max, NULL];
        ELSE
            limits := ARRAY[p_max, 4 * p_max, NULL];
        END IF;
    END IF;

    FOR i IN 1 .. pg_catalog.array_length(keys, 1) LOOP
        CONTINUE WHEN limits[i] IS NULL;
        SELECT count(*) INTO n FROM auth.login_attempts a
         WHERE a.key = keys[i] AND NOT a.succeeded AND a.attempted_at >= since;
        IF n >= limits[i] THEN
            SELECT a.attempted_at INTO edge FROM auth.login_attempts a
             WHERE a.key = keys[i] AND NOT a.succeeded AND a.attempted_at >= since
             ORDER BY a.attempted_at
             OFFSET n - limits[i] LIMIT 1;
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

-- As in 014, and the address of this sign-in becomes familiar to the
-- account (the attempt with key 'email:X ip:A'; an e-mail address holds
-- no space, so ' ip:' only ever separates the two).
CREATE OR REPLACE FUNCTION auth.sv_login_succeed(p_user uuid, p_attempts bigint[], p_email_key text,
                                                 p_token_hash text, p_ip inet, p_ua text,
                                                 OUT o_user jsonb, OUT o_session uuid,
                                                 OUT o_created bigint)
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    u auth.users;
BEGIN
    UPDATE auth.login_attempts SET succeeded = true WHERE id = ANY (p_attempts);
    DELETE FROM auth.login_attempts
     WHERE NOT succeeded
       AND (key = p_email_key
            OR pg_catalog.left(key, pg_catalog.length(p_email_key) + 4) = p_email_key || ' ip:');
    UPDATE auth.users SET last_sign_in_at = pg_catalog.now()
     WHERE id = p_user AND (banned_until IS NULL OR banned_until <= pg_catalog.now())
    RETURNING * INTO u;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    INSERT INTO auth.login_known_addresses AS k (key)
    SELECT a.key FROM auth.login_attempts a
     WHERE a.id = ANY (p_attempts)
       AND pg_catalog.left(a.key, pg_catalog.length(p_email_key) + 4) = p_email_key || ' ip:'
    ON CONFLICT (key) DO UPDATE SET last_success_at = pg_catalog.now();
    DELETE FROM auth.login_known_addresses
     WHERE last_success_at < pg_catalog.now() - interval '90 days';
    SELECT s.o_session, s.o_created INTO o_session, o_created
      FROM auth.sv_session_open(u.id, p_token_hash, p_ip, p_ua) s;
    o_user := auth.sv_user_json(u);
END
$$;
