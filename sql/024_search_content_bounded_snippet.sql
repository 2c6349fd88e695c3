-- 024_search_content_bounded_snippet.sql — search_content's snippets are
-- made from the title and the first 300 characters of the description,
-- so their cost no longer follows the length of descriptions. Everything
-- else is 021's: same signature, columns, candidates (the caller's 200
-- newest visible matches), ranking, escaping; still SECURITY INVOKER.
--
-- Why. ts_headline parses and stems every word of the text it is given
-- to find the matches to highlight. Measured on bench/run's data (1,000
-- snippets in one statement, EXPLAIN ANALYZE, 2026-12-02, load average
-- ~1): 12-20 µs a snippet for a 150-character title and description,
-- 134-192 µs with a 1,700-character description (platform descriptions
-- of several kilobytes, with links and sponsor notes, are common), 26-43
-- µs for the same cut to 300 characters. With 20 results that is 3-4 ms
-- per call spent on text nobody sees: a snippet shows at most two
-- fragments of 35 words.
--
-- What changes for clients. A match that appears in the description only
-- after its first 300 characters (or only in the tags) is still found and
-- ranked on the whole search_vector, but its snippet shows the start of
-- the title and description without highlighting, as ts_headline does
-- for a row with no match in the text. The cut is made before escaping,
-- so it never splits an entity such as &amp;.
--
-- The per-call plan stays (plpgsql, plan_cache_mode = force_custom_plan):
-- it is what lets the planner pick the GIN index for a rare word and the
-- newest-first index for a common one from the word's statistics. With
-- the row-local policy of 022 planning the candidate statement costs
-- ~0.1 ms (0.3-0.7 ms with the sub-select); an inlined LANGUAGE sql
-- version was measured too: its caller's statement is then planned per
-- call (0.3 ms for the bigger statement) or, once the plan cache settles
-- on a generic plan, loses the choice between the two indexes.
CREATE OR REPLACE FUNCTION public.search_content(query text,
                                                 config regconfig DEFAULT 'english',
                                                 max_results integer DEFAULT 20)
RETURNS TABLE (id uuid, handle_id uuid, platform_id uuid, title text, rank real,
               snippet text, published_at timestamptz)
LANGUAGE plpgsql
STABLE
SET search_path = ''
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    tsq pg_catalog.tsquery := pg_catalog.websearch_to_tsquery(search_content.config, search_content.query);
    lim integer := least(greatest(coalesce(search_content.max_results, 20), 1), 100);
BEGIN
    RETURN QUERY
    SELECT top.id, top.handle_id, top.platform_id, top.title, top.rank,
           pg_catalog.ts_headline(search_content.config,
                                  pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
                                  pg_catalog.replace(pg_catalog.replace(
                                      coalesce(top.title, '') || ' — '
                                          || pg_catalog.left(coalesce(top.description, ''), 300),
                                      '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'),
                                      '''', '&#39;'),
                                  tsq,
                                  'StartSel=<b>, StopSel=</b>, MaxWords=35, MinWords=10, MaxFragments=2'),
           top.published_at
      FROM (SELECT cand.id, cand.handle_id, cand.platform_id, cand.title, cand.description,
                   cand.published_at, pg_catalog.ts_rank(cand.search_vector, tsq) AS rank
              FROM (SELECT c.id, c.handle_id, c.platform_id, c.title, c.description, c.published_at,
                           c.search_vector
                      FROM public.handle_content c
                     WHERE c.search_vector OPERATOR(public.@@) tsq
                       AND c.deleted_at IS NULL
                     ORDER BY c.published_at DESC, c.id
                     LIMIT 200) cand
             ORDER BY rank DESC, cand.published_at DESC NULLS LAST, cand.id
             LIMIT lim) top
     ORDER BY top.rank DESC, top.published_at DESC NULLS LAST, top.id;
END
$$;
