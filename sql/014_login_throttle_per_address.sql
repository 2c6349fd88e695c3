-- Login throttling counted an account's failures from every address
-- together, so anyone who knew an e-mail address could keep its owner
-- locked out with p_max wrong passwords per window. Failures are now
-- counted three ways, each with its own limit:
--   the account from one address ('email:X ip:Y')   p_max
--   one address, any account ('ip:Y')               4 x p_max
--   the account from all addresses ('email:X')      10 x p_max
-- so a guesser at one address is stopped as before, the owner can still
-- sign in from elsewhere, a client trying many accounts is stopped, and a
-- guess spread over many addresses is still slowed (locking the owner out
-- now takes ten times the tries, from many addresses). Without an
-- address only the account is counted, at p_max. Same signatures.
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
        limits := ARRAY[p_max];
    ELSE
        keys := ARRAY['email:' || p_email || ' ip:' || p_ip, 'ip:' || p_ip, 'email:' || p_email];
        limits := ARRAY[p_max, 4 * p_max, 10 * p_max];
    END IF;
    o_retry_after := 0;
    o_attempts := '{}';

    -- Serialise the check-then-record per key across workers.
    FOR i IN 1 .. pg_catalog.array_length(keys, 1) LOOP
        PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(keys[i], 8008));
    END LOOP;

    DELETE FROM auth.login_attempts WHERE attempted_at < since;

    FOR i IN 1 .. pg_catalog.array_length(keys, 1) LOOP
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

-- The password was right: the attempts of sv_login_begin become
-- successes, and the account's failures start over, from every address
-- (p_email_key is 'email:X'; its per-address keys are 'email:X ip:…').
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
    SELECT s.o_session, s.o_created INTO o_session, o_created
      FROM auth.sv_session_open(u.id, p_token_hash, p_ip, p_ua) s;
    o_user := auth.sv_user_json(u);
END
$$;
