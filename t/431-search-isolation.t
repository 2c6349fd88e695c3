#!/usr/bin/perl
# Visibility through the index-backed search path (sql/020, 021): the
# REST text-search filters (fts, plfts, phfts, wfts) and rpc search_content,
# as anon, as the owner and as another user, on a table of 20,000 rows.
# Each caller finds exactly what the policies admit (live public content of
# public, active handles, plus its own live content), nothing of anyone
# else's private, unlisted or soft-deleted rows or of rows on private or
# inactive handles; and such hidden rows change nothing another caller
# sees — not the order, the rank, the snippet or the count — even when they
# rank higher and are newer than everything visible (so that they would
# take the candidates' places if the cap of 200 counted them). Finally the
# searches really ran on the new path: PostgreSQL's statistics show index
# scans and not one sequential scan of handle_content while they ran, and
# the REST text searches were planned for their own term (unnamed).

use strict;
use warnings;
use Test::More;
use JSON::PP;
use SV::Test;
use SV::Test::Pg;
use SV::Test::Pool;
use SV::Test::Nginx;
use SV::Test::Stack;

plan skip_all => 'nginx not installed' unless SV::Test::Nginx::available();

# Every statement in the log: the REST text searches must run unnamed
# (planned for their own term), checked at the end.
my $s = SV::Test::Stack->new(pool => 0, pg_settings => { log_statement => 'all' });
my ($pg, $su) = ($s->pg, $s->su);
my $JSON = JSON::PP->new->canonical;
sub one { scalar $su->selectrow_array(@_) }

my ($A, $B) = map { $s->user($_) } 'a@example.com', 'b@example.com';
$su->do(q{UPDATE subscription_settings SET tier = 'business'});
my $yt = $s->platform('youtube');
sub handle {
    my ($uid, $name, $vis, $status) = @_;
    return one(q{INSERT INTO account_handles (user_id, platform_id, handle, visibility, active_status)
                 VALUES (?, ?, ?, ?, ?) RETURNING id}, undef, $uid, $yt, $name, $vis, $status // 'active');
}
my $hA = handle($A, 'a_public', 'public');
my $hA_priv = handle($A, 'a_private', 'private');
my $hA_off = handle($A, 'a_inactive', 'public', 'inactive');
my $hB = handle($B, 'b_public', 'public');

# 20,000 rows of B's that match none of the terms below: the planner then
# prefers the indexes to a scan, as on a real catalogue.
$su->do(q{INSERT INTO handle_content (handle_id, platform_content_id, title, description, published_at)
    SELECT ?, 'bg' || g, 'Video ' || g || ' ' || w[1 + g % 7], 'About ' || w[1 + (g / 7) % 7],
           now() - interval '400 days' + g * interval '1 minute'
      FROM generate_series(1, 20000) g,
           (SELECT ARRAY['travel','garden','music','chess','yoga','camera','guitar'] AS w) words},
    undef, $hB);

# 'zephyr': one row of each kind. key => [handle, visibility, deleted]
my %kind = (
    a_pub      => [$hA, 'public'],       a_private  => [$hA, 'private'],   a_unlisted => [$hA, 'unlisted'],
    a_deleted  => [$hA, 'public', 1],    a_on_priv  => [$hA_priv, 'public'], a_on_off  => [$hA_off, 'public'],
    b_pub      => [$hB, 'public'],       b_private  => [$hB, 'private'],   b_deleted  => [$hB, 'public', 1],
);
my %id;
for my $k (sort keys %kind) {
    my ($h, $vis, $del) = @{ $kind{$k} };
    $id{$k} = one(q{INSERT INTO handle_content (handle_id, platform_content_id, title, description, visibility,
                                                  published_at, deleted_at)
                    VALUES (?, ?, ?, 'zephyr winds over the hills', ?, now() - interval '1 day', ?) RETURNING id},
                  undef, $h, "z_$k", "Zephyr $k", $vis, $del ? '2025-06-01' : undef);
}
# 'quasar': 250 public rows of B's, more than the 200 candidates
# search_content ranks; the description only (weight B), older than now.
$su->do(q{INSERT INTO handle_content (handle_id, platform_content_id, title, description, published_at)
    SELECT ?, 'q' || g, 'Sky ' || g, 'a quasar seen from the garden, night ' || g, now() - g * interval '1 hour'
      FROM generate_series(1, 250) g}, undef, $hB);
$su->do('VACUUM (ANALYZE) handle_content');
$su->do('ANALYZE account_handles');

my @hidden_to_others = qw(a_private a_unlisted a_on_priv a_on_off);
my %see = (
    anon => [qw(a_pub b_pub)],
    A    => [qw(a_pub b_pub), @hidden_to_others],
    B    => [qw(a_pub b_pub b_private)],
);
my $visible_quasar = one(q{SELECT count(*) FROM handle_content WHERE handle_id = ? AND description LIKE '%quasar%'}, undef, $hB);

# Every sequential scan of handle_content so far is the setup's; from here
# on the searches must not add one (counted once every backend has flushed
# its statistics: at exit).
$su->disconnect;
sub stats {
    my $dbh = $pg->dbh(user => 'postgres');
    my $r = $dbh->selectrow_hashref(q{SELECT t.seq_scan, t.idx_scan, t.seq_tup_read + t.idx_tup_fetch AS tuples, i.idx_scan AS gin
        FROM pg_stat_user_tables t, pg_stat_user_indexes i
       WHERE t.relid = 'public.handle_content'::regclass AND i.indexrelid = 'public.idx_handle_content_search'::regclass});
    $dbh->disconnect;
    return $r;
}
sub quiet {    # no other client backend: every one has flushed its statistics
    wait_until(sub {
        my $dbh = $pg->dbh(user => 'postgres');
        my ($n) = $dbh->selectrow_array(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()});
        $dbh->disconnect;
        $n == 0;
    }, 20);
}
quiet();
my $before = stats();

my $secret = 'search-iso-secret-' . ('s' x 32);
my $pool = SV::Test::Pool->new(pg => $pg, workers => 2, conf => { jwt_secret => $secret });
$pool->start;
my $ngx = SV::Test::Nginx->new(pool => $pool);
$ngx->start;

sub jwt { SV::Test::jwt(secret => $secret, user => $_[0], email => "$_[0]\@example.com") }
my %who = (anon => {}, A => { Authorization => 'Bearer ' . jwt($A) }, B => { Authorization => 'Bearer ' . jwt($B) });
my $requests = 0;
sub call {
    my ($who, $method, $path, $body, %h) = @_;
    $requests++;
    my $res = $ngx->request($method, $path, headers => { %{ $who{$who} }, %h },
        defined $body ? (body => $JSON->encode($body)) : ());
    return ($res, $ngx->json($res));
}
my %key_of = reverse %id;
sub keys_of { [sort map { $key_of{ $_->{id} } // "other:$_->{id}" } @{ ref $_[0] eq 'ARRAY' ? $_[0] : [] }] }

# --- who finds what ------------------------------------------------------------------------
for my $op (qw(fts plfts phfts wfts)) {
    for my $w (sort keys %see) {
        my ($res, $doc) = call($w, 'GET', "/rest/v1/handle_content?select=id&search_vector=$op(english).zephyr",
            undef, Prefer => 'count=exact');
        is($res->code, 200, "$op as $w: 200") or diag $res->content;
        is_deeply(keys_of($doc), [sort @{ $see{$w} }], "$op as $w: exactly the rows the policies admit");
        like($res->header('Content-Range') // '', qr{/@{[scalar @{ $see{$w} }]}$}, "$op as $w: the exact count counts them only");
    }
}
my ($res, $doc) = call('B', 'GET', "/rest/v1/handle_content?select=id&search_vector=fts(english).zephyr&user_id=eq.$A");
is_deeply(keys_of($doc), ['a_pub'], "B filtering on A's user_id finds A's public row only");
($res, $doc) = call('A', 'GET', "/rest/v1/handle_content?select=id&search_vector=fts(english).zephyr&user_id=eq.$A");
is_deeply(keys_of($doc), [sort qw(a_pub), @hidden_to_others], "A with its own user_id filter: all its live rows");
($res, $doc) = call('anon', 'GET', '/rest/v1/handle_content?select=id&search_vector=fts(english).zephyr&deleted_at=not.is.null');
is_deeply(keys_of($doc), [], 'anon asking for soft-deleted matches: none');
($res, $doc) = call('A', 'GET', '/rest/v1/handle_content?select=id&search_vector=fts(english).zephyr&deleted_at=not.is.null');
is_deeply(keys_of($doc), ['a_deleted'], "A asking for its soft-deleted match: its own only (not B's)");
for my $w (sort keys %see) {
    ($res, $doc) = call($w, 'POST', '/rest/v1/rpc/search_content', { query => 'zephyr', max_results => 100 });
    is($res->code, 200, "search_content as $w: 200") or diag $res->content;
    is_deeply(keys_of($doc), [sort @{ $see{$w} }], "search_content as $w: exactly the rows the policies admit");
}

# --- hidden rows change nothing others see ----------------------------------------------------
sub observe {
    my ($w) = @_;
    my (undef, $rpc) = call($w, 'POST', '/rest/v1/rpc/search_content', { query => 'quasar', max_results => 100 });
    my (undef, $rpc20) = call($w, 'POST', '/rest/v1/rpc/search_content', { query => 'quasar night' });
    my ($r, $rest) = call($w, 'GET', '/rest/v1/handle_content?select=id,title&search_vector=wfts(english).quasar'
        . '&order=published_at.desc&limit=30', undef, Prefer => 'count=exact');
    return { rpc => $rpc, rpc20 => $rpc20, rest => $rest, count => $r->header('Content-Range') };
}
my %seen = map { $_ => observe($_) } qw(anon B);
is(scalar @{ $seen{anon}{rpc} // [] }, 100, 'quasar as anon: 100 results');
like($seen{anon}{count}, qr{/$visible_quasar$}, "quasar as anon: count $visible_quasar");
like($seen{anon}{rpc}[0]{snippet} // '', qr{<b>quasar</b>}, 'with snippets');

# A's hidden matches: newer than every visible one and ranked above them
# (the word twice in the title, weight A), 300 of them, of every hidden kind.
my $ins = $pg->dbh(user => 'postgres');
$ins->do(q{INSERT INTO handle_content (handle_id, platform_content_id, title, description, visibility,
                                       published_at, deleted_at)
    SELECT (ARRAY[?, ?, ?, ?, ?]::uuid[])[1 + g % 5], 'hq' || g, 'Quasar quasar secret ' || g,
           'quasar night quasar', (ARRAY['private', 'unlisted', 'public', 'public', 'public'])[1 + g % 5]::visibility,
           now() + interval '1 day', CASE WHEN g % 5 = 2 THEN now() END
      FROM generate_series(1, 300) g}, undef, $hA, $hA, $hA, $hA_priv, $hA_off);
$ins->do('ANALYZE handle_content');
$ins->disconnect;

for my $w (qw(anon B)) {
    my $now = observe($w);
    is_deeply($now->{rpc}, $seen{$w}{rpc}, "search_content('quasar') as $w: same rows, order, ranks and snippets");
    is_deeply($now->{rpc20}, $seen{$w}{rpc20}, "search_content('quasar night') as $w: the same");
    is_deeply($now->{rest}, $seen{$w}{rest}, "wfts quasar newest first as $w: the same rows");
    is($now->{count}, $seen{$w}{count}, "wfts quasar as $w: the same count");
}
($res, $doc) = call('A', 'POST', '/rest/v1/rpc/search_content', { query => 'quasar', max_results => 100 });
my $own = grep { ($_->{title} // '') =~ /^Quasar quasar secret/ } @{ $doc // [] };
is($own, 100, 'the owner does find them, ranked first: they would have displaced the others had they counted');
my @got = map { $_->{id} } @{ $doc // [] };

# --- on the index path ------------------------------------------------------------------------
$ngx->stop;
$pool->stop;
quiet();
my $after = stats();
my $chk = $pg->dbh(user => 'postgres');
is(scalar $chk->selectrow_array(q{SELECT count(*) FROM handle_content WHERE id = ANY (?) AND deleted_at IS NOT NULL},
    undef, \@got), 0, "none of the owner's results is soft-deleted");
$chk->disconnect;
cmp_ok($after->{gin}, '>=', $before->{gin} + $requests / 2, 'the searches used the GIN index');
is($after->{seq_scan}, $before->{seq_scan}, 'never a sequential scan of handle_content');
# Reading the rows the policies admit instead (~20,500 each, what the
# plans were before sql/020) would be ~20,000 tuples per request.
cmp_ok($after->{tuples} - $before->{tuples}, '<', $requests * 1000,
    "$requests requests read @{[$after->{tuples} - $before->{tuples}]} rows of handle_content: the matches, not the table");

# --- planned per term ------------------------------------------------------------------------
# The REST text searches run as unnamed statements, planned for their own
# term each time: a prepared statement could settle on a generic plan,
# which reads every posting of a common word (src/rest/sv_rest_query.h).
my @fts = grep { /OPERATOR\(public\.\@\@\)/ } split /\n/, ($pg->log // '');
my @exec = map { /execute ([^:]+):/ ? $1 : () } @fts;
cmp_ok(scalar @exec, '>=', 16, scalar(@exec) . ' text-search executions in the log');
is_deeply([grep { $_ ne '<unnamed>' } @exec], [], 'all of them unnamed');

# --- the window counts the caller's rows only (sql/042) -----------------------------------------
# search_content ranks a word with more than 200 visible matches among
# the caller's newest 4,000 visible rows. 4,100 rows without the word,
# newer than all others, that none of anon, A and B may see (a third
# user's private, unlisted and private-handle rows): were that window
# counted over every row, these would fill it and 'quasar' would find
# nothing. (Run here, after the statistics above: the scans pass over
# these hidden rows, which costs reads, not results.)
my $api = $pg->dbh(user => 'authenticator');
sub rpc_sql {
    my ($w) = @_;
    my $r = SV::Test::Pg->run_as_role($api, $w eq 'anon' ? 'anon' : 'authenticated', $w eq 'anon' ? undef : ($w eq 'A' ? $A : $B),
        q{SELECT id, rank, snippet FROM public.search_content('quasar', 'english', 100)});
    return $r->{ok} ? $r->{rows} : "ERROR: $r->{err}";
}
my %before_window = map { $_ => rpc_sql($_) } qw(anon A B);
is(scalar @{ $before_window{anon} }, 100, 'quasar as anon through SQL: 100 results');
$ins = $pg->dbh(user => 'postgres');
my ($C) = $ins->selectrow_array(q{INSERT INTO auth.users (email) VALUES ('c@example.com') RETURNING id});
$ins->do(q{UPDATE subscription_settings SET tier = 'business' WHERE user_id = ?}, undef, $C);
my @hC = map { scalar $ins->selectrow_array(q{INSERT INTO account_handles (user_id, platform_id, handle, visibility)
                                               VALUES (?, ?, ?, ?) RETURNING id}, undef, $C, $yt, "c_$_", $_) }
    qw(public private);
$ins->do(q{INSERT INTO handle_content (handle_id, platform_content_id, title, description, visibility,
                                       published_at)
    SELECT (ARRAY[?, ?, ?]::uuid[])[1 + g % 3], 'hx' || g, 'Draft ' || g, 'nothing to see',
           (ARRAY['private', 'unlisted', 'public'])[1 + g % 3]::visibility, now() + interval '2 days'
      FROM generate_series(1, 4100) g}, undef, $hC[0], $hC[0], $hC[1]);
$ins->do('ANALYZE handle_content');
$ins->disconnect;
for my $w (qw(anon A B)) {
    is_deeply(rpc_sql($w), $before_window{$w}, "search_content('quasar') as $w after 4,100 newer hidden rows: the same");
}

done_testing;
