-- search_content, two fixes to the function of 009 (same signature,
-- results and order, still SECURITY INVOKER: row-level security decides
-- what each caller finds):
--
-- * ts_headline ran for every match before the ranking cut to
--   max_results (2,000 snippets for 20 rows in bench/run's search_rpc).
--   The matches are now ranked and cut first, and only the rows returned
--   get a snippet: PostgreSQL time per call 133 -> 110 ms there; the rest
--   is the scan row-level security forces (see README).
-- * The snippet is HTML (<b>…</b> around the matches) made from creator
--   text synced from the platforms, and that text was not escaped: a
--   title such as "<img src=x onerror=…>" reached web pages that render
--   the snippet as HTML. Title and description are now HTML-escaped before
--   ts_headline adds its tags (its parser reads &lt; and the like as
--   entities, so the matches are the same words), so a snippet holds no
--   markup but the <b> tags. The title column stays the stored plain text.
CREATE OR REPLACE FUNCTION public.search_content(query text,
                                                 config regconfig DEFAULT 'english',
                                                 max_results integer DEFAULT 20)
RETURNS TABLE (id uuid, handle_id uuid, platform_id uuid, title text, rank real,
               snippet text, published_at timestamptz)
LANGUAGE sql
STABLE
AS $$
    SELECT top.id, top.handle_id, top.platform_id, top.title, top.rank,
           pg_catalog.ts_headline(search_content.config,
                                  pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
                                  pg_catalog.replace(pg_catalog.replace(
                                      coalesce(top.title, '') || ' — ' || coalesce(top.description, ''),
                                      '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'),
                                      '''', '&#39;'),
                                  top.tsq,
                                  'StartSel=<b>, StopSel=</b>, MaxWords=35, MinWords=10, MaxFragments=2')
               AS snippet,
           top.published_at
      FROM (SELECT c.id, c.handle_id, c.platform_id, c.title, c.description, c.published_at, q.tsq,
                   pg_catalog.ts_rank(c.search_vector, q.tsq) AS rank
              FROM (SELECT pg_catalog.websearch_to_tsquery(search_content.config,
                                                           search_content.query) AS tsq) q,
                   public.handle_content c
             WHERE c.search_vector OPERATOR(pg_catalog.@@) q.tsq
               AND c.deleted_at IS NULL
             ORDER BY rank DESC, c.published_at DESC NULLS LAST, c.id
             LIMIT least(greatest(coalesce(search_content.max_results, 20), 1), 100)) top
     ORDER BY top.rank DESC, top.published_at DESC NULLS LAST, top.id
$$;
