-- 041_sync.sql — writing what a platform sync fetched into handle_content.
--
-- The sync job (src/job/sv_job_sync.c) pages through the account's
-- content on the platform and hands each page to sv_sync_upsert, one
-- statement per page; once it has read the whole listing it calls
-- sv_sync_remove_missing with every id it saw. Both run as service_role
-- and record their changes in content_edit_history as changed_by 'sync'
-- (the history trigger reads streamvibe.changed_by).
--
-- Only one sync of a handle runs at a time (sv_job_accept refuses a
-- second with already_syncing), so the update-then-insert below does not
-- race another sync of the same handle.

-- The items of a page as rows, one per platform_content_id (a platform
-- that lists an item twice in a page does not make it count twice).
CREATE FUNCTION public.sv_sync_items(_items jsonb)
RETURNS TABLE (platform_content_id text, content_type text, title text, description text, tags text[],
               content_url text, thumbnail_url text, published_at timestamptz, duration_seconds integer,
               view_count bigint, like_count bigint, comment_count bigint)
LANGUAGE sql STABLE
SET search_path = ''
AS $$
    SELECT DISTINCT ON (x.platform_content_id) x.*
      FROM pg_catalog.jsonb_to_recordset(_items) AS x(
               platform_content_id text, content_type text, title text, description text,
               tags text[], content_url text, thumbnail_url text, published_at timestamptz,
               duration_seconds integer, view_count bigint, like_count bigint, comment_count bigint)
     WHERE x.platform_content_id IS NOT NULL AND x.platform_content_id <> ''
     ORDER BY x.platform_content_id
$$;

-- One page of items, each an object with the handle_content columns a
-- platform gives: platform_content_id (required), content_type, title,
-- description, tags (array of strings), content_url, thumbnail_url,
-- published_at, duration_seconds, view_count, like_count, comment_count.
-- A member that is absent or null leaves the stored value alone where
-- "unknown" is not "none" (a hidden like count, a missing duration);
-- title, description and tags are the platform's as given.
--
-- Content this sync soft-deleted earlier (metadata.sync_removed_at) that
-- is back on the platform is restored; content the user deleted stays
-- deleted. A thumbnail URL whose path is unchanged is not an edit: the
-- platforms sign their CDN URLs with an expiry in the query string
-- (TikTok's last 6 hours), which would otherwise count every item as
-- updated on every sync and fill the history with URL churn.
--
-- Returns {"new": n, "updated": n, "unchanged": n} (items counted once
-- per platform_content_id).
CREATE FUNCTION public.sv_sync_upsert(_handle_id uuid, _user_id uuid, _items jsonb) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    n_items integer;
    n_new integer;
    n_updated integer;
BEGIN
    IF pg_catalog.jsonb_typeof(_items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'sv_sync_upsert: _items must be a JSON array' USING ERRCODE = '22023';
    END IF;
    PERFORM 1 FROM public.account_handles h WHERE h.id = _handle_id AND h.user_id = _user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'sv_sync_upsert: no such handle of this user' USING ERRCODE = 'P0002';
    END IF;
    PERFORM pg_catalog.set_config('streamvibe.changed_by', 'sync', true);

    SELECT pg_catalog.count(*) INTO n_items FROM public.sv_sync_items(_items);

    UPDATE public.handle_content c
       SET content_type = coalesce(s.content_type, c.content_type),
           title = s.title,
           description = s.description,
           tags = coalesce(s.tags, '{}'),
           content_url = coalesce(s.content_url, c.content_url),
           thumbnail_url = CASE WHEN pg_catalog.split_part(c.thumbnail_url, '?', 1)
                                     IS DISTINCT FROM pg_catalog.split_part(s.thumbnail_url, '?', 1)
                                THEN s.thumbnail_url ELSE c.thumbnail_url END,
           published_at = coalesce(s.published_at, c.published_at),
           duration_seconds = coalesce(s.duration_seconds, c.duration_seconds),
           view_count = coalesce(s.view_count, c.view_count),
           like_count = coalesce(s.like_count, c.like_count),
           comment_count = coalesce(s.comment_count, c.comment_count),
           deleted_at = CASE WHEN c.metadata ? 'sync_removed_at' THEN NULL ELSE c.deleted_at END,
           metadata = c.metadata - 'sync_removed_at'
      FROM public.sv_sync_items(_items) s
     WHERE c.handle_id = _handle_id AND c.platform_content_id = s.platform_content_id
       AND (c.content_type, c.title, c.description, c.tags, c.content_url,
            pg_catalog.split_part(c.thumbnail_url, '?', 1), c.published_at, c.duration_seconds,
            c.view_count, c.like_count, c.comment_count, c.metadata ? 'sync_removed_at')
           IS DISTINCT FROM
           (coalesce(s.content_type, c.content_type), s.title, s.description, coalesce(s.tags, '{}'),
            coalesce(s.content_url, c.content_url), pg_catalog.split_part(s.thumbnail_url, '?', 1),
            coalesce(s.published_at, c.published_at), coalesce(s.duration_seconds, c.duration_seconds),
            coalesce(s.view_count, c.view_count), coalesce(s.like_count, c.like_count),
            coalesce(s.comment_count, c.comment_count), false);
    GET DIAGNOSTICS n_updated = ROW_COUNT;

    -- user_id and platform_id are filled from the handle by
    -- handle_content_fill_owner.
    INSERT INTO public.handle_content (handle_id, platform_content_id, content_type, title, description,
                                       tags, content_url, thumbnail_url, published_at, duration_seconds,
                                       view_count, like_count, comment_count)
    SELECT _handle_id, s.platform_content_id, coalesce(s.content_type, 'video'), s.title, s.description,
           coalesce(s.tags, '{}'), s.content_url, s.thumbnail_url, s.published_at, s.duration_seconds,
           coalesce(s.view_count, 0), coalesce(s.like_count, 0), coalesce(s.comment_count, 0)
      FROM public.sv_sync_items(_items) s
     WHERE NOT EXISTS (SELECT 1 FROM public.handle_content c
                        WHERE c.handle_id = _handle_id AND c.platform_content_id = s.platform_content_id);
    GET DIAGNOSTICS n_new = ROW_COUNT;

    PERFORM pg_catalog.set_config('streamvibe.changed_by', '', true);
    RETURN pg_catalog.jsonb_build_object('new', n_new, 'updated', n_updated,
                                         'unchanged', n_items - n_new - n_updated);
END
$$;

-- Soft-deletes the handle's live content whose platform id is not in
-- _seen (a JSON array of every id the sync read), marking it as removed
-- by the sync so that a later sync restores it if it comes back. Call it
-- only after a complete listing: a partial one would delete what was
-- merely not read. Returns how many items it removed.
CREATE FUNCTION public.sv_sync_remove_missing(_handle_id uuid, _user_id uuid, _seen jsonb) RETURNS integer
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    n integer;
BEGIN
    IF pg_catalog.jsonb_typeof(_seen) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'sv_sync_remove_missing: _seen must be a JSON array' USING ERRCODE = '22023';
    END IF;
    PERFORM 1 FROM public.account_handles h WHERE h.id = _handle_id AND h.user_id = _user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'sv_sync_remove_missing: no such handle of this user' USING ERRCODE = 'P0002';
    END IF;
    PERFORM pg_catalog.set_config('streamvibe.changed_by', 'sync', true);
    UPDATE public.handle_content c
       SET deleted_at = pg_catalog.now(),
           metadata = c.metadata || pg_catalog.jsonb_build_object('sync_removed_at', pg_catalog.now())
     WHERE c.handle_id = _handle_id AND c.deleted_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements_text(_seen) AS e(id)
                        WHERE e.id = c.platform_content_id);
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM pg_catalog.set_config('streamvibe.changed_by', '', true);
    RETURN n;
END
$$;

REVOKE ALL ON FUNCTION public.sv_sync_items(jsonb), public.sv_sync_upsert(uuid, uuid, jsonb),
    public.sv_sync_remove_missing(uuid, uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.sv_sync_items(jsonb), public.sv_sync_upsert(uuid, uuid, jsonb),
    public.sv_sync_remove_missing(uuid, uuid, jsonb) TO service_role;
