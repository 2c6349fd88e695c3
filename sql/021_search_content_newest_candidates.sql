-- 021_search_content_newest_candidates.sql — search_content ranks only the
-- newest 200 matches the caller may see, through the GIN index or the
-- newest-first index, whichever the query needs (same signature, columns,
-- snippets and escaping as 013).
--
-- Still SECURITY INVOKER: row-level security decides what each caller
-- finds, as before, and no function here can be called to skip it. (A
-- SECURITY DEFINER search with the visibility rule written out was
-- measured too — see bench/README.md, "Search under row-level security" —
-- and was no faster once the match operator is leakproof (020); it would
-- have kept a second copy of the policies to keep in step.)
--
-- What it returns. The caller's visible, live matches of the websearch
-- query are ordered newest first (published_at DESC, undated first as in
-- `order=published_at.desc`, then id); the first 200 of them are the
-- candidates; these are ranked by ts_rank (title 'A' > description 'B' >
-- tags 'C'), ties newest first, and the best max_results (1..100, default
-- 20) are returned, each with a snippet. A query with at most 200 visible
-- matches is therefore ranked completely; a common word is ranked among
-- its 200 newest matches, as search engines cap their candidates, so that
-- its cost does not grow with the catalogue.
--
-- No side channel. The candidates are defined by the caller's visible rows
-- only (the policies filter before the LIMIT), so another user's private,
-- unlisted or soft-deleted matches never take a candidate's place, and
-- ts_rank/ts_headline look at one row each: a hidden row cannot change the
-- rank, the count or the snippet of what a caller sees (t/431). Which plan
-- computes the candidates depends on planner statistics, which cover all
-- rows; the result does not.
--
-- Cost. Two plans give that result: the GIN index (all visible matches,
-- then the newest 200: cost proportional to the matches) or
-- idx_handle_content_live_published (020) read newest first until 200
-- visible matches are found (cost proportional to 200 / the term's
-- share of rows). The planner picks the cheaper from the lexemes'
-- frequencies, which it only sees in a custom plan: hence plan_cache_mode
-- = force_custom_plan (a generic plan assumes every query matches 0.5% of
-- the rows and would rank a common word's every match). The worst case is
-- a term between the two (where both cost the same), ~1% of the rows: it
-- grows with the square root of the table, not with the table. Measured in
-- bench/README.md.
--
-- The tsquery is computed once into a variable: in a query, a
-- websearch_to_tsquery() of parameters would be re-parsed for every row
-- its filter looks at.
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
                                      coalesce(top.title, '') || ' — ' || coalesce(top.description, ''),
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
