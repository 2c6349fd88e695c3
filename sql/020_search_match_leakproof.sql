-- 020_search_match_leakproof.sql — full-text search that can use its GIN
-- index under row-level security.
--
-- The problem. handle_content has RLS, and PostgreSQL evaluates a query's
-- own conditions only after the policies, unless the condition's function
-- is LEAKPROOF (it cannot reveal anything about its arguments but through
-- its result: no error, no notice, no side effect that depends on them).
-- pg_catalog.ts_match_vq, behind "tsvector @@ tsquery", is not marked
-- leakproof, so `search_vector @@ q` could not be an index condition: every
-- search scanned all the rows the policies admit (178,000 of 200,000 in
-- bench/run) and cost grew with the table (README, bench/README.md).
--
-- The fix. A project-owned copy of the same C function, marked LEAKPROOF,
-- behind the operator public.@@ (tsvector, tsquery), and the GIN index
-- rebuilt with an operator class that serves it. The REST translator
-- writes OPERATOR(public.@@) for the text-search filters on a tsvector
-- column (src/rest/sv_rest_query.c) and search_content (021) uses it, so
-- the planner may run the GIN index scan first and apply the policies to
-- the matches only. Visibility is unchanged: the policies are still applied
-- to every row returned; only the order of evaluation changes.
--
-- Why ts_match_vq is leakproof (PostgreSQL 15, tsvector_op.c and
-- tsginidx.c): it reads the vector's lexemes and positions and returns a
-- boolean; its only error paths are check_stack_depth() and "unrecognized
-- operator", both reached through the *query* (its nesting, a corrupt
-- tsquery), never through the row's vector, whatever the row holds; it
-- writes nothing, raises no notice and takes no lock. Out-of-memory is the
-- one data-dependent failure, which PostgreSQL's own leakproof functions
-- (texteq, the uuid operators) share and the LEAKPROOF contract ignores.
-- The text variant ts_match_tq (text @@ tsquery) is NOT leakproof — it runs
-- to_tsvector on the row's text, which raises "string is too long for
-- tsvector" on a row over 1 MB — and is not copied.
--
-- Why a copy instead of ALTER FUNCTION pg_catalog.ts_match_vq LEAKPROOF
-- (measured the same: the plans are identical):
-- * altering the catalog changes the planner's trust for every role, table,
--   policy and security_barrier view in the database, including a DBA's
--   own, for an operator PostgreSQL has not declared leakproof; the copy is
--   used only where this project writes OPERATOR(public.@@);
-- * pg_dump does not dump attributes of built-in functions and pg_upgrade
--   rebuilds pg_catalog, so the ALTER would silently vanish on the next
--   restore or major upgrade (and every search would scan again); the
--   copy, its operator and its operator class are ordinary objects that
--   both carry over (restoring them needs a superuser, as migrating does);
-- * dropping the four objects undoes it.
-- The copy is LANGUAGE internal (the same C symbol) so it costs exactly
-- what the built-in costs; creating it, like LEAKPROOF, needs a superuser,
-- which migrations already are (001).

CREATE FUNCTION public.sv_ts_match(tsvector, tsquery) RETURNS boolean
LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF
AS 'ts_match_vq';
COMMENT ON FUNCTION public.sv_ts_match(tsvector, tsquery) IS
    'ts_match_vq (tsvector @@ tsquery) marked LEAKPROOF so that RLS does not keep it from the GIN index; see sql/020';

-- Same selectivity estimators as pg_catalog.@@, so plans are costed alike.
CREATE OPERATOR public.@@ (
    LEFTARG = tsvector,
    RIGHTARG = tsquery,
    FUNCTION = public.sv_ts_match,
    RESTRICT = tsmatchsel,
    JOIN = tsmatchjoinsel
);

-- tsvector_ops for GIN with one more strategy: the support functions are
-- the built-in ones (they do not look at the strategy number, so 3 is
-- searched exactly like 1), and strategies 1 and 2 keep the built-in
-- operators, so the one index serves `@@` written either way.
CREATE OPERATOR CLASS public.sv_tsvector_ops FOR TYPE tsvector USING gin AS
    OPERATOR 1 pg_catalog.@@ (tsvector, tsquery),
    OPERATOR 2 pg_catalog.@@@ (tsvector, tsquery),
    OPERATOR 3 public.@@ (tsvector, tsquery),
    FUNCTION 1 pg_catalog.gin_cmp_tslexeme(text, text),
    FUNCTION 2 pg_catalog.gin_extract_tsvector(tsvector, internal, internal),
    FUNCTION 3 pg_catalog.gin_extract_tsquery(tsvector, internal, smallint, internal, internal, internal, internal),
    FUNCTION 4 pg_catalog.gin_tsquery_consistent(internal, smallint, tsvector, integer, internal, internal, internal, internal),
    FUNCTION 5 pg_catalog.gin_cmp_prefix(text, text, smallint, internal),
    FUNCTION 6 pg_catalog.gin_tsquery_triconsistent(internal, smallint, tsvector, integer, internal, internal, internal),
    STORAGE text;

-- Rebuilt under the same name. Like the two indexes below, it holds a
-- lock on handle_content while it builds: this whole migration took 9.5 s
-- on bench/run's 200,000 rows (2-core VM under other load), so expect
-- minutes for millions of rows.
DROP INDEX public.idx_handle_content_search;
CREATE INDEX idx_handle_content_search ON public.handle_content
    USING gin (search_vector public.sv_tsvector_ops);

-- idx_handle_content_public_published (002) goes: under RLS the planner
-- estimates its predicate at a third of the rows instead of nine tenths
-- and ANDs its whole bitmap (178,000 entries in bench/run) with the GIN
-- index's few matches: a selective search as anon took 25-50 ms instead of
-- 0.2-0.4 ms. idx_handle_content_live_published below serves the same
-- "newest public content" listings (nine rows in ten are public).
DROP INDEX public.idx_handle_content_public_published;

-- "Newest first" over live content, whoever owns it: what row-level
-- security returns to anyone (everyone's public content, and one's own)
-- when a client orders by published_at without naming a user, and the
-- candidate cap of search_content (021) for common words.
CREATE INDEX idx_handle_content_live_published
    ON public.handle_content (published_at DESC)
    WHERE deleted_at IS NULL;
-- The same per platform: supabase-js's "newest on youtube" relying on RLS
-- alone (bench/run's platform_newest), which had no index in order.
CREATE INDEX idx_handle_content_platform_published
    ON public.handle_content (platform_id, published_at DESC)
    WHERE deleted_at IS NULL;
