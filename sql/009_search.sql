-- 009_search.sql — full-text search for the data API (/rest/v1/rpc/search_content)
-- and the helper the REST layer uses to refuse a .single() write that
-- touched other than exactly one row.

-- Ranked search over the caller's visible content. SECURITY INVOKER (the
-- default) so row-level security decides what each caller finds: anon
-- sees live public content of public, active handles; owners see their
-- own as well. Names are schema-qualified instead of pinning search_path,
-- so the planner can still inline the function body.
--
-- rank: ts_rank over the weighted search_vector (title 'A' > description
-- 'B' > tags 'C'). snippet: ts_headline of title and description with the
-- matches wrapped in <b>…</b>; the surrounding text is the creator's own
-- and is NOT HTML-escaped, so clients must escape it before rendering.
-- query uses websearch syntax ("cooking recipe", "\"exact phrase\"",
-- "-excluded", "a or b"); a query with no searchable words finds nothing.
CREATE FUNCTION public.search_content(query text,
                                      config regconfig DEFAULT 'english',
                                      max_results integer DEFAULT 20)
RETURNS TABLE (id uuid, handle_id uuid, platform_id uuid, title text, rank real,
               snippet text, published_at timestamptz)
LANGUAGE sql
STABLE
AS $$
    SELECT c.id, c.handle_id, c.platform_id, c.title,
           pg_catalog.ts_rank(c.search_vector, q.tsq) AS rank,
           pg_catalog.ts_headline(search_content.config,
                                  coalesce(c.title, '') || ' — ' || coalesce(c.description, ''),
                                  q.tsq,
                                  'StartSel=<b>, StopSel=</b>, MaxWords=35, MinWords=10, MaxFragments=2')
               AS snippet,
           c.published_at
      FROM (SELECT pg_catalog.websearch_to_tsquery(search_content.config, search_content.query) AS tsq) q,
           public.handle_content c
     WHERE c.search_vector OPERATOR(pg_catalog.@@) q.tsq
       AND c.deleted_at IS NULL
     ORDER BY rank DESC, c.published_at DESC NULLS LAST, c.id
     LIMIT least(greatest(coalesce(search_content.max_results, 20), 1), 100)
$$;
REVOKE ALL ON FUNCTION public.search_content(text, regconfig, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.search_content(text, regconfig, integer)
    TO anon, authenticated, service_role;

-- Raises SQLSTATE PT406 (HTTP 406, PostgREST's PGRST116) unless n = 1.
-- The REST layer calls it in the same statement as a write requested with
-- Accept: application/vnd.pgrst.object+json, so a PATCH/DELETE/INSERT that
-- would touch 0 or several rows is rolled back, as PostgREST does.
CREATE FUNCTION public.sv_rest_expect_one(n bigint) RETURNS boolean
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    IF n IS DISTINCT FROM 1 THEN
        RAISE EXCEPTION 'JSON object requested, multiple (or no) rows returned'
            USING ERRCODE = 'PT406',
                  DETAIL = pg_catalog.format('The result contains %s rows', coalesce(n, 0));
    END IF;
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION public.sv_rest_expect_one(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.sv_rest_expect_one(bigint) TO anon, authenticated, service_role;
