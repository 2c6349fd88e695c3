-- 010_auth_bcrypt.sql — password logins for users imported from V1.
--
-- 007_v1_import.sql keeps GoTrue's bcrypt hashes ($2a$/$2b$/$2y$) as they
-- were; the server itself only verifies argon2id. A bcrypt hash is checked
-- here with pgcrypto's crypt(), and after a successful login the server
-- replaces it with an argon2id hash (auth.sv_password_rehash), so each
-- imported user's bcrypt hash disappears at their first login.
--
-- pgcrypto goes into schema extensions (as on Supabase), which anon and
-- authenticated get nothing on; only service_role, which runs the auth
-- functions, may use it. If pgcrypto is already installed (a V1 database
-- may have it, in any schema) that installation is used.

CREATE SCHEMA IF NOT EXISTS extensions;
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA extensions;

DO $bcrypt$
DECLARE
    nsp text;
BEGIN
    SELECT n.nspname INTO STRICT nsp
      FROM pg_catalog.pg_extension e
      JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pgcrypto';
    EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA %I TO service_role', nsp);

    -- true when p_password matches the bcrypt hash p_hash. pgcrypto knows
    -- $2a$ (and the historical $2x$); $2b$ and $2y$ name the same
    -- algorithm (they differ from $2a$ only in bugs of other
    -- implementations), so they are checked as $2a$. Anything that is not
    -- a well-formed bcrypt hash is simply false (never an error).
    EXECUTE pg_catalog.format($f$
        CREATE FUNCTION auth.sv_bcrypt_verify(p_hash text, p_password text) RETURNS boolean
        LANGUAGE plpgsql STABLE
        SET search_path = ''
        AS $body$
        DECLARE
            h text;
        BEGIN
            IF p_hash IS NULL OR p_password IS NULL
               OR p_hash !~ '^\$2[abxy]\$[0-9][0-9]\$[./A-Za-z0-9]{53}$'
               OR pg_catalog.substr(p_hash, 5, 2)::int NOT BETWEEN 4 AND 31 THEN
                RETURN false;
            END IF;
            h := CASE WHEN pg_catalog.substr(p_hash, 3, 1) IN ('b', 'y')
                      THEN '$2a$' || pg_catalog.substr(p_hash, 5) ELSE p_hash END;
            RETURN %I.crypt(p_password, h) = h;
        END
        $body$
    $f$, nsp);
END
$bcrypt$;

-- Replaces a user's (bcrypt) hash by an argon2id one, only if the stored
-- hash is still the one that was verified: a password change in between
-- wins. Returns whether it replaced it.
CREATE FUNCTION auth.sv_password_rehash(p_user uuid, p_old_hash text, p_new_hash text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    IF p_new_hash IS NULL OR p_new_hash NOT LIKE '$argon2id$%' THEN
        RETURN false;
    END IF;
    UPDATE auth.users SET encrypted_password = p_new_hash
     WHERE id = p_user AND encrypted_password = p_old_hash;
    RETURN FOUND;
END
$$;

REVOKE ALL ON FUNCTION
    auth.sv_bcrypt_verify(text, text),
    auth.sv_password_rehash(uuid, text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    auth.sv_bcrypt_verify(text, text),
    auth.sv_password_rehash(uuid, text, text)
    TO service_role;
