-- 002_core.sql — platforms, account handles, their content, AI suggestions
-- and encrypted platform credentials. Grants and RLS live in 005_rls.sql.

-- ---------------------------------------------------------------------
-- platforms
-- ---------------------------------------------------------------------
CREATE TABLE public.platforms (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name          text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9_]+$'),
    display_name  text NOT NULL,
    base_url      text NOT NULL,
    api_base_url  text,
    is_active     boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER platforms_set_updated_at BEFORE UPDATE ON public.platforms
    FOR EACH ROW EXECUTE FUNCTION public.sv_set_updated_at();

-- The API base URLs are the platforms' documented defaults; the server's
-- configuration overrides them (tests point them at fake servers).
INSERT INTO public.platforms (name, display_name, base_url, api_base_url) VALUES
    ('youtube',   'YouTube',   'https://www.youtube.com',   'https://www.googleapis.com/youtube/v3'),
    ('instagram', 'Instagram', 'https://www.instagram.com', 'https://graph.instagram.com'),
    ('tiktok',    'TikTok',    'https://www.tiktok.com',    'https://open.tiktokapis.com/v2')
ON CONFLICT (name) DO NOTHING;

-- ---------------------------------------------------------------------
-- account_handles
-- ---------------------------------------------------------------------
CREATE TABLE public.account_handles (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The default lets a client insert without naming itself; RLS WITH
    -- CHECK still refuses any other value.
    user_id           uuid NOT NULL DEFAULT auth.uid() REFERENCES auth.users (id) ON DELETE CASCADE,
    platform_id       uuid NOT NULL REFERENCES public.platforms (id),
    handle            text NOT NULL,
    display_name      text,
    platform_user_id  text,
    profile_url       text,
    avatar_url        text,
    follower_count    bigint CHECK (follower_count >= 0),
    visibility        public.visibility NOT NULL DEFAULT 'public',
    active_status     public.active_status NOT NULL DEFAULT 'active',
    last_synced_at    timestamptz,
    sync_status       text CHECK (sync_status IN ('never', 'syncing', 'ok', 'failed')) DEFAULT 'never',
    metadata          jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT account_handles_handle_format
        CHECK (handle <> '' AND handle !~ '^@' AND handle !~ '[[:space:]]' AND length(handle) <= 100),
    -- Uniqueness is per user, not global: adding a handle does not prove
    -- ownership of it (only an OAuth connection does), so a global
    -- UNIQUE (platform_id, handle) would let anyone squat a creator's
    -- handle and lock the real owner out. Per user it still stops the same
    -- account from linking one handle twice.
    CONSTRAINT account_handles_user_platform_handle_key UNIQUE (user_id, platform_id, handle),
    -- Target of handle_content's composite FK, which keeps the content's
    -- denormalised user_id/platform_id equal to its handle's.
    CONSTRAINT account_handles_id_user_platform_key UNIQUE (id, user_id, platform_id)
);
CREATE INDEX account_handles_platform_id_idx ON public.account_handles (platform_id);
CREATE INDEX account_handles_public_idx ON public.account_handles (platform_id, handle)
    WHERE visibility = 'public' AND active_status = 'active';
CREATE TRIGGER account_handles_set_updated_at BEFORE UPDATE ON public.account_handles
    FOR EACH ROW EXECUTE FUNCTION public.sv_set_updated_at();

-- Handles are case-insensitive identifiers on every supported platform and
-- users paste them with or without '@'; store one canonical spelling so the
-- unique constraint means what it says. display_name keeps the pretty form.
CREATE FUNCTION public.sv_normalize_handle() RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    NEW.handle := pg_catalog.lower(pg_catalog.ltrim(pg_catalog.btrim(NEW.handle), '@'));
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.sv_normalize_handle() FROM PUBLIC;
CREATE TRIGGER account_handles_normalize BEFORE INSERT OR UPDATE OF handle ON public.account_handles
    FOR EACH ROW EXECUTE FUNCTION public.sv_normalize_handle();

-- ---------------------------------------------------------------------
-- handle_content
-- ---------------------------------------------------------------------

-- array_to_string() is only STABLE (it calls element output functions),
-- which a generated column refuses. For text[] the result cannot change
-- with settings, so this wrapper is honestly IMMUTABLE.
CREATE FUNCTION public.sv_tags_to_text(tags text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.array_to_string(tags, ' ')
$$;

CREATE TABLE public.handle_content (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    handle_id            uuid NOT NULL,
    user_id              uuid NOT NULL DEFAULT auth.uid(),
    platform_id          uuid NOT NULL,
    platform_content_id  text NOT NULL,
    content_type         text NOT NULL DEFAULT 'video'
        CHECK (content_type IN ('video', 'short', 'reel', 'post', 'story', 'live', 'image', 'carousel', 'other')),
    title                text,
    description          text,
    tags                 text[] NOT NULL DEFAULT '{}',
    content_url          text,
    thumbnail_url        text,
    published_at         timestamptz,
    duration_seconds     integer CHECK (duration_seconds >= 0),
    view_count           bigint NOT NULL DEFAULT 0 CHECK (view_count >= 0),
    like_count           bigint NOT NULL DEFAULT 0 CHECK (like_count >= 0),
    comment_count        bigint NOT NULL DEFAULT 0 CHECK (comment_count >= 0),
    visibility           public.visibility NOT NULL DEFAULT 'public',
    metadata             jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    deleted_at           timestamptz,       -- soft delete; rows are never hard-deleted by the API
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    search_vector        tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') ||
        setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'B') ||
        setweight(to_tsvector('english'::regconfig, coalesce(public.sv_tags_to_text(tags), '')), 'C')
    ) STORED,
    CONSTRAINT handle_content_handle_id_fkey FOREIGN KEY (handle_id)
        REFERENCES public.account_handles (id) ON DELETE RESTRICT,
    -- Keeps the denormalised columns (needed by the composite index and by
    -- RLS without a join) equal to the handle's. ON UPDATE CASCADE so a
    -- service-side reassignment of a handle carries its content along.
    CONSTRAINT handle_content_handle_owner_fkey FOREIGN KEY (handle_id, user_id, platform_id)
        REFERENCES public.account_handles (id, user_id, platform_id) ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT handle_content_handle_platform_content_key UNIQUE (handle_id, platform_content_id),
    CONSTRAINT handle_content_platform_content_id_nonempty CHECK (platform_content_id <> '')
);
CREATE INDEX idx_handle_content_search ON public.handle_content USING gin (search_vector);
CREATE INDEX idx_handle_content_user_platform_published
    ON public.handle_content (user_id, platform_id, published_at DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX idx_handle_content_handle_published
    ON public.handle_content (handle_id, published_at DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX idx_handle_content_public_published
    ON public.handle_content (published_at DESC)
    WHERE deleted_at IS NULL AND visibility = 'public';
CREATE TRIGGER handle_content_set_updated_at BEFORE UPDATE ON public.handle_content
    FOR EACH ROW EXECUTE FUNCTION public.sv_set_updated_at();

-- Sync jobs insert content knowing only the handle; fill the denormalised
-- columns from it. Runs with the inserter's rights: a handle the caller
-- cannot see leaves the columns NULL and the insert fails on NOT NULL/FK,
-- which is the refusal we want.
CREATE FUNCTION public.sv_handle_content_fill_owner() RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    h_user uuid;
    h_platform uuid;
BEGIN
    IF NEW.user_id IS NULL OR NEW.platform_id IS NULL THEN
        SELECT h.user_id, h.platform_id INTO h_user, h_platform
          FROM public.account_handles h
         WHERE h.id = NEW.handle_id;
        NEW.user_id := coalesce(NEW.user_id, h_user);
        NEW.platform_id := coalesce(NEW.platform_id, h_platform);
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.sv_handle_content_fill_owner() FROM PUBLIC;
CREATE TRIGGER handle_content_fill_owner BEFORE INSERT ON public.handle_content
    FOR EACH ROW EXECUTE FUNCTION public.sv_handle_content_fill_owner();

-- Deleting a handle that has content (soft-deleted content included) is
-- refused: the V2 rule is "unlist, don't delete".
--
-- SQLSTATE 23503 (foreign_key_violation), the same code the ON DELETE
-- RESTRICT constraint would raise, so the HTTP layer maps both to 409
-- Conflict like PostgREST does. The MESSAGE names the fix
-- (visibility = 'unlisted'); the HINT carries the exact UPDATE.
--
-- SECURITY DEFINER so the count sees every content row regardless of the
-- caller's RLS visibility.
--
-- Account deletion therefore goes through auth.delete_user() (003), which
-- removes the content before the user row cascades to the handles.
CREATE FUNCTION public.prevent_handle_deletion_with_content() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    n bigint;
BEGIN
    SELECT count(*) INTO n FROM public.handle_content c WHERE c.handle_id = OLD.id;
    IF n > 0 THEN
        RAISE EXCEPTION 'cannot delete handle "%": it has % content item(s); set visibility = ''unlisted'' (and active_status = ''inactive'') instead of deleting it',
                OLD.handle, n
            USING ERRCODE = '23503',
                  DETAIL = 'Handles with content are never deleted, so their content and its history are kept.',
                  HINT = pg_catalog.format(
                      'UPDATE account_handles SET visibility = ''unlisted'', active_status = ''inactive'' WHERE id = %L',
                      OLD.id),
                  TABLE = 'account_handles',
                  CONSTRAINT = 'prevent_handle_deletion';
    END IF;
    RETURN OLD;
END
$$;
REVOKE ALL ON FUNCTION public.prevent_handle_deletion_with_content() FROM PUBLIC;
CREATE TRIGGER prevent_handle_deletion
    BEFORE DELETE ON public.account_handles
    FOR EACH ROW
    EXECUTE FUNCTION public.prevent_handle_deletion_with_content();

-- ---------------------------------------------------------------------
-- ai_content_suggestions
-- ---------------------------------------------------------------------
CREATE TABLE public.ai_content_suggestions (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    content_id             uuid NOT NULL REFERENCES public.handle_content (id) ON DELETE CASCADE,
    user_id                uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    suggested_title        text,
    suggested_description  text,
    suggested_tags         text[],
    model                  text,
    prompt_version         text,
    job_id                 uuid,
    title_applied          boolean NOT NULL DEFAULT false,
    description_applied    boolean NOT NULL DEFAULT false,
    tags_applied           boolean NOT NULL DEFAULT false,
    -- A suggestion is fully applied once every part it actually suggested
    -- has been applied; generated so it can never disagree with the flags.
    fully_applied          boolean GENERATED ALWAYS AS (
        (suggested_title IS NULL OR title_applied)
        AND (suggested_description IS NULL OR description_applied)
        AND (suggested_tags IS NULL OR tags_applied)
    ) STORED,
    applied_at             timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ai_content_suggestions_not_empty
        CHECK (suggested_title IS NOT NULL OR suggested_description IS NOT NULL OR suggested_tags IS NOT NULL)
);
CREATE INDEX idx_ai_suggestions_content_applied
    ON public.ai_content_suggestions (content_id, fully_applied, created_at DESC);
CREATE INDEX ai_content_suggestions_user_idx ON public.ai_content_suggestions (user_id, created_at DESC);
CREATE TRIGGER ai_content_suggestions_set_updated_at BEFORE UPDATE ON public.ai_content_suggestions
    FOR EACH ROW EXECUTE FUNCTION public.sv_set_updated_at();

-- applied_at records when the first part of the suggestion was applied.
CREATE FUNCTION public.sv_ai_suggestion_applied_at() RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    IF NEW.applied_at IS NULL AND (NEW.title_applied OR NEW.description_applied OR NEW.tags_applied) THEN
        NEW.applied_at := pg_catalog.now();
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.sv_ai_suggestion_applied_at() FROM PUBLIC;
CREATE TRIGGER ai_content_suggestions_applied_at BEFORE INSERT OR UPDATE ON public.ai_content_suggestions
    FOR EACH ROW EXECUTE FUNCTION public.sv_ai_suggestion_applied_at();

-- The suggestion's owner is the content's owner, whatever the inserter says.
CREATE FUNCTION public.sv_ai_suggestion_fill_owner() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
BEGIN
    SELECT c.user_id INTO NEW.user_id FROM public.handle_content c WHERE c.id = NEW.content_id;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.sv_ai_suggestion_fill_owner() FROM PUBLIC;
CREATE TRIGGER ai_content_suggestions_fill_owner BEFORE INSERT OR UPDATE OF content_id, user_id
    ON public.ai_content_suggestions
    FOR EACH ROW EXECUTE FUNCTION public.sv_ai_suggestion_fill_owner();

-- ---------------------------------------------------------------------
-- platform_credentials
--
-- OAuth tokens encrypted by the server (libsodium XChaCha20-Poly1305, the
-- row's user_id and platform_id as associated data) under the master key
-- identified by key_id. The database never sees plaintext. anon and
-- authenticated have no privilege on the ciphertext/nonce columns at all
-- (005_rls.sql grants them only the non-secret columns).
-- ---------------------------------------------------------------------
CREATE TABLE public.platform_credentials (
    id                        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                   uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    platform_id               uuid NOT NULL REFERENCES public.platforms (id),
    access_token_ciphertext   bytea NOT NULL,
    access_token_nonce        bytea NOT NULL CHECK (length(access_token_nonce) = 24),
    refresh_token_ciphertext  bytea,
    refresh_token_nonce       bytea CHECK (length(refresh_token_nonce) = 24),
    key_id                    integer NOT NULL CHECK (key_id > 0),
    token_expires_at          timestamptz,
    scopes                    text[] NOT NULL DEFAULT '{}',
    platform_user_id          text,
    is_active                 boolean NOT NULL DEFAULT true,
    last_verified_at          timestamptz,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT platform_credentials_user_platform_key UNIQUE (user_id, platform_id),
    CONSTRAINT platform_credentials_refresh_pair
        CHECK ((refresh_token_ciphertext IS NULL) = (refresh_token_nonce IS NULL))
);
CREATE INDEX platform_credentials_key_id_idx ON public.platform_credentials (key_id);
CREATE INDEX platform_credentials_expiry_idx ON public.platform_credentials (token_expires_at) WHERE is_active;
CREATE TRIGGER platform_credentials_set_updated_at BEFORE UPDATE ON public.platform_credentials
    FOR EACH ROW EXECUTE FUNCTION public.sv_set_updated_at();
