#!/usr/bin/perl
# Hostile and malformed /rest/v1 requests: every one gets a 4xx with a
# PostgREST-shaped JSON error, never a 5xx, and no worker dies.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use SV::Test;
use SV::Test::Stack;

my $secret = 'rest-err-secret-' . ('e' x 32);
my $s = SV::Test::Stack->new(workers => 2, conf => { jwt_secret => $secret });
my ($pg, $pool, $ngx) = ($s->pg, $s->pool, $s->ngx);

my $A = $s->user('a@example.com');
my $h = $s->handle($A, 'a');
$s->content($h, 'c1', title => 'hello');
my %A = (Authorization => 'Bearer ' . $s->jwt(user => $A));

my @pids = sort { $a <=> $b } $pool->worker_pids;
is(scalar @pids, 2, 'two workers');

sub hostile {
    my ($method, $path, %opt) = @_;
    my $res = $ngx->request($method, $path, headers => { %A, %{ $opt{headers} // {} } },
        defined $opt{body} ? (body => $opt{body}) : ());
    my $name = $opt{name} // "$method " . substr($path, 0, 80);
    my $code = $res->code;
    ok($code >= 400 && $code < 500, "$name: 4xx ($code)") or diag substr($res->as_string, 0, 500);
    if (($res->header('Content-Type') // '') =~ /json/) {
        my $doc = $ngx->json($res);
        ok(ref $doc eq 'HASH' && exists $doc->{code} && exists $doc->{message}, "$name: PostgREST error body");
    } else {
        ok($code == 414 || $code == 400 || $code == 413, "$name: rejected by nginx ($code)");
    }
    return $res;
}

my $T = '/rest/v1/handle_content';
hostile(GET => "$T?or=(title.eq.a", name => 'unbalanced parenthesis');
hostile(GET => "$T?or=((((title.eq.a)))", name => 'unbalanced nested parentheses');
hostile(GET => "$T?title=eq." . ('x' x 6000) . '&nope=eq.1', name => '6k-character value with an unknown column');
hostile(GET => "$T?title=eq." . ('x' x 20000), name => '20k-character value');
hostile(GET => "$T?title=frobnicate.1", name => 'unknown operator');
hostile(GET => "$T?title;drop%20table%20handle_content=eq.1", name => 'SQL in a column name');
hostile(GET => "$T?select=*,(select%201)", name => 'subquery in select');
hostile(GET => "$T?select=title::text);drop%20table%20x;--", name => 'SQL in a cast');
hostile(GET => "$T?order=title;delete%20from%20handle_content", name => 'SQL in order');
hostile(GET => "$T?title=eq.a%00b", name => 'NUL byte in a value');
hostile(GET => "$T?title=eq.%ff%fe%80", name => 'invalid UTF-8 in a value');
hostile(GET => "$T?%ff%fe=eq.1", name => 'invalid UTF-8 in a key');
hostile(GET => "$T?view_count=eq.notanumber", name => 'type error in a value');
hostile(GET => "$T?id=eq.not-a-uuid", name => 'invalid uuid');
hostile(GET => "$T?published_at=gt.yesterday-ish", name => 'invalid timestamp');
hostile(GET => "$T?visibility=eq.secret", name => 'invalid enum value');
hostile(GET => "$T?id=in.(" . join(',', map { "x$_" } 1 .. 1500) . ')', name => 'huge in. list of bad uuids');
hostile(GET => "$T?limit=-1", name => 'negative limit');
hostile(GET => "$T?limit=999999999999999999999999", name => 'huge limit');
hostile(GET => "$T?offset=-5", name => 'negative offset');
hostile(GET => "$T?select=id", name => 'inverted Range', headers => { Range => '9-1' });
hostile(GET => "$T?search_vector=fts.a%20%26%26%26%20b", name => 'broken tsquery');
hostile(GET => "$T?search_vector=fts(pg_catalog.nope).a", name => 'unknown fts config');
hostile(GET => "$T?title=like.%5B", name => 'odd like pattern') if 0;
hostile(GET => "$T?title=match.(", name => 'invalid regular expression');
hostile(GET => "$T?title=like(any).a*", name => '(any) without a list');
hostile(GET => "$T?title=like(some).{a}", name => 'unknown modifier');
hostile(GET => "$T?title=neq(any).{a}", name => 'modifier on neq');
hostile(GET => "$T?tags=eq(any).{a}", name => '(any) on an array column');
hostile(GET => "$T?view_count=gt(any).{1,abc}", name => 'type error in an (any) list');
hostile(GET => "$T?title=like(any).{%22a}", name => 'malformed array literal');
hostile(GET => "$T?title=match(all).{(}", name => 'invalid regular expression in an (all) list');
hostile(PATCH => "$T?title=like(any).{%22a}", body => '{"title": "changed"}', name => 'malformed (any) list on a write');
hostile(GET => '/rest/v1/pg_authid', name => 'catalog table');
hostile(GET => '/rest/v1/users', name => 'auth.users by name');
hostile(GET => '/rest/v1/auth.users', name => 'auth.users qualified');
hostile(GET => '/rest/v1/platform_credentials?select=encrypted_access_token', name => 'a token column of the credentials table');
hostile(GET => '/rest/v1/platform_connections?select=encrypted_access_token', name => 'secret column through the view');
hostile(GET => '/rest/v1/handle_content%22;drop', name => 'SQL in the table name');
hostile(POST => $T, body => '{"title": "x"', name => 'truncated JSON');
hostile(POST => $T, body => ('[' x 5000) . (']' x 5000), name => 'deeply nested JSON');
hostile(POST => $T, body => "{\"handle_id\": \"$h\", \"platform_content_id\": \"\xff\xfe\"}", name => 'invalid UTF-8 in JSON');
hostile(POST => $T, body => "{\"handle_id\": \"$h\", \"platform_content_id\": \"a\\u0000b\"}", name => 'escaped NUL in JSON');
hostile(POST => $T, body => '{"title": 1, "title\"); drop table x; --": 2}', name => 'SQL in a JSON key');
hostile(POST => $T, body => '[{"handle_id": 1}, 2]', name => 'mixed array');
hostile(POST => $T, body => 'a,b', headers => { 'Content-Type' => 'text/csv' }, name => 'CSV body');
hostile(POST => $T, body => "{\"handle_id\": \"$h\", \"platform_content_id\": \"g\", \"search_vector\": \"x\"}", name => 'generated column');
hostile(PATCH => "$T?title=eq.hello", body => '{"tags": "not an array"}', name => 'wrong JSON type for a column');
hostile(PATCH => "$T?title=eq.hello", body => '{"duration_seconds": -5}', name => 'check violation or missing grant');
hostile(POST => '/rest/v1/rpc/search_content', body => '{"query": "x", "max_results": "many"}', name => 'rpc argument type error');
hostile(POST => '/rest/v1/rpc/search_content', body => '{"query": "x", "config": "klingon"}', name => 'rpc unknown config');
hostile(POST => '/rest/v1/rpc/search_content', body => '"x"', name => 'rpc scalar body');
hostile(POST => '/rest/v1/rpc/nope', body => '{}', name => 'unknown rpc');
hostile(PUT => $T, body => '{}', name => 'PUT');

# --- Accept-Profile / Content-Profile (supabase-js's .schema('x')) ---------------------------
# Only public is exposed: PostgREST answers any other schema with 406
# PGRST106 instead of serving public's table of the same name. GET and
# HEAD name it in Accept-Profile, writes in Content-Profile.
my $su = $s->su;
my $pgrst106 = { code => 'PGRST106', details => undef, hint => undef,
                 message => 'The schema must be one of the following: public' };
sub profiled {
    my ($method, $path, $hdr, $schema, $body) = @_;
    my $res = $ngx->call($method, $path, headers => { %A, $hdr => $schema }, defined $body ? (body => $body) : ());
    return ($res, $ngx->json($res));
}
sub titles { join ',', @{ $su->selectcol_arrayref(q{SELECT title FROM handle_content ORDER BY title}) } }
my $titles = titles();
for my $case ([GET => "$T?select=title", 'Accept-Profile', 'private'],
              [GET => '/rest/v1/users?select=id', 'Accept-Profile', 'auth'],
              [GET => '/rest/v1/', 'Accept-Profile', 'auth'],
              [GET => "$T?select=title", 'Accept-Profile', 'Public'],
              [GET => "$T?select=title", 'Accept-Profile', ''],
              [GET => '/rest/v1/rpc/quota_status', 'Accept-Profile', 'extensions'],
              [POST => $T, 'Content-Profile', 'private', { handle_id => $h, platform_content_id => 'prof', title => 'profiled' }],
              [PATCH => "$T?title=eq.hello", 'Content-Profile', 'private', { title => 'profiled' }],
              [DELETE => "$T?title=eq.hello", 'Content-Profile', 'private'],
              [POST => '/rest/v1/rpc/check_quota', 'Content-Profile', 'auth', {}]) {
    my ($method, $path, $hdr, $schema, $body) = @$case;
    my ($r, $doc) = profiled($method, $path, $hdr, $schema, $body);
    is($r->code, 406, "$method $path with $hdr: '$schema': 406") or diag $r->content;
    is_deeply($doc, $pgrst106, "$method $path with $hdr: '$schema': PGRST106, PostgREST's message");
}
my ($pr) = profiled(HEAD => "$T?select=title", 'Accept-Profile', 'private');
is($pr->code, 406, 'HEAD with Accept-Profile: private: 406');
is(titles(), $titles, 'no write under another schema changed a row');
is($su->selectrow_array(q{SELECT count(*) FROM handle_content WHERE platform_content_id = 'prof'}), 0, 'nothing inserted');

my ($pok, $pdoc) = profiled(GET => "$T?select=title", 'Accept-Profile', 'public');
is($pok->code, 200, 'Accept-Profile: public: 200') or diag $pok->content;
is_deeply($pdoc, [{ title => 'hello' }], 'the public table');
is($pok->header('Content-Profile'), 'public', 'the answer names the schema, as PostgREST does');
($pok, $pdoc) = profiled(GET => "$T?select=title", 'Content-Profile', 'private');
is($pok->code, 200, 'a read ignores Content-Profile (PostgREST reads Accept-Profile)') or diag $pok->content;
($pok) = profiled(PATCH => "$T?title=eq.nothing-matches", 'Accept-Profile', 'private', { title => 'x' });
is($pok->code, 204, 'a write ignores Accept-Profile (PostgREST reads Content-Profile)') or diag $pok->content;
($pok, $pdoc) = profiled(PATCH => "$T?title=eq.hello&select=title", 'Content-Profile', 'public', { title => 'hello' });
is($pok->code . ' ' . ($pok->header('Content-Range') // ''), '204 0-0/*', 'Content-Profile: public on a write: the row updated')
    or diag $pok->content;
($pok, $pdoc) = profiled(POST => '/rest/v1/rpc/quota_status', 'Content-Profile', 'public', {});
is($pok->code, 200, 'Content-Profile: public on an rpc: served') or diag $pok->content;

# --- Accept: only JSON (and .single()'s object) is produced -----------------------------------
# .csv(), .geojson() and .explain() ask for what this server does not
# make: PostgREST's 406 PGRST107 naming the types asked for, not JSON
# the client did not ask for, and a write does not happen.
for my $case (['GET', "$T?select=title", 'text/csv', 'text/csv'],
              ['GET', "$T?select=title", 'application/geo+json', 'application/geo+json'],
              ['GET', "$T?select=title", 'application/vnd.pgrst.plan+text; for="application/json"; options=analyze',
               'application/vnd.pgrst.plan+text; for="application/json"; options=analyze'],
              ['GET', "$T?select=title", 'text/csv , text/plain', 'text/csv, text/plain'],
              ['GET', '/rest/v1/rpc/quota_status', 'text/csv', 'text/csv'],
              ['POST', $T, 'text/csv', 'text/csv', { handle_id => $h, platform_content_id => 'csv', title => 'csv' }],
              ['PATCH', "$T?title=eq.hello", 'text/csv', 'text/csv', { title => 'csv' }]) {
    my ($method, $path, $accept, $named, $body) = @$case;
    my $r = $ngx->call($method, $path, headers => { %A, Accept => $accept }, defined $body ? (body => $body) : ());
    is($r->code, 406, "$method $path, Accept: $accept: 406") or diag $r->content;
    is_deeply($ngx->json($r), { code => 'PGRST107', details => undef, hint => undef,
                                message => "None of these media types are available: $named" },
              "... PGRST107 naming what was asked for");
}
is(titles(), $titles, 'no write asking for CSV changed a row');
is($su->selectrow_array(q{SELECT count(*) FROM handle_content WHERE platform_content_id = 'csv'}), 0, 'nothing inserted');
for my $accept ('application/json', 'application/json, text/plain, */*', 'APPLICATION/JSON; charset=utf-8',
                'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'application/*', '') {
    my $r = $ngx->call('GET', "$T?select=title", headers => { %A, Accept => $accept });
    is($r->code, 200, "Accept: '$accept': 200 JSON") or diag $r->content;
}
my $one = $ngx->call('GET', "$T?select=title&title=eq.hello",
                     headers => { %A, Accept => 'application/vnd.pgrst.object+json' });
is($one->code, 200, '.single()\'s Accept still works') or diag $one->content;

# --- Stripped nulls: postgrest-js's .stripNulls() ------------------------------------------
# PostgREST's application/vnd.pgrst.array+json;nulls=stripped (and the
# object type for .single()): the body through json_strip_nulls, so a
# member whose value is null is left out, at any depth (a jsonb column's
# too); every other value stays, 0 and '' included. The answer names the
# type as PostgREST does. B's rows, so that A's above stay as they were.
my $B = $s->user('b@example.com');
my $hb = $s->handle($B, 'b');
$s->content($hb, 'n1', title => 'with nulls', description => '', metadata => '{"kept": 1, "gone": null}',
            visibility => 'private');
$s->content($hb, 'n2', description => 'no title', content_url => 'https://example.com/n2', visibility => 'private');
my %B = (Authorization => 'Bearer ' . $s->jwt(user => $B));
my $cols = 'platform_content_id,title,description,content_url,view_count,metadata';
my $list = "$T?select=$cols&handle_id=eq.$hb&order=platform_content_id";
my $strip_array = 'application/vnd.pgrst.array+json;nulls=stripped';
my $strip_object = 'application/vnd.pgrst.object+json;nulls=stripped';
my @full = ({ platform_content_id => 'n1', title => 'with nulls', description => '', content_url => undef,
              view_count => 0, metadata => { kept => 1, gone => undef } },
            { platform_content_id => 'n2', title => undef, description => 'no title',
              content_url => 'https://example.com/n2', view_count => 0, metadata => {} });
my @stripped = ({ platform_content_id => 'n1', title => 'with nulls', description => '', view_count => 0,
                  metadata => { kept => 1 } },
                { platform_content_id => 'n2', description => 'no title', content_url => 'https://example.com/n2',
                  view_count => 0, metadata => {} });
# The answer as a client sees it: status, Content-Type and body.
sub answer {
    my ($method, $path, $accept, %opt) = @_;
    my $r = $ngx->call($method, $path, headers => { %B, Accept => $accept, %{ $opt{headers} // {} } },
                       defined $opt{body} ? (body => $opt{body}) : ());
    return { status => $r->code, type => $r->header('Content-Type'), body => $ngx->json($r) // $r->content };
}
my $json_type = 'application/json; charset=utf-8';
my $array_type = 'application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8';
my $object_type = 'application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8';
is_deeply(answer(GET => $list, $strip_array), { status => 200, type => $array_type, body => \@stripped },
          "Accept: $strip_array: the null members left out, every other value kept, as PostgREST's type");
is_deeply(answer(GET => $list, 'application/vnd.pgrst.array+json'), { status => 200, type => $json_type, body => \@full },
          'application/vnd.pgrst.array+json without nulls=stripped: plain JSON, with the nulls');
is_deeply(answer(GET => "$list&platform_content_id=eq.n2", $strip_object),
          { status => 200, type => $object_type, body => $stripped[1] },
          ".single().stripNulls(): the one row without its nulls, as PostgREST's type");
is_deeply(answer(PATCH => "$T?platform_content_id=eq.n1&select=platform_content_id,title,description", $strip_array,
                 headers => { Prefer => 'return=representation' }, body => { title => undef }),
          { status => 200, type => $array_type, body => [{ platform_content_id => 'n1', description => '' }] },
          "an update's representation is stripped too: the nulled title left out");
$su->do(q{UPDATE handle_content SET title = 'with nulls' WHERE platform_content_id = 'n1'});

# --- .single() on an rpc -----------------------------------------------------------------------
# supabase.rpc('search_content', ...).single(): as PostgREST, the one row
# as an object under the object type; no row or several, 406 PGRST116 with
# the count in the details, on POST and on GET alike.
my $object_plain = 'application/vnd.pgrst.object+json; charset=utf-8';
my $rpc = '/rest/v1/rpc/search_content';
for my $method ('POST', 'GET') {
    my %call = $method eq 'POST' ? (body => { query => 'nulls' }) : ();
    my $path = $method eq 'POST' ? $rpc : "$rpc?query=nulls";
    my $one = answer($method => $path, 'application/vnd.pgrst.object+json', %call);
    is_deeply([$one->{status}, $one->{type}, ref $one->{body} eq 'HASH' && $one->{body}{title}],
              [200, $object_plain, 'with nulls'], "$method rpc .single(), one match: the row as an object")
        or diag explain $one;
}
for my $case (['nulls or title', 2], ['qqqzzzxx', 0]) {
    my ($query, $n) = @$case;
    is_deeply(answer(POST => $rpc, 'application/vnd.pgrst.object+json', body => { query => $query }),
              { status => 406, type => $json_type,
                body => { code => 'PGRST116', details => "The result contains $n rows", hint => undef,
                          message => 'JSON object requested, multiple (or no) rows returned' } },
              "rpc .single(), $n matches: 406 PGRST116");
}
is(scalar @{ answer(POST => $rpc, 'application/json', body => { query => 'nulls or title' })->{body} }, 2,
   'the same call without .single(): both rows in an array');

# --- q: ranks the ranges, as in PostgREST ------------------------------------------------------
# PostgREST (wai-extra's parseHttpAccept) sorts the ranges by q, then by
# how specific they are, and serves the first it makes. It refuses none
# for q=0 (RFC 9110's "not acceptable"): that only ranks it last. So do
# we: `Accept: application/json;q=0` alone is served JSON, as PostgREST
# serves it (this one holds on main too; it pins the choice).
is_deeply(answer(GET => $list, 'application/vnd.pgrst.object+json;q=0.5, application/json'),
          { status => 200, type => $json_type, body => \@full }, 'JSON ranked above the object: the array');
is_deeply(answer(GET => "$list&platform_content_id=eq.n1", 'application/vnd.pgrst.object+json;q=0, application/json;q=0.1'),
          { status => 200, type => $json_type, body => [$full[0]] }, 'q=0 ranks below q=0.1: the array');
is_deeply(answer(GET => $list, "application/json, $strip_array"), { status => 200, type => $array_type, body => \@stripped },
          'equal q: the range with a parameter ranks first');
is_deeply(answer(GET => $list, 'application/json;q=0'), { status => 200, type => $json_type, body => \@full },
          'application/json;q=0 alone: served JSON, as PostgREST does');

# --- PGRST107 quotes the client's bytes as valid UTF-8 -----------------------------------------
# The message carries at most 200 bytes of what was asked for: cut before
# a character that would not fit, never inside one, and a byte that is
# not UTF-8 becomes U+FFFD (as PostgREST decodes it), so that the body
# stays valid JSON text. json-c would copy the bytes as they are.
require Encode;
for my $case (['text/' . ('x' x 194) . "\xc3\xa9", 'text/' . ('x' x 194), 'a two-byte character across the 200-byte cut'],
              ["text/\xff\xfe", "text/\x{FFFD}\x{FFFD}", 'bytes that are not UTF-8']) {
    my ($accept, $named, $what) = @$case;
    my $res = $ngx->request('GET', "$T?select=title", headers => { %A, Accept => $accept });
    my $text = eval { Encode::decode('UTF-8', $res->content, Encode::FB_CROAK()) };
    my $err = defined $text ? eval { JSON::PP->new->decode($text) } : undef;
    is_deeply([$res->code, defined $text ? 'valid UTF-8' : 'invalid UTF-8', $err && $err->{message}],
              [406, 'valid UTF-8', "None of these media types are available: $named"],
              "406 PGRST107 for $what: valid UTF-8 JSON naming what was asked for") or diag $res->content;
}

# Prepared statements: a shape whose first runs fail (at execution) still
# works afterwards, on both workers.
for my $i (1 .. 4) {
    my $r = $ngx->request('GET', "$T?select=title&view_count=eq.notanumber", headers => \%A);
    is($r->code, 400, "failing run $i of a statement shape: 400");
}
for my $i (1 .. 6) {
    my $r = $ngx->request('GET', "$T?select=title&view_count=eq.0", headers => \%A);
    is($r->code, 200, "then the same shape succeeds ($i)") or diag $r->content;
}

# Still the same two workers, and they still answer.
my @after = sort { $a <=> $b } $pool->worker_pids;
is_deeply(\@after, \@pids, 'no worker died or was replaced');
my $res = $ngx->request('GET', "$T?select=title", headers => \%A);
is($res->code, 200, 'service still works');
is_deeply($ngx->json($res), [{ title => 'hello' }], 'and the data is intact');
unlike($pool->log, qr/status=5\d\d/, 'no 5xx in the access log');

# A PostgreSQL restart drops the workers' connections and with them the
# prepared statements: requests recover on the new connection.
$pg->restart;
my $ok = SV::Test::wait_until(sub {
    my $r = $ngx->request('GET', "$T?select=title", headers => \%A);
    return $r->code == 200;
}, 20);
ok($ok, 'service recovers after a PostgreSQL restart');
for my $i (1 .. 6) {
    my $r = $ngx->request('GET', "$T?select=title", headers => \%A);
    is($r->code, 200, "statement re-prepared on the new connection ($i)") or diag $r->content;
}

done_testing;
