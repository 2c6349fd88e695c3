#!/usr/bin/perl
# Full-text search under row-level security uses an index (sql/020-024):
# on a table of 30,000 rows, the plans of every search path the API runs —
# the REST text-search filters (fts, plfts, phfts, wfts on search_vector,
# the SQL src/rest/sv_rest_query_parse.c writes, custom and generic plans), as
# anon, as an owner and with the owner's own user_id filter, and the
# statement inside rpc search_content — read handle_content through an
# index, never by a sequential scan, for a selective word. Under RLS the
# planner can use the GIN index only because public.@@ is leakproof: with
# pg_catalog.@@ (before 020) every one of these plans scans the table.
# With the owner's filter, user_id is a condition of the same GIN index
# (023). A common word with limit=20 reads about the rows it returns, not
# all its matches (022). The index answers exactly what a sequential scan
# answers, for every kind of tsquery.
use strict;
use warnings;

use JSON::PP qw(encode_json);
use Test::More;
use SV::Test::Stack;

plan skip_all => 'DBD::Pg not installed' unless eval { require DBD::Pg; 1 };

my $s = SV::Test::Stack->new(pool => 0);
my ($pg, $su) = ($s->pg, $s->su);
$su->do('SET client_min_messages = warning');   # websearch_to_tsquery('the') below

# Two users; the owner has a public and a private handle, the other user
# a public one. 30,000 rows: 'sourdough' in 30 of them (selective), 'tips'
# in one in ten (common), every 20th private, every 97th soft-deleted.
$su->do(q{INSERT INTO auth.users (id, email) VALUES
    ('00000000-0000-4000-8000-00000000000a', 'owner@example.com'),
    ('00000000-0000-4000-8000-00000000000b', 'other@example.com')});
$su->do(q{UPDATE subscription_settings SET tier = 'business'});
$su->do(q{INSERT INTO account_handles (user_id, platform_id, handle, visibility)
    SELECT u, p.id, h, v::visibility FROM platforms p,
        (VALUES ('00000000-0000-4000-8000-00000000000a'::uuid, 'owner_pub', 'public'),
                ('00000000-0000-4000-8000-00000000000a'::uuid, 'owner_priv', 'private'),
                ('00000000-0000-4000-8000-00000000000b'::uuid, 'other_pub', 'public')) x(u, h, v)
     WHERE p.name = 'youtube'});
$su->do(q{INSERT INTO handle_content (handle_id, platform_content_id, title, description, published_at,
                                     visibility, deleted_at)
    SELECT (SELECT array_agg(id ORDER BY handle) FROM account_handles)[1 + g % 3], 'c' || g,
           CASE WHEN g % 1000 = 7 THEN 'Sourdough bake ' || g ELSE 'Video ' || g || ' ' || w[1 + g % 9] END,
           'About ' || w[1 + (g / 9) % 9] || CASE WHEN g % 10 = 4 THEN ', with tips' ELSE '' END,
           now() - g * interval '1 minute',
           CASE WHEN g % 20 = 5 THEN 'private' ELSE 'public' END::visibility,
           CASE WHEN g % 97 = 0 THEN now() END
      FROM generate_series(1, 30000) g,
           (SELECT ARRAY['travel','garden','music','chess','yoga','camera','guitar','design','news'] AS w) words});
$su->do('VACUUM (ANALYZE) handle_content');
$su->do('ANALYZE account_handles');
my $owner = '00000000-0000-4000-8000-00000000000a';

# --- public.@@ is pg_catalog.@@ -----------------------------------------------------------
# The same answer through the GIN index (public.@@) as from a sequential
# scan with the built-in operator, for the kinds of query clients send.
for my $tq ("to_tsquery('english', 'sourdough')", "to_tsquery('english', 'tips & !garden')",
            "to_tsquery('english', 'sour:*')", "to_tsquery('english', 'sourdough:A')",
            "phraseto_tsquery('english', 'sourdough bake')", "websearch_to_tsquery('english', '\"with tips\" or chess')",
            "to_tsquery('english', '!tips')", "websearch_to_tsquery('english', 'the')") {
    $su->begin_work;
    $su->do('SET LOCAL enable_seqscan = off');
    my ($via_index) = $su->selectrow_array(
        "SELECT count(*) || '/' || coalesce(sum(hashtext(id::text)), 0) FROM handle_content WHERE search_vector OPERATOR(public.\@\@) $tq");
    my $plan = join "\n", map { $_->[0] } @{ $su->selectall_arrayref(
        "EXPLAIN SELECT id FROM handle_content WHERE search_vector OPERATOR(public.\@\@) $tq") };
    $su->do('SET LOCAL enable_seqscan = on; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_indexscan = off');
    my ($via_scan) = $su->selectrow_array(
        "SELECT count(*) || '/' || coalesce(sum(hashtext(id::text)), 0) FROM handle_content WHERE search_vector \@\@ $tq");
    $su->rollback;
    like($plan, qr/idx_handle_content_search/, "public.\@\@ is served by the GIN index: $tq");
    is($via_index, $via_scan, "public.\@\@ through the index = pg_catalog.\@\@ by a scan: $tq");
}
my ($leakproof) = $su->selectrow_array(q{SELECT proleakproof FROM pg_proc WHERE oid = 'public.sv_ts_match(tsvector, tsquery)'::regprocedure});
ok($leakproof, 'public.sv_ts_match is LEAKPROOF');
my ($builtin) = $su->selectrow_array(q{SELECT proleakproof FROM pg_proc WHERE oid = 'pg_catalog.ts_match_vq(tsvector, tsquery)'::regprocedure});
ok(!$builtin, 'pg_catalog.ts_match_vq is left as PostgreSQL ships it');

# --- the REST filters ---------------------------------------------------------------------
# What the translator (src/rest/sv_rest_translate.c) writes for
#   GET /rest/v1/handle_content?select=id,title&search_vector=<op>(english).<term>[&user_id=eq.<uid>]&limit=20
# (t/unit/test_rest_query.c pins the operator; t/431 runs them through the server).
my $api = $s->api;
sub rest_sql {
    my ($fn, $mine) = @_;
    return 'WITH pgrst_source AS (SELECT "handle_content"."id" AS "id", "handle_content"."title" AS "title" '
        . 'FROM public."handle_content" WHERE "handle_content"."search_vector" OPERATOR(public.@@) '
        . "$fn(\$1::regconfig, \$2)"
        . ($mine ? ' AND "handle_content"."user_id" = $3' : '')
        . ' AND "handle_content"."deleted_at" IS NULL LIMIT 20) '
        . 'SELECT NULL::bigint, pg_catalog.count(*), coalesce(pg_catalog.json_agg(_pgrst_s), \'[]\')::text '
        . 'FROM pgrst_source _pgrst_s';
}
sub plan_as {
    my ($role, $uid, $sql, $args, $mode) = @_;
    my $r = SV::Test::Pg->run_as_role($api, $role, $uid, sub {
        my ($dbh) = @_;
        $dbh->do("SET LOCAL plan_cache_mode = $mode");
        $dbh->do("PREPARE q AS $sql");
        my $exec = 'EXECUTE q(' . join(', ', map { $dbh->quote($_) } @$args) . ')';
        # the plan the 6th execution would use (custom or generic)
        $dbh->do($exec) for 1 .. 5;
        my $plan = join "\n", map { $_->[0] } @{ $dbh->selectall_arrayref("EXPLAIN $exec") };
        $dbh->do('DEALLOCATE q');
        return $plan;
    });
    return $r->{ok} ? $r->{value} : "ERROR: $r->{err}";
}
for my $op (['fts', 'to_tsquery'], ['plfts', 'plainto_tsquery'], ['phfts', 'phraseto_tsquery'],
            ['wfts', 'websearch_to_tsquery']) {
    my ($name, $fn) = @$op;
    for my $who (['anon', undef, 0], ['owner', $owner, 0], ['owner, user_id=eq.', $owner, 1]) {
        my ($label, $uid, $mine) = @$who;
        for my $mode (qw(force_custom_plan force_generic_plan)) {
            my $plan = plan_as($uid ? 'authenticated' : 'anon', $uid, rest_sql($fn, $mine),
                ['english', 'sourdough', ($mine ? $owner : ())], $mode);
            (my $m = $mode) =~ s/^force_|_plan$//g;
            like($plan, qr/Bitmap Index Scan on idx_handle_content_search/,
                "$name as $label ($m plan): the GIN index") or diag $plan;
            unlike($plan, qr/Seq Scan on handle_content/, "$name as $label ($m plan): no sequential scan");
            next unless $mine;
            # sql/023: user_id and the text search are both conditions of
            # the one GIN index, not a bitmap of all the user's rows ANDed
            # with the matches.
            like($plan, qr/Index Cond: \(\(user_id = .*\) AND \(search_vector OPERATOR\(public\.\@\@\)/,
                "$name as $label ($m plan): user_id is a condition of the GIN index") or diag $plan;
            unlike($plan, qr/BitmapAnd/, "$name as $label ($m plan): no BitmapAnd") or diag $plan;
        }
    }
}

# A common word ('tips', 3,000 of the 30,000 rows) with limit=20: the
# plan may scan, but must stop after about the 20 rows asked for, not
# read every match (a bitmap of all 3,000 postings, what the planner chose
# while the public policy held a sub-select, sql/022) nor the table.
# Counted from EXPLAIN ANALYZE: rows and postings read from handle_content
# and its indexes.
sub rows_read {
    my ($node) = @_;
    my $n = 0;
    if (($node->{'Relation Name'} // '') eq 'handle_content' || ($node->{'Index Name'} // '') =~ /^idx_handle_content/) {
        $n += ($node->{'Actual Rows'} // 0) + ($node->{'Rows Removed by Filter'} // 0)
            + ($node->{'Rows Removed by Index Recheck'} // 0);
    }
    $n += rows_read($_) for @{ $node->{Plans} // [] };
    return $n;
}
for my $who (['anon', undef], ['owner', $owner]) {
    my ($label, $uid) = @$who;
    my $r = SV::Test::Pg->run_as_role($api, $uid ? 'authenticated' : 'anon', $uid, sub {
        my ($dbh) = @_;
        $dbh->do('SET LOCAL plan_cache_mode = force_custom_plan');
        $dbh->do('PREPARE q AS ' . rest_sql('to_tsquery', 0));
        my $json = join '', map { $_->[0] } @{ $dbh->selectall_arrayref(
            q{EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE q('english', 'tips')}) };
        $dbh->do('DEALLOCATE q');
        return JSON::PP::decode_json($json)->[0]{Plan};
    });
    my $read = $r->{ok} ? rows_read($r->{value}) : "ERROR: $r->{err}";
    cmp_ok($read, '<', 1000, "fts on a common word as $label, limit 20: $read rows read, not the 3,000 matches");
}

# --- rpc search_content ---------------------------------------------------------------------
# Its statement runs inside PL/pgSQL: auto_explain prints the nested plan.
sub rpc_plans {
    my ($role, $uid, $query) = @_;
    my $claims = encode_json({ role => $role, $uid ? (sub => $uid) : () });
    my ($rc, $out, $err) = $pg->psql_rc(<<"SQL");
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = notice;
SET client_min_messages = notice;
BEGIN;
SELECT set_config('role', '$role', true), set_config('request.jwt.claims', '$claims', true) \\g /dev/null
SELECT count(*) FROM public.search_content('$query');
COMMIT;
SQL
    return $rc == 0 ? $err : "ERROR ($rc): $err";
}
for my $who (['anon', undef], ['owner', $owner]) {
    my ($label, $uid) = @$who;
    my $sel = rpc_plans($uid ? 'authenticated' : 'anon', $uid, 'sourdough');
    like($sel, qr/Bitmap Index Scan on idx_handle_content_search/,
        "search_content('sourdough') as $label: the GIN index") or diag $sel;
    unlike($sel, qr/Seq Scan on handle_content/, "search_content('sourdough') as $label: no sequential scan");
    my $common = rpc_plans($uid ? 'authenticated' : 'anon', $uid, 'tips');
    like($common, qr/Index Scan (?:Backward )?using idx_handle_content_live_published|Bitmap Index Scan on idx_handle_content_search/,
        "search_content('tips') as $label: an index") or diag $common;
    unlike($common, qr/Seq Scan on handle_content/, "search_content('tips') as $label: no sequential scan");
}

# --- the rpc's bound (sql/042, 046) ------------------------------------------------------------
# Whatever the term, search_content reads at most 32 (probe) + 201 (GIN
# step) + 4,000 (window) rows the caller may see, plus the hidden ones
# those scans pass over, plus at most 300 candidates read again by
# address to rank them (046). Counted here from EXPLAIN ANALYZE of every
# statement it runs (auto_explain, nested), on handle_content only: the
# rows its scans return are the visible ones, the rows they remove by
# filter the hidden ones (the match test of the window sits above its
# LIMIT, not on the scan); the GIN index's postings are index work,
# reported apart. Before 042, 'antique' below (in the 10,000 oldest rows)
# read its 10,000 matches or the 20,000 newer rows before them, and
# 'tips -tips' (no match, but the statistics call 'tips' common) read the
# whole table.
sub rpc_reads {
    my ($role, $uid, $query) = @_;
    my $claims = encode_json({ role => $role, $uid ? (sub => $uid) : () });
    (my $q = $query) =~ s/'/''/g;
    my ($rc, $out, $err) = $pg->psql_rc(<<"SQL");
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_analyze = on;
SET auto_explain.log_timing = off;
SET auto_explain.log_format = json;
SET auto_explain.log_level = notice;
SET client_min_messages = notice;
BEGIN;
SELECT set_config('role', '$role', true), set_config('request.jwt.claims', '$claims', true) \\g /dev/null
SELECT count(*) FROM public.search_content('$q', 'english', 100);
COMMIT;
SQL
    return { error => $err } if $rc != 0;
    my %r = (visible => 0, hidden => 0, postings => 0, statements => 0, reread => 0);
    my $walk;
    $walk = sub {
        my ($n) = @_;
        if (($n->{'Relation Name'} // '') eq 'handle_content') {
            $r{visible} += $n->{'Actual Rows'} // 0;
            $r{hidden} += ($n->{'Rows Removed by Filter'} // 0) + ($n->{'Rows Removed by Index Recheck'} // 0);
            $r{reread} += $n->{'Actual Rows'} // 0 if $n->{'Node Type'} eq 'Tid Scan';
        } elsif (($n->{'Node Type'} // '') eq 'Bitmap Index Scan') {
            $r{postings} += $n->{'Actual Rows'} // 0;
        }
        $walk->($_) for @{ $n->{Plans} // [] };
    };
    # one JSON document per statement, after each "duration: ... plan:"
    # (psql puts "psql:<stdin>:N: " before its notices), up to the first
    # closing brace at the start of a line
    for my $doc (split /NOTICE:\s+duration: [\d.]+ ms\s+plan:\n/, $err) {
        my ($json) = $doc =~ /\A(\{.*?^\})/ms or next;
        my $plan = eval { JSON::PP::decode_json($json) } or next;
        $r{statements}++;
        $walk->($plan->{Plan});
    }
    ($r{count}) = $out =~ /^(\d+)$/m;
    return \%r;
}
# 'antique' in the 10,000 oldest rows (published 20,001-30,000 minutes
# ago), beyond anyone's newest 4,000 visible rows.
$su->do(q{UPDATE handle_content SET description = description || ', antique'
           WHERE platform_content_id IN (SELECT 'c' || g FROM generate_series(20001, 30000) g)});
$su->do('VACUUM (ANALYZE) handle_content');
my $bound = 32 + 201 + 4000 + 300;
for my $who (['anon', undef], ['owner', $owner]) {
    my ($label, $uid) = @$who;
    my $role = $uid ? 'authenticated' : 'anon';
    # results: how many of the 100 asked for ('sourdough': 30 rows, some hidden)
    # 'antique': all its matches are older than the window, which is
    # topped up from the index's, so it still finds what was asked for.
    for my $t (['antique', 100], ['tips -tips', 0], ['tips', 100], ['sourdough', undef]) {
        my ($query, $want) = @$t;
        my $r = rpc_reads($role, $uid, $query);
        diag $r->{error} if $r->{error};
        my $what = "search_content('$query') as $label";
        cmp_ok($r->{statements} // 0, '>=', 2, "$what: its statements' plans were read");
        cmp_ok($r->{visible} // 1e9, '<=', $bound, "$what: $r->{visible} visible rows read (bound $bound)");
        cmp_ok(($r->{visible} // 1e9) + ($r->{hidden} // 0), '<', 10_000,
            "$what: $r->{visible} + $r->{hidden} hidden rows of handle_content read, $r->{postings} postings in GIN bitmaps");
        if (defined $want) {
            is($r->{count}, $want, "$what: $want results");
        } else {
            cmp_ok($r->{count} // 0, '>', 0, "$what: found");
            cmp_ok($r->{visible} + $r->{hidden}, '<', 150, "$what: a rare word reads its matches and the probe only");
        }
    }
}
# A common word ranks among its newest matches: 'tips' (one row in ten)
# fills its 200 candidates from the newest ~2,000 visible rows and stops.
my $tips = rpc_reads('anon', undef, 'tips');
cmp_ok($tips->{visible}, '<', 3000, "search_content('tips') as anon stops at 200 candidates: $tips->{visible} visible rows read");
is($tips->{postings}, 0, "search_content('tips') as anon: no GIN step (the probe found it common)");

# The top-up: 'antique' also in the 40 newest rows. The probe finds it
# recent, the window holds fewer matches than the 100 asked for, the GIN
# step more than 200: the window's matches and the index's 201 are read
# again by address, and no more (the 300 of the bound).
$su->do(q{UPDATE handle_content SET description = description || ', antique'
           WHERE platform_content_id IN (SELECT 'c' || g FROM generate_series(1, 40) g)});
$su->do('VACUUM (ANALYZE) handle_content');
for my $who (['anon', undef], ['owner', $owner]) {
    my ($label, $uid) = @$who;
    my $r = rpc_reads($uid ? 'authenticated' : 'anon', $uid, 'antique');
    diag $r->{error} if $r->{error};
    my ($in_window) = $su->selectrow_array(q{
        SELECT count(*) FROM handle_content c JOIN account_handles h ON h.id = c.handle_id
         WHERE c.platform_content_id IN (SELECT 'c' || g FROM generate_series(1, 40) g)
           AND c.deleted_at IS NULL AND (c.visibility = 'public' AND h.visibility = 'public' OR h.user_id = $1)},
        undef, $uid // '00000000-0000-0000-0000-000000000000');
    my $what = "search_content('antique') as $label, $in_window recent matches";
    is($r->{count}, 100, "$what: 100 results, topped up from the index");
    cmp_ok($r->{reread}, '>', $in_window, "$what: $r->{reread} candidates read again, more than the window's");
    cmp_ok($r->{reread}, '<=', $in_window + 201, "$what: at most the window's and the index's 201");
    cmp_ok($r->{visible} // 1e9, '<=', $bound, "$what: $r->{visible} visible rows read (bound $bound)");
}

done_testing();
