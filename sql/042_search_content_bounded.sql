-- 042_search_content_bounded.sql — search_content reads a bounded number
-- of rows whatever the term and the table's size, plans its statements
-- once per connection instead of once per call, and builds the snippet of
-- a row whose title alone matches without parsing its description. Same
-- signature and columns as 013/021/024; still SECURITY INVOKER: row-level
-- security decides what each caller finds, as before.
--
-- Which rows are ranked (the candidates). Let M be the caller's visible,
-- live matches of the websearch query.
--   * If M has at most 200 rows, all of them (as in 021).
--   * Otherwise the newest 200 matches among the caller's newest 4,000
--     visible live rows (published_at DESC, undated first, as
--     idx_handle_content_live_published holds them: rows published at the
--     same instant in the index's order), the "window"; when the window
--     holds fewer matches than max_results, topped up with up to 201
--     matches found through the GIN index (in no particular order), so a
--     word with matches never comes back empty.
-- 021 took the newest 200 of all of M; the two agree whenever the window
-- holds 200 matches (a term in more than 5% of recent rows). They differ
-- for a term with more than 200 matches spread thinner than that: 021
-- looked as far back as it took to find 200 (every row of a term in 1% of
-- the rows at 2,000,000 rows, 144 ms per call; a term common in old
-- content only, the whole table), 042 ranks what the newest 4,000 rows
-- hold, as search engines cap their candidates. The candidates are then
-- ranked by ts_rank as before (title 'A' > description 'B' > tags 'C'),
-- ties newest first, and the best max_results (1..100, default 20) are
-- returned.
--
-- What it reads, for any term and any table size (t/121 counts it):
--   * the probe: the caller's newest 32 visible live rows;
--   * at most 201 visible matches fetched through the GIN index (enough to
--     tell "at most 200" from "more"), in the index's order, not sorted;
--   * at most the 4,000 rows of the window, newest first through
--     idx_handle_content_live_published, stopping at 201 matches;
-- that is at most 4,233 rows the caller may see, plus the rows it may not
-- see that those scans pass over (other users' private, unlisted or
-- soft-deleted rows among the matches, or newer than the caller's newest
-- visible rows: the probe and the window read past them, as any "newest
-- first" listing under row-level security does). The GIN step
-- also reads the posting lists of the query's words in the index (no table
-- rows: 'tips -tips', 200,000 postings that all fail the test, 12 ms at
-- 2,000,000 rows; a bitmap of 20,000 matching postings ~10 ms at 200,000,
-- bench/README.md): that part still grows with how common the words are.
--
-- The order of the steps only changes the cost, never the result: if the
-- probe finds two matches or more (a term in ~6% of recent rows or more,
-- which fills 200 candidates within the window), the window goes first
-- and, when it holds more than 200 matches, settles the answer without
-- touching the GIN index (a common word's posting list is the expensive
-- part: the bitmap of 20,000 postings costs ~10 ms); otherwise the GIN
-- step goes first and settles it when there are at most 200 matches (a
-- rare word never reads the window, even with one fresh match among the
-- newest rows). A guess either way costs at most the bound above.
-- Everything the steps look at is the caller's visible rows (the policies
-- apply in every scan, before each LIMIT), so another user's private,
-- unlisted or soft-deleted row can neither take a candidate's place nor
-- change which step runs (t/431).
--
-- Plans. Every statement has one shape whatever the term, so the plans
-- are generic (plan_cache_mode = force_generic_plan: planned once per
-- connection, ~0.1-0.2 ms saved per call against 024's custom plans) and
-- enable_seqscan is off inside the function so that no estimate can turn
-- the GIN step or the window into a scan of the table. The window's inner
-- LIMIT is applied before the match test (a sub-select with LIMIT is not
-- flattened), so it cannot read more than 4,000 visible rows.
--
-- Snippets. As 024 (ts_headline over the escaped title and the first 300
-- characters of the description, two fragments of up to 35 words, <b> on
-- the matches), except when the title alone matches the query and the
-- description holds none of its words (judged from search_vector's weights,
-- not by parsing the text) and the query has no prefix term: then the
-- snippet is the title, its matches highlighted, then ' — ' and the
-- description's first 200 characters (cut at a word boundary), escaped,
-- with nothing in it to highlight. ts_headline parses and stems every
-- word it is given (~11 µs for a 150-character title and description,
-- ~3 µs for the title alone), 20 snippets were half of a selective call's
-- cost.
CREATE OR REPLACE FUNCTION public.search_content(query text,
                                                 config regconfig DEFAULT 'english',
                                                 max_results integer DEFAULT 20)
RETURNS TABLE (id uuid, handle_id uuid, platform_id uuid, title text, rank real,
               snippet text, published_at timestamptz)
LANGUAGE plpgsql
STABLE
SET search_path = ''
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
    tsq pg_catalog.tsquery := pg_catalog.websearch_to_tsquery(search_content.config, search_content.query);
    lim integer := least(greatest(coalesce(search_content.max_results, 20), 1), 100);
    -- The query's words, to tell whether a description holds any of them;
    -- NULL (never the title-only snippet) with a prefix term.
    words text[] := CASE WHEN pg_catalog.strpos(tsq::text, ':*') = 0 THEN
        ARRAY(SELECT pg_catalog.replace(m[1], '''''', '''')
                FROM pg_catalog.regexp_matches(tsq::text, '''((?:[^'']|'''')*)''', 'g') m) END;
    recent boolean;
BEGIN
    SELECT pg_catalog.count(*) = 2
      FROM (SELECT 1
              FROM (SELECT c.search_vector
                      FROM public.handle_content c
                     WHERE c.deleted_at IS NULL
                     ORDER BY c.published_at DESC
                     LIMIT 32) p
             WHERE p.search_vector OPERATOR(public.@@) tsq
             LIMIT 2) hits
      INTO recent;

    RETURN QUERY
    WITH w AS MATERIALIZED (        -- the window's newest 201 matches
        SELECT win.id, win.handle_id, win.platform_id, win.title, win.description, win.published_at,
               win.search_vector
          FROM (SELECT c.id, c.handle_id, c.platform_id, c.title, c.description, c.published_at,
                       c.search_vector
                  FROM public.handle_content c
                 WHERE c.deleted_at IS NULL
                 ORDER BY c.published_at DESC
                 LIMIT 4000) win
         WHERE win.search_vector OPERATOR(public.@@) tsq
         ORDER BY win.published_at DESC
         LIMIT 201),
    g AS MATERIALIZED (             -- up to 201 matches, through the GIN index
        SELECT c.id, c.handle_id, c.platform_id, c.title, c.description, c.published_at,
               c.search_vector
          FROM public.handle_content c
         WHERE c.search_vector OPERATOR(public.@@) tsq
           AND c.deleted_at IS NULL
         LIMIT 201),
    -- All matches (g) when there are at most 200, else the window (w);
    -- CASE fixes which count is taken first, each only when needed.
    pick AS (
        SELECT CASE WHEN recent AND (SELECT pg_catalog.count(*) FROM w) > 200 THEN false
                    ELSE (SELECT pg_catalog.count(*) FROM g) <= 200 END AS all_matches),
    cand AS (
        SELECT g.* FROM g WHERE (SELECT pick.all_matches FROM pick)
        UNION ALL
        SELECT w.* FROM w WHERE NOT (SELECT pick.all_matches FROM pick)
        UNION ALL
        -- A window holding fewer matches than asked for is topped up with
        -- the index's: a word with matches never comes back empty because
        -- they are all older than the window.
        SELECT g.* FROM g
         WHERE NOT (SELECT pick.all_matches FROM pick)
           AND (SELECT pg_catalog.count(*) FROM w) < lim
           AND g.id <> ALL (ARRAY(SELECT w.id FROM w))),
    ranked AS (
        SELECT newest.*, pg_catalog.ts_rank(newest.search_vector, tsq) AS rank
          FROM (SELECT cand.* FROM cand ORDER BY cand.published_at DESC, cand.id LIMIT 200) newest
         ORDER BY rank DESC, newest.published_at DESC NULLS LAST, newest.id
         LIMIT lim)
    SELECT top.id, top.handle_id, top.platform_id, top.title, top.rank,
           CASE WHEN pg_catalog.ts_filter(top.search_vector, '{a}') OPERATOR(public.@@) tsq
                 AND NOT (pg_catalog.tsvector_to_array(pg_catalog.ts_filter(top.search_vector, '{b}')) OPERATOR(pg_catalog.&&) words)
           THEN pg_catalog.ts_headline(search_content.config,
                    pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
                    pg_catalog.replace(pg_catalog.replace(coalesce(top.title, ''),
                        '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;'),
                    tsq,
                    'StartSel=<b>, StopSel=</b>, MaxWords=35, MinWords=10, MaxFragments=2')
                || CASE WHEN coalesce(top.description, '') = '' THEN '' ELSE ' — ' ||
                    pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
                    pg_catalog.replace(pg_catalog.replace(
                        CASE WHEN pg_catalog.length(top.description) <= 200 THEN top.description
                             ELSE pg_catalog.regexp_replace(pg_catalog.left(top.description, 201), '\s+\S*$', '') END,
                        '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;') END
           ELSE pg_catalog.ts_headline(search_content.config,
                    pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
                    pg_catalog.replace(pg_catalog.replace(
                        coalesce(top.title, '') || ' — '
                            || pg_catalog.left(coalesce(top.description, ''), 300),
                        '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;'),
                    tsq,
                    'StartSel=<b>, StopSel=</b>, MaxWords=35, MinWords=10, MaxFragments=2')
           END,
           top.published_at
      FROM ranked top
     ORDER BY top.rank DESC, top.published_at DESC NULLS LAST, top.id;
END
$$;
