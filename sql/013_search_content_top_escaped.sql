-- search_content computed ts_headline for every match before ranking and
-- cutting to max_results (2,000 snippets for 20 rows in bench/run's
-- search_rpc). Now the matches are ranked and cut first, and only the
-- rows returned get a snippet: PostgreSQL time per call 133 -> 110 ms
-- there; the rest is the scan row-level security forces (see README).
-- Same signature, results, order and security (SECURITY INVOKER: RLS
-- still decides what each caller finds).
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
                                  coalesce(top.title, '') || ' — ' || coalesce(top.description, ''),
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
