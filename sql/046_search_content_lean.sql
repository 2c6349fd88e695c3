-- 046_search_content_lean.sql — search_content does the same work with
-- ~13% fewer instructions per call (callgrind, a selective term at 200,000
-- rows: 3.08 M -> 2.68 M; a common word and a 1% term 3-5% fewer). Same
-- signature, columns, candidates, order and snippets as 042 (whose header
-- explains them); only how the steps hand their rows on changes:
--
-- * The steps keep row addresses (ctid), not rows. 042 carried every
--   candidate's title, description and search_vector through two
--   materialised CTEs and two sorts, copying each wide row three or four
--   times; now the steps collect up to 201 addresses each, and one last
--   statement reads the chosen ones (Tid Scan, at most 300 rows, under the
--   policies again) to rank them and build the snippets.
-- * PL/pgSQL picks the step order and stops as soon as one step settles the
--   answer, so each statement's plan holds only its own step: PostgreSQL
--   initialises every node of a plan on every execution, and 042's single
--   statement initialised the window, the GIN step and the union each time.
--   ARRAY(sub-select) and FOUND instead of aggregates: no Agg node to set up.
-- * Three of the four match tests use the built-in @@: the probe's and the
--   window's stand above a sub-select with LIMIT, which PostgreSQL never
--   flattens, so they only ever see rows the policies admitted; the snippet
--   test sees returned rows only. The leakproof copy (020) is kept where it
--   matters, the GIN step, whose match test must run on the index before
--   the policies. Each use of the copy costs a lookup of its C symbol by
--   name in PostgreSQL's table of built-ins (a linear strcmp scan, ~74,000
--   instructions) every time a statement starts, because a LANGUAGE
--   internal function that is not itself a built-in is not found by OID.
--
-- The bound of 042 becomes: at most 32 (probe) + 201 (GIN step) + 4,000
-- (window) rows the caller may see, plus at most 300 candidates read again
-- by address (t/121).
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
    ids pg_catalog.tid[];       -- the candidates
    wids pg_catalog.tid[];      -- the window's newest 201 matches
    gids pg_catalog.tid[];      -- up to 201 matches, through the GIN index
BEGIN
    -- recent: at least two of the caller's newest 32 visible live rows match.
    PERFORM
      FROM (SELECT c.search_vector
              FROM public.handle_content c
             WHERE c.deleted_at IS NULL
             ORDER BY c.published_at DESC
             LIMIT 32) p
     WHERE p.search_vector OPERATOR(pg_catalog.@@) tsq
    OFFSET 1 LIMIT 1;
    recent := FOUND;

    -- The window first when the probe found the term recent, else the GIN
    -- step: whichever settles the answer alone ends the loop (see above).
    FOR step IN 1..2 LOOP
        IF (step = 1) = recent THEN
            wids := ARRAY(
                SELECT win.ctid
                  FROM (SELECT c.ctid, c.published_at, c.search_vector
                          FROM public.handle_content c
                         WHERE c.deleted_at IS NULL
                         ORDER BY c.published_at DESC
                         LIMIT 4000) win
                 WHERE win.search_vector OPERATOR(pg_catalog.@@) tsq
                 ORDER BY win.published_at DESC
                 LIMIT 201);
            IF pg_catalog.cardinality(wids) > 200 THEN ids := wids; EXIT; END IF;
        ELSE
            gids := ARRAY(
                SELECT c.ctid
                  FROM public.handle_content c
                 WHERE c.search_vector OPERATOR(public.@@) tsq
                   AND c.deleted_at IS NULL
                 LIMIT 201);
            IF pg_catalog.cardinality(gids) <= 200 THEN ids := gids; EXIT; END IF;
        END IF;
    END LOOP;
    -- More than 200 matches, at most 200 of them in the window: the window,
    -- topped up with the index's when it holds fewer than asked for, so a
    -- word with matches never comes back empty because they are all older.
    IF ids IS NULL THEN
        ids := wids;
        IF pg_catalog.cardinality(wids) < lim THEN
            ids := wids || ARRAY(SELECT x FROM pg_catalog.unnest(gids) x WHERE x <> ALL (wids));
        END IF;
    END IF;

    -- The candidates are read again by their row address, under the same
    -- snapshot (a STABLE function's statements share the caller's) and the
    -- same policies: a Tid Scan of at most 300 rows already in the buffers
    -- (a window of fewer than max_results matches, topped up with 201).
    RETURN QUERY
    WITH ranked AS (
        SELECT newest.*, pg_catalog.ts_rank(newest.search_vector, tsq) AS rank
          FROM (SELECT c.id, c.handle_id, c.platform_id, c.title, c.description, c.published_at,
                       c.search_vector
                  FROM public.handle_content c
                 WHERE c.ctid = ANY (ids)
                 ORDER BY c.published_at DESC, c.id LIMIT 200) newest
         ORDER BY rank DESC, newest.published_at DESC NULLS LAST, newest.id
         LIMIT lim)
    SELECT top.id, top.handle_id, top.platform_id, top.title, top.rank,
           CASE WHEN pg_catalog.ts_filter(top.search_vector, '{a}') OPERATOR(pg_catalog.@@) tsq
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
