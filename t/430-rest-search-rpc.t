#!/usr/bin/perl
# Search and functions through /rest/v1: the seed's textSearch() filter,
# rpc/search_content ranking (title > description > tags) with <b>
# snippets and RLS applied, rpc/check_quota (a JSON scalar, as supabase-js
# rpc() expects) and rpc/quota_status; only whitelisted functions exist;
# PGRST202 worded as PostgREST's; GET and HEAD run in a read-only
# transaction (a function that writes: 405, 25006).

use strict;
use warnings;
use Test::More;
use JSON::PP;
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64url);
use SV::Test;
use SV::Test::Pg;
use SV::Test::Pool;
use SV::Test::Nginx;

plan skip_all => 'nginx not installed' unless SV::Test::Nginx::available();
plan skip_all => 'PostgreSQL server not installed' unless SV::Test::Pg::available();

my $pg = SV::Test::Pg->new;
$pg->start;
my ($rc, $out) = $pg->migrate;
is($rc, 0, 'migrate') or diag $out;

my $secret = 'rest-rpc-secret-' . ('q' x 32);
my $pool = SV::Test::Pool->new(pg => $pg, workers => 2, conf => { jwt_secret => $secret });
$pool->start;
my $ngx = SV::Test::Nginx->new(pool => $pool);
$ngx->start;
my $su = $pg->dbh(user => 'postgres');
my $JSON = JSON::PP->new->canonical->allow_nonref;

sub jwt {
    my ($uid) = @_;
    my $h = encode_base64url($JSON->encode({ alg => 'HS256', typ => 'JWT' }));
    my $p = encode_base64url($JSON->encode({ sub => $uid, role => 'authenticated', aud => 'authenticated',
        email => "$uid\@example.com", iat => time, exp => time + 3600 }));
    return "$h.$p." . encode_base64url(hmac_sha256("$h.$p", $secret));
}
sub call {
    my ($method, $path, $body, %h) = @_;
    my $res = $ngx->request($method, $path, headers => \%h,
        defined $body ? (body => ref $body ? $JSON->encode($body) : $body) : ());
    return ($res, $ngx->json($res));
}

my ($A) = $su->selectrow_array(q{INSERT INTO auth.users (email) VALUES ('a@example.com') RETURNING id});
my ($B) = $su->selectrow_array(q{INSERT INTO auth.users (email) VALUES ('b@example.com') RETURNING id});
my ($yt) = $su->selectrow_array(q{SELECT id FROM platforms WHERE name = 'youtube'});
my ($hA) = $su->selectrow_array(q{INSERT INTO account_handles (user_id, platform_id, handle) VALUES (?, ?, 'chef') RETURNING id}, undef, $A, $yt);
my %c;
for my $r (['t', 'Cooking recipe basics', 'A beginner video', '{kitchen}', 'public'],
           ['d', 'Weekend vlog', 'My favourite cooking recipe', '{}', 'public'],
           ['g', 'Garden tour', 'Plants and flowers', '{cooking,recipe}', 'public'],
           ['p', 'Private cooking recipe', 'draft', '{}', 'private'],
           ['x', 'Unrelated', 'nothing here', '{}', 'public']) {
    ($c{$r->[0]}) = $su->selectrow_array(q{INSERT INTO handle_content (handle_id, platform_content_id, title, description, tags, visibility, published_at)
        VALUES (?, ?, ?, ?, ?, ?, now()) RETURNING id}, undef, $hA, @$r);
}
my %A = (Authorization => 'Bearer ' . jwt($A));
my %B = (Authorization => 'Bearer ' . jwt($B));

# --- textSearch('search_vector', 'cooking & recipe', {config: 'english'}) ------------------------
my ($res, $doc) = call('GET', '/rest/v1/handle_content?select=id,title&search_vector=fts(english).cooking%20%26%20recipe');
is($res->code, 200, 'textSearch as anon: 200') or diag $res->content;
is_deeply([sort map { $_->{id} } @$doc], [sort @c{qw(t d g)}], 'anon finds the three public matches');
($res, $doc) = call('GET', '/rest/v1/handle_content?select=id&search_vector=fts(english).cooking%20%26%20recipe', undef, %A);
is(scalar @$doc, 4, 'the owner also finds the private one');
($res, $doc) = call('GET', '/rest/v1/handle_content?select=id&search_vector=fts(nosuchconfig).cooking');
is($res->code, 400, 'unknown text search config: 400') or diag $res->content;

# --- rpc/search_content ------------------------------------------------------------------
($res, $doc) = call('POST', '/rest/v1/rpc/search_content', { query => 'cooking recipe' });
is($res->code, 200, 'search_content: 200') or diag $res->content;
is(ref $doc, 'ARRAY', 'set-returning function: array');
is_deeply([map { $_->{id} } @$doc], [@c{qw(t d g)}], 'ranked title > description > tags, private excluded for anon');
ok($doc->[0]{rank} > $doc->[1]{rank} && $doc->[1]{rank} > $doc->[2]{rank}, 'strictly decreasing rank');
like($doc->[0]{snippet}, qr{<b>Cooking</b> <b>recipe</b>}, 'snippet highlights the matches');
ok(exists $doc->[0]{$_}, "result has $_") for qw(id handle_id title rank snippet published_at);

# Creator text is HTML-escaped in the snippet; only the <b> tags are markup.
my ($evil) = $su->selectrow_array(q{INSERT INTO handle_content (handle_id, platform_content_id, title, description, visibility, published_at)
    VALUES (?, 'e', ?, ?, 'public', now()) RETURNING id}, undef, $hA,
    q{<script>alert("x")</script> Souffle & 'tips'}, 'souffle <img src=x onerror=alert(1)>');
($res, $doc) = call('POST', '/rest/v1/rpc/search_content', { query => 'souffle' });
is_deeply([map { $_->{id} } @$doc], [$evil], 'content with markup in it is found');
my $snip = $doc->[0]{snippet} // '';
unlike($snip, qr{<(?!/?b>)}, 'the snippet holds no markup but <b> tags') or diag $snip;
# (ts_headline trims the fragment at token boundaries: whole entities)
like($snip, qr{alert\(&quot;x&quot;\)&lt;/script&gt; <b>Souffle</b> &amp; &#39;tips&#39;}, 'the title is escaped, the match still highlighted') or diag $snip;
like($snip, qr{<b>souffle</b> &lt;img src=x onerror=}, 'and so is the description') or diag $snip;
unlike($snip, qr{&(?!amp;|lt;|gt;|quot;|#39;)}, 'no entity cut in half') or diag $snip;
is($doc->[0]{title}, q{<script>alert("x")</script> Souffle & 'tips'}, 'the title column is the stored text');
$su->do('DELETE FROM handle_content WHERE id = ?', undef, $evil);

($res, $doc) = call('POST', '/rest/v1/rpc/search_content', { query => 'cooking recipe', max_results => 1 }, %A);
is(scalar @$doc, 1, 'max_results');
($res, $doc) = call('POST', '/rest/v1/rpc/search_content', { query => 'private cooking' }, %A);
is_deeply([map { $_->{id} } @$doc], [$c{p}], 'owner finds private content');
($res, $doc) = call('POST', '/rest/v1/rpc/search_content', { query => 'private cooking' }, %B);
is_deeply($doc, [], 'another user does not');
($res, $doc) = call('GET', '/rest/v1/rpc/search_content?query=garden&config=english');
is_deeply([map { $_->{id} } @$doc], [$c{g}], 'GET with query-string arguments');
($res, $doc) = call('POST', '/rest/v1/rpc/search_content', { query => 'x', nope => 1 });
is($res->code, 404, 'unknown argument: 404');
is($doc->{code}, 'PGRST202', 'PGRST202 for an unknown argument');
is($doc->{message}, 'Could not find the function public.search_content(nope, query) in the schema cache',
   'the message lists every argument sent, sorted, as PostgREST');
is($doc->{details}, 'Searched for the function public.search_content with parameters nope, query or with a '
                  . 'single unnamed json/jsonb parameter, but no matches were found in the schema cache.', 'details');
is($doc->{hint}, 'Perhaps you meant to call the function public.search_content(config, max_results, query)', 'hint');
($res, $doc) = call('GET', '/rest/v1/rpc/search_content?query=x&zzz=1');
is($doc->{message}, 'Could not find the function public.search_content(query, zzz) in the schema cache', 'GET: the same');
($res, $doc) = call('POST', '/rest/v1/rpc/search_content', {});
is($res->code, 404, 'missing required argument: 404 (no such function signature)') or diag $res->content;
is($doc->{code}, 'PGRST202', 'PGRST202');
is($doc->{message}, 'Could not find the function public.search_content without parameters in the schema cache',
   'without parameters');

# --- quota rpcs ---------------------------------------------------------------------------
($res, $doc) = call('POST', '/rest/v1/rpc/check_quota', { _user_id => $A, _quota_type => 'syncs', _amount => 1 }, %A);
is($res->code, 200, 'check_quota: 200') or diag $res->content;
is($res->content, 'true', 'scalar result is a bare JSON true');
($res, $doc) = call('POST', '/rest/v1/rpc/check_quota', { _user_id => $A, _quota_type => 'syncs', _amount => 1000 }, %A);
is($res->content, 'false', 'over the limit: false');
($res, $doc) = call('POST', '/rest/v1/rpc/check_quota', { _user_id => $A, _quota_type => 'syncs' }, %B);
is($res->code, 403, "another user's quota: 403") or diag $res->content;
is($doc->{code}, '42501', 'insufficient_privilege');
($res, $doc) = call('POST', '/rest/v1/rpc/check_quota', { _user_id => $A, _quota_type => 'bogus' }, %A);
is($res->code, 400, 'bad quota type: 400');
($res, $doc) = call('POST', '/rest/v1/rpc/check_quota', { _user_id => $A, _quota_type => 'syncs' });
is($res->code, 401, 'anon may not call check_quota: 401');
($res, $doc) = call('POST', '/rest/v1/rpc/quota_status', undef, %A);
is($res->code, 200, 'quota_status without a body: 200') or diag $res->content;
is($doc->{tier}, 'free', 'quota_status object');
is($doc->{quotas}{syncs}{limit}, 30, 'nested limits');
($res, $doc) = call('GET', '/rest/v1/rpc/quota_status', undef, %A);
is($doc->{user_id}, $A, 'GET rpc');

# --- only whitelisted functions -------------------------------------------------------------
for my $fn (qw(increment_quota decrement_quota)) {
    ($res, $doc) = call('POST', "/rest/v1/rpc/$fn", { _user_id => $A, _quota_type => 'syncs' }, %A);
    is($res->code, 403, "rpc/$fn as a user: 403 (EXECUTE is service_role's only)") or diag $res->content;
    ($res, $doc) = call('POST', "/rest/v1/rpc/$fn", { _user_id => $A, _quota_type => 'syncs' });
    is($res->code, 401, "rpc/$fn as anon: 401");
}
is(scalar $su->selectrow_array(q{SELECT count(*) FROM quota_usage_history WHERE quota_type = 'syncs'}), 0, 'no quota was spent');
for my $fn (qw(sv_quota_spend sv_rest_expect_one pg_sleep delete_user)) {
    ($res, $doc) = call('POST', "/rest/v1/rpc/$fn", { _user_id => $A }, %A);
    is($res->code, 404, "rpc/$fn is not exposed");
    is($doc->{code}, 'PGRST202', "rpc/$fn: PGRST202");
    is($doc->{message}, "Could not find the function public.$fn(_user_id) in the schema cache", "rpc/$fn: message");
}

# --- GET and HEAD on an rpc run read-only, as in PostgREST -------------------------------------
my %S = (Authorization => 'Bearer ' . do {
    my $h = encode_base64url($JSON->encode({ alg => 'HS256', typ => 'JWT' }));
    my $p = encode_base64url($JSON->encode({ role => 'service_role', iss => 'streamvibe', iat => time, exp => time + 3600 }));
    "$h.$p." . encode_base64url(hmac_sha256("$h.$p", $secret));
});
my $spent = sub { scalar $su->selectrow_array(q{SELECT current_syncs_count FROM subscription_settings WHERE user_id = ?}, undef, $A) };
my $before = $spent->();
($res, $doc) = call('GET', "/rest/v1/rpc/increment_quota?_user_id=$A&_quota_type=syncs", undef, %S);
is($res->code, 405, 'GET on a function that writes: 405') or diag $res->content;
$doc = {} unless ref $doc eq 'HASH';
is($doc->{code}, '25006', "PostgreSQL's read_only_sql_transaction");
like($doc->{message} // '', qr/read-only transaction/, "PostgreSQL's message");
ok(exists $doc->{details} && exists $doc->{hint}, 'PostgREST error shape');
($res, $doc) = call('GET', "/rest/v1/rpc/increment_quota?_user_id=$A&_quota_type=syncs&_amount=2", undef, %S);
is($res->code, 405, 'again: 405');
$res = $ngx->request('HEAD', "/rest/v1/rpc/increment_quota?_user_id=$A&_quota_type=syncs", headers => \%S);
is($res->code, 405, 'HEAD: 405');
is($spent->(), $before, 'GET and HEAD spent no quota');
is(scalar $su->selectrow_array(q{SELECT count(*) FROM quota_usage_history WHERE quota_type = 'syncs'}), 0, 'and logged none');
($res, $doc) = call('POST', '/rest/v1/rpc/increment_quota', { _user_id => $A, _quota_type => 'syncs' }, %S);
is($res->code, 200, 'POST runs read-write') or diag $res->content;
is($res->content, 'true', 'and spends');
is($spent->(), $before + 1, 'once');
($res, $doc) = call('GET', "/rest/v1/rpc/check_quota?_user_id=$A&_quota_type=syncs", undef, %A);
is($res->code, 200, 'GET on a function that only reads: 200') or diag $res->content;
$su->do(q{UPDATE subscription_settings SET current_syncs_count = max_syncs_per_month,
          resets_at = now() - interval '1 day' WHERE user_id = ?}, undef, $A);
($res, $doc) = call('GET', "/rest/v1/rpc/check_quota?_user_id=$A&_quota_type=syncs", undef, %A);
is($res->code, 200, 'GET check_quota with a reset due: 200 (it resets only when it may write)') or diag $res->content;
is($res->content, 'true', 'answered from the effective usage');
is($spent->(), scalar $su->selectrow_array(q{SELECT max_syncs_per_month FROM subscription_settings WHERE user_id = ?}, undef, $A),
   'and nothing was written');
($res, $doc) = call('POST', '/rest/v1/rpc/check_quota', { _user_id => $A, _quota_type => 'syncs' }, %A);
is($res->content, 'true', 'POST check_quota: the same answer');
is($spent->(), 0, 'and it performs the reset, as before');
($res, $doc) = call('GET', '/rest/v1/rpc/search_content?query=garden');
is($res->code, 200, 'GET search: 200');
($res, $doc) = call('GET', '/rest/v1/handle_content?select=id&limit=1');
is($res->code, 200, 'a table read after a read-only rpc on the same connections: fine');
($res, $doc) = call('PATCH', "/rest/v1/handle_content?id=eq.$c{x}", { title => 'Still writable' }, %A);
is($res->code, 204, 'and writes still work (the read-only setting was local to its request)') or diag $res->content;
($res, $doc) = call('PATCH', '/rest/v1/rpc/search_content', { query => 'x' });
is($res->code, 405, 'PATCH on an rpc: 405');

done_testing;
