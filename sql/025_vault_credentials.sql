-- 025_vault_credentials.sql — sealed platform tokens and the Vault.
--
-- The server seals every secret itself (crypto/sv_vault.c: libsodium
-- XChaCha20-Poly1305, a random nonce per value, the row and field as
-- associated data) before it reaches PostgreSQL, so neither a dump nor
-- the statement log ever holds a token. A sealed value is text,
-- 'sv1:<key id>:<base64url(nonce || ciphertext)>', and names the key that
-- sealed it; key_id columns repeat it so rotation and
-- `streamvibe-admin keys rotate --status` find rows by key.
--
-- platform_credentials gets the V2 document's columns back:
-- encrypted_access_token / encrypted_refresh_token hold either a sealed
-- value or, as in the document, the id of a vault.secrets row holding
-- it (supabase.rpc('vault.create_secret') then an insert of data.id).
-- Anything else -- a plaintext token above all -- is refused.
-- The earlier bytea columns (ciphertext + nonce) were never written by
-- any server version; rows written there by hand are carried over as
-- the same bytes in the text form.

-- ---------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------

-- The key id a sealed value names, NULL when the text is not one.
CREATE FUNCTION public.sv_sealed_key_id(v text) RETURNS integer
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = ''
RETURN CASE
    WHEN v ~ '^sv1:[1-9][0-9]{0,9}:[A-Za-z0-9_-]{54,}$'
         AND pg_catalog.split_part(v, ':', 2)::bigint <= 2147483647
    THEN pg_catalog.split_part(v, ':', 2)::integer
END;
REVOKE ALL ON FUNCTION public.sv_sealed_key_id(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.sv_sealed_key_id(text) TO service_role;

-- ---------------------------------------------------------------------
-- vault.secrets: the seed's Supabase Vault (POST /rest/v1/rpc/
-- vault.create_secret and vault.get_secret, service role only, served by
-- the server: functions/sv_vault_rpc.c). The secret column holds the
-- sealed value; its associated data is the row's id, so the server picks
-- the id before it seals.
-- ---------------------------------------------------------------------
CREATE SCHEMA vault;
REVOKE ALL ON SCHEMA vault FROM PUBLIC;

CREATE TABLE vault.secrets (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text UNIQUE,
    description  text NOT NULL DEFAULT '',
    secret       text NOT NULL CONSTRAINT secrets_sealed CHECK (public.sv_sealed_key_id(secret) IS NOT NULL),
    key_id       integer GENERATED ALWAYS AS (public.sv_sealed_key_id(secret)) STORED,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX secrets_key_id_idx ON vault.secrets (key_id);
CREATE TRIGGER secrets_set_updated_at BEFORE UPDATE ON vault.secrets
    FOR EACH ROW EXECUTE FUNCTION public.sv_set_updated_at();

-- service_role only (it bypasses RLS); RLS on without a policy keeps
-- every other role out even if someone grants the table later.
ALTER TABLE vault.secrets ENABLE ROW LEVEL SECURITY;
GRANT USAGE ON SCHEMA vault TO service_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON vault.secrets TO service_role;

-- ---------------------------------------------------------------------
-- platform_credentials
-- ---------------------------------------------------------------------
ALTER TABLE public.platform_credentials
    ADD COLUMN encrypted_access_token text,
    ADD COLUMN encrypted_refresh_token text;

UPDATE public.platform_credentials SET
    encrypted_access_token = 'sv1:' || key_id || ':' ||
        pg_catalog.translate(pg_catalog.encode(access_token_nonce || access_token_ciphertext, 'base64'),
                             E'+/=\n', '-_'),
    encrypted_refresh_token = CASE WHEN refresh_token_ciphertext IS NOT NULL THEN
        'sv1:' || key_id || ':' ||
        pg_catalog.translate(pg_catalog.encode(refresh_token_nonce || refresh_token_ciphertext, 'base64'),
                             E'+/=\n', '-_')
    END;

ALTER TABLE public.platform_credentials
    DROP COLUMN access_token_ciphertext,
    DROP COLUMN access_token_nonce,
    DROP COLUMN refresh_token_ciphertext,
    DROP COLUMN refresh_token_nonce,
    ALTER COLUMN encrypted_access_token SET NOT NULL,
    ALTER COLUMN key_id DROP NOT NULL;

COMMENT ON COLUMN public.platform_credentials.encrypted_access_token IS
    'sealed by the server (sv1:<key id>:...) or the id of a vault.secrets row';
COMMENT ON COLUMN public.platform_credentials.key_id IS
    'the key sealing this row''s values (NULL: only vault references); set by a trigger';

-- Checks what a token column holds and keeps key_id in step: a sealed
-- value (its key id), or the id of an existing vault secret. The
-- message never repeats the value: it may be a plaintext token sent by
-- mistake.
CREATE FUNCTION public.sv_platform_credentials_check() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    ka integer;
    kr integer;
BEGIN
    ka := public.sv_sealed_key_id(NEW.encrypted_access_token);
    IF ka IS NULL AND NOT (NEW.encrypted_access_token ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                           AND EXISTS (SELECT 1 FROM vault.secrets s
                                        WHERE s.id = NEW.encrypted_access_token::uuid)) THEN
        RAISE EXCEPTION 'encrypted_access_token must hold a value sealed by the server or the id of a vault secret'
            USING ERRCODE = 'check_violation',
                  HINT = 'store tokens through /functions/v1/credentials or rpc(''vault.create_secret'')';
    END IF;
    IF NEW.encrypted_refresh_token IS NOT NULL THEN
        kr := public.sv_sealed_key_id(NEW.encrypted_refresh_token);
        IF kr IS NULL AND NOT (NEW.encrypted_refresh_token ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                               AND EXISTS (SELECT 1 FROM vault.secrets s
                                            WHERE s.id = NEW.encrypted_refresh_token::uuid)) THEN
            RAISE EXCEPTION 'encrypted_refresh_token must hold a value sealed by the server or the id of a vault secret'
                USING ERRCODE = 'check_violation',
                      HINT = 'store tokens through /functions/v1/credentials or rpc(''vault.create_secret'')';
        END IF;
    END IF;
    IF ka IS NOT NULL AND kr IS NOT NULL AND ka <> kr THEN
        RAISE EXCEPTION 'the two tokens of a credential must be sealed with the same key'
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.key_id := coalesce(ka, kr);
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.sv_platform_credentials_check() FROM PUBLIC;
CREATE TRIGGER platform_credentials_check
    BEFORE INSERT OR UPDATE ON public.platform_credentials
    FOR EACH ROW EXECUTE FUNCTION public.sv_platform_credentials_check();

-- Rows converted above keep their key_id: it is the id their text names.

-- Grants are unchanged: service_role has the table; authenticated has
-- SELECT on the non-secret columns only (005_rls.sql), so selecting a
-- token column (or key_id) is a permission error.
