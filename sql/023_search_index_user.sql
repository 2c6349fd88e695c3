-- 023_search_index_user.sql — one GIN index over (user_id, search_vector),
-- so that an owner's text search on their own content
-- (supabase-js .eq('user_id', me).textSearch(...)) intersects the two in
-- the index instead of reading all of the user's rows.
--
-- The problem. For `search_vector @@ q AND user_id = me` the planner had
-- the GIN index on search_vector and the btree indexes that lead with
-- user_id. GIN overestimates a rare lexeme (in bench/run, 480-4,800
-- estimated rows for 'sourdough''s 50: its statistics only know the
-- frequent lexemes), so ANDing the bitmap of all the user's rows (44,000
-- at 2,000,000 rows) looked cheaper than fetching the matches: 5.9 ms of
-- PostgreSQL time per request at 2,000,000 rows instead of 0.5 ms at
-- 200,000, and with a common word and a generic plan, a bitmap of all of
-- the word's postings ANDed with the user's (20-40 ms at 200,000 rows).
--
-- The fix. btree_gin (contrib, shipped with the PostgreSQL server package)
-- gives uuid a GIN operator class, and the search index becomes
-- (user_id, search_vector). GIN keeps one posting list per key of either
-- column and intersects them while it reads them, skipping through the
-- longer list, so `user_id = me AND search_vector @@ q` costs about the
-- shorter of the two lists. A query on search_vector alone uses the same
-- index exactly as before (GIN answers any subset of its columns), so it
-- replaces the old one under the old name; the user_id keys add about as
-- many postings as there are rows (the new index was no larger than the
-- old one, 16 against 19 MB, at 200,000 rows). Measured with the bench's
-- data (200,000 rows, EXPLAIN ANALYZE, bench/README.md): the owner's
-- filter on 'sourdough' 1.25 -> 0.2 ms, on 'tips' (10%) 3-41 -> 0.3-0.7 ms,
-- on 'cooking & recipe' 3.2 -> 0.2-0.5 ms.
--
-- user_id = ... is leakproof (uuid_eq), so under RLS it is an index
-- condition like public.@@ (020).
--
-- Building it reads the whole table and holds a lock that blocks writes
-- to handle_content (seconds for 200,000 rows, minutes for millions).

CREATE SCHEMA IF NOT EXISTS extensions;
CREATE EXTENSION IF NOT EXISTS btree_gin WITH SCHEMA extensions;

DROP INDEX public.idx_handle_content_search;
-- user_id: btree_gin's default GIN operator class for uuid (found by
-- type, wherever the extension lives); search_vector: 020's class, which
-- serves both pg_catalog.@@ and the leakproof public.@@.
CREATE INDEX idx_handle_content_search ON public.handle_content
    USING gin (user_id, search_vector public.sv_tsvector_ops);
