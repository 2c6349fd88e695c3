#!/usr/bin/perl
# /rest/v1 reads through nginx: select lists, every filter operator, not.,
# or=/and=, order, limit/offset, the Range header, Prefer: count=exact with
# Content-Range and 206, .single() (PGRST116), HEAD, soft-deleted content.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use URI::Escape qw(uri_escape_utf8);
use SV::Test;
use SV::Test::Stack;

my $secret = 'rest-read-secret-' . ('r' x 32);
my $s = SV::Test::Stack->new(workers => 2, conf => { jwt_secret => $secret });
my $ngx = $s->ngx;
my $su = $s->su;

sub get { my ($path, %h) = @_; $ngx->call(delete $h{_method} // 'GET', $path, headers => \%h) }
sub q_ { uri_escape_utf8($_[0]) }
sub titles { [map { $_->{title} } @{ $_[0] }] }

# --- fixtures -----------------------------------------------------------------
my $A = $s->user('a@example.com');
my $B = $s->user('b@example.com');
my ($yt, $ig) = map { $s->platform($_) } qw(youtube instagram);
my $hA = $s->handle($A, 'alice');
my $hAi = $s->handle($A, 'alice_ig', platform => 'instagram');
my @rows = (
    # pcid, title, description, tags, views, published, visibility, deleted
    ['v1', 'Cooking pasta recipe', 'Easy dinner', '{food,pasta}', 100, '2025-01-01', 'public', 0],
    ['v2', 'Guitar lesson', 'Learn chords, fast', '{music}', 50, '2025-02-01', 'public', 0],
    ['v3', 'Travel vlog Paris', 'A recipe for fun', '{travel,food}', 300, '2025-03-01', 'public', 0],
    ['v4', 'Secret draft', undef, '{}', 0, undef, 'private', 0],
    ['v5', 'Old removed video', 'gone', '{}', 10, '2024-01-01', 'public', 1],
);
my %cid;
for my $r (@rows) {
    $cid{$r->[0]} = $s->content($hA, $r->[0], title => $r->[1], description => $r->[2], tags => $r->[3],
        published_at => $r->[5], visibility => $r->[6], deleted_at => $r->[7] ? '2025-06-01' : undef);
    $su->do(q{UPDATE handle_content SET view_count = ? WHERE id = ?}, undef, $r->[4], $cid{$r->[0]});
}
$s->content($hAi, 'i1', title => 'Insta reel', published_at => '2025-04-01');
my %A = (Authorization => 'Bearer ' . $s->jwt(user => $A, email => 'a@example.com'));

# --- platforms, anon -------------------------------------------------------------
my ($res, $doc) = get('/rest/v1/platforms?select=name,display_name&order=name');
is($res->code, 200, 'anon reads platforms') or diag $res->as_string;
is_deeply([map { $_->{name} } @$doc], [qw(instagram tiktok youtube)], 'ordered by name');
is_deeply([sort keys %{ $doc->[0] }], [qw(display_name name)], 'only the selected columns');
is($res->header('Content-Range'), '0-2/*', 'Content-Range without count');
like($res->header('Content-Type') // '', qr{^application/json}, 'JSON content type');

($res, $doc) = get('/rest/v1/platforms?select=n:name,active:is_active::text&name=eq.youtube');
is_deeply($doc, [{ n => 'youtube', active => 'true' }], 'alias and cast');

# The tiers, for a pricing page: anyone reads them; a user may not change
# them (the service role may, as its grants allow).
($res, $doc) = get('/rest/v1/subscription_tiers?select=tier,max_handles&order=max_handles');
is($res->code, 200, 'anon reads subscription_tiers') or diag $res->as_string;
is_deeply($doc, [{ tier => 'free', max_handles => 3 }, { tier => 'pro', max_handles => 10 },
                 { tier => 'business', max_handles => 50 }], 'the three tiers and their limits');
($res) = $ngx->call('PATCH', '/rest/v1/subscription_tiers?tier=eq.free', headers => { %A },
    body => { max_handles => 1000 });
is($res->code, 403, 'a user may not raise a limit') or diag $res->as_string;
is($su->selectrow_array(q{SELECT max_handles FROM subscription_tiers WHERE tier = 'free'}), 3,
   'the free tier is unchanged');

# --- content as owner -------------------------------------------------------------
($res, $doc) = get("/rest/v1/handle_content?select=title&platform_id=eq.$yt&order=published_at.desc.nullslast", %A);
is($res->code, 200, 'owner list') or diag $res->as_string;
is_deeply(titles($doc), ['Travel vlog Paris', 'Guitar lesson', 'Cooking pasta recipe', 'Secret draft'],
    'newest first, nulls last, soft-deleted hidden');
($res, $doc) = get("/rest/v1/handle_content?select=title&deleted_at=not.is.null", %A);
is_deeply(titles($doc), ['Old removed video'], 'soft-deleted rows visible when filtering on deleted_at');

my %cases = (
    'view_count=gt.60'           => ['Cooking pasta recipe', 'Travel vlog Paris'],
    'view_count=gte.100&view_count=lte.100' => ['Cooking pasta recipe'],
    'view_count=lt.50'           => ['Insta reel', 'Secret draft'],
    'view_count=neq.0'           => ['Cooking pasta recipe', 'Guitar lesson', 'Travel vlog Paris'],
    'title=like.*vlog*'          => ['Travel vlog Paris'],
    'title=ilike.*GUITAR*'       => ['Guitar lesson'],
    'title=in.(Guitar lesson,"Insta reel")' => ['Guitar lesson', 'Insta reel'],
    'description=is.null'        => ['Insta reel', 'Secret draft'],
    'description=not.is.null'    => ['Cooking pasta recipe', 'Guitar lesson', 'Travel vlog Paris'],
    'title=not.like.*a*'         => [],
    'tags=cs.{food}'             => ['Cooking pasta recipe', 'Travel vlog Paris'],
    'tags=ov.(music,travel)'     => ['Guitar lesson', 'Travel vlog Paris'],
    'search_vector=fts(english).' . q_('cooking & recipe') => ['Cooking pasta recipe'],
    'search_vector=plfts.' . q_('pasta recipe') => ['Cooking pasta recipe'],
    'search_vector=phfts(english).' . q_('travel vlog') => ['Travel vlog Paris'],
    'search_vector=wfts.' . q_('recipe -pasta') => ['Travel vlog Paris'],
    'title=fts.guitar'           => ['Guitar lesson'],
    'or=' . q_('(view_count.eq.50,title.eq.Insta reel)') => ['Guitar lesson', 'Insta reel'],
    'or=' . q_('(view_count.gt.200,and(view_count.gte.50,view_count.lt.100))') => ['Guitar lesson', 'Travel vlog Paris'],
    'not.or=(view_count.gt.10,description.is.null)' => [],
    'and=(view_count.gt.10,view_count.lt.200)' => ['Cooking pasta recipe', 'Guitar lesson'],
    'or=' . q_('(title.in.("Guitar lesson","Secret draft"),view_count.eq.300)') => ['Guitar lesson', 'Secret draft', 'Travel vlog Paris'],
    "platform_id=eq.$ig"         => ['Insta reel'],
    'visibility=eq.private'      => ['Secret draft'],
    'published_at=gt.2025-02-15T00:00:00Z' => ['Insta reel', 'Travel vlog Paris'],
    'title=isdistinct.Guitar lesson&platform_id=eq.' . $yt => ['Cooking pasta recipe', 'Secret draft', 'Travel vlog Paris'],
    # operator modifiers (postgrest-js's likeAnyOf, likeAllOf, ilikeAnyOf, ilikeAllOf)
    'title=like(any).{*vlog*,Guitar*}' => ['Guitar lesson', 'Travel vlog Paris'],
    'title=like(all).{*a*,*o*}'  => ['Cooking pasta recipe', 'Guitar lesson', 'Travel vlog Paris'],
    'title=ilike(any).{*GUITAR*,*REEL}' => ['Guitar lesson', 'Insta reel'],
    'title=ilike(all).{c*,*RECIPE}' => ['Cooking pasta recipe'],
    'title=not.ilike(any).{*vlog*,*draft*}' => ['Cooking pasta recipe', 'Guitar lesson', 'Insta reel'],
    'description=like(any).' . q_('{"Learn chords, fast",nothing}') => ['Guitar lesson'],
    'title=match(any).{^Guitar,reel$}' => ['Guitar lesson', 'Insta reel'],
    'title=imatch(all).{^t,paris$}' => ['Travel vlog Paris'],
    'view_count=eq(any).{50,300}' => ['Guitar lesson', 'Travel vlog Paris'],
    'view_count=gt(all).{40,60}' => ['Cooking pasta recipe', 'Travel vlog Paris'],
    'view_count=lt(any).{1,60}'  => ['Guitar lesson', 'Insta reel', 'Secret draft'],
    'view_count=gte(all).{100}'  => ['Cooking pasta recipe', 'Travel vlog Paris'],
    'view_count=lte(any).{0}'    => ['Insta reel', 'Secret draft'],
    'view_count=eq(any).{}'      => [],
    'visibility=eq(any).{private,unlisted}' => ['Secret draft'],
    'or=' . q_('(title.like(any).{Cooking*,Insta*},view_count.eq(any).{50})') => ['Cooking pasta recipe', 'Guitar lesson', 'Insta reel'],
);
for my $q (sort keys %cases) {
    ($res, $doc) = get("/rest/v1/handle_content?select=title&$q", %A);
    is($res->code, 200, "filter $q: 200") or diag $res->content;
    is_deeply([sort @{ titles($doc // []) }], $cases{$q}, "filter $q: rows");
}

# --- limit / offset / Range / count ------------------------------------------------
my $base = "/rest/v1/handle_content?select=title&order=view_count.desc";
($res, $doc) = get("$base&limit=2", %A);
is_deeply(titles($doc), ['Travel vlog Paris', 'Cooking pasta recipe'], 'limit');
is($res->header('Content-Range'), '0-1/*', 'Content-Range of a limited read');
is($res->code, 200, 'no count: 200');
($res, $doc) = get("$base&limit=2&offset=1", %A, Prefer => 'count=exact');
is($res->code, 206, 'partial with count: 206');
is_deeply(titles($doc), ['Cooking pasta recipe', 'Guitar lesson'], 'offset');
is($res->header('Content-Range'), '1-2/5', 'Content-Range with exact count');
($res, $doc) = get($base, %A, Range => '0-1', 'Range-Unit' => 'items', Prefer => 'count=exact');
is($res->code, 206, 'Range header: 206');
is_deeply(titles($doc), ['Travel vlog Paris', 'Cooking pasta recipe'], 'Range header rows');
is($res->header('Content-Range'), '0-1/5', 'Range header Content-Range');
($res, $doc) = get($base, %A, Prefer => 'count=exact');
is($res->code, 200, 'full set with count: 200');
is($res->header('Content-Range'), '0-4/5', 'full Content-Range');
($res, $doc) = get("$base&title=eq.nothing", %A, Prefer => 'count=exact');
is_deeply($doc, [], 'empty result is []');
is($res->header('Content-Range'), '*/0', 'empty with count: */0');
($res, $doc) = get("$base&title=eq.nothing", %A);
is($res->header('Content-Range'), '*/*', 'empty without count: */*');
($res, $doc) = get("$base&offset=50", %A, Prefer => 'count=exact');
is($res->code, 416, 'offset beyond the count: 416');
is($doc->{code}, 'PGRST103', 'PGRST103');
($res, $doc) = get("$base&limit=0", %A);
is_deeply($doc, [], 'limit=0');

# --- HEAD ----------------------------------------------------------------------------
($res) = get('/rest/v1/handle_content?select=*', %A, _method => 'HEAD', Prefer => 'count=exact');
is($res->code, 200, 'HEAD 200') or diag $res->as_string;
is($res->content, '', 'HEAD has no body');
is($res->header('Content-Range'), '0-4/5', 'HEAD Content-Range carries the count');
($res) = get('/rest/v1/handle_content?select=*&limit=1', %A, _method => 'HEAD',
             Accept => 'application/vnd.pgrst.array+json;nulls=stripped');
is($res->header('Content-Type'), 'application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8',
   'HEAD names the negotiated type, as GET would');

# --- single ---------------------------------------------------------------------------
my $obj = 'application/vnd.pgrst.object+json';
($res, $doc) = get("/rest/v1/handle_content?select=id,title&id=eq.$cid{v2}", %A, Accept => $obj);
is($res->code, 200, 'single: 200');
is_deeply($doc, { id => $cid{v2}, title => 'Guitar lesson' }, 'single: the object');
like($res->header('Content-Type') // '', qr{^application/vnd\.pgrst\.object\+json}, 'single: object media type');
($res, $doc) = get('/rest/v1/handle_content?select=id', %A, Accept => $obj);
is($res->code, 406, 'single with many rows: 406');
is($doc->{code}, 'PGRST116', 'PGRST116');
is($doc->{message}, 'JSON object requested, multiple (or no) rows returned', 'PostgREST message');
is($doc->{details}, 'The result contains 5 rows', 'details count');
($res, $doc) = get('/rest/v1/handle_content?select=id&title=eq.none', %A, Accept => $obj);
is($res->code, 406, 'single with no rows: 406');
is($doc->{details}, 'The result contains 0 rows', 'details 0');

# --- select=* has every column -----------------------------------------------------------
($res, $doc) = get("/rest/v1/handle_content?id=eq.$cid{v1}", %A);
is(scalar @$doc, 1, 'no select = *');
ok(exists $doc->[0]{$_}, "column $_ present") for qw(id handle_id user_id tags search_vector deleted_at);
is_deeply($doc->[0]{tags}, ['food', 'pasta'], 'arrays are JSON arrays');

# --- other exposed tables ------------------------------------------------------------------
($res, $doc) = get('/rest/v1/subscription_settings?select=user_id,tier', %A);
is_deeply($doc, [{ user_id => $A, tier => 'free' }], 'own subscription_settings');
($res, $doc) = get('/rest/v1/account_handles?select=handle&order=handle', %A);
is_deeply([map { $_->{handle} } @$doc], ['alice', 'alice_ig'], 'own handles');
for my $t (qw(ai_content_suggestions content_edit_history audit_log quota_usage_history platform_connections)) {
    ($res, $doc) = get("/rest/v1/$t?select=*", %A);
    is($res->code, 200, "$t readable by its owner") or diag $res->content;
    is(ref $doc, 'ARRAY', "$t: array");
}
# platform_credentials: owners read the non-secret columns, a token
# column (or *, which includes them) is a permission error.
($res, $doc) = get('/rest/v1/platform_credentials?select=platform_id,scopes,token_expires_at,is_active,last_verified_at', %A);
is($res->code, 200, 'platform_credentials metadata readable by its owner') or diag $res->content;
is(ref $doc, 'ARRAY', 'platform_credentials: array');
for my $col (qw(encrypted_access_token encrypted_refresh_token key_id *)) {
    ($res, $doc) = get("/rest/v1/platform_credentials?select=$col", %A);
    is($res->code, 403, "select=$col on platform_credentials: 403");
    is($doc->{code}, '42501', "select=$col: 42501 permission denied");
}

done_testing;
