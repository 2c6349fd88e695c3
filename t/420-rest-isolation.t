#!/usr/bin/perl
# Cross-user isolation through /rest/v1: user B never sees or changes A's
# rows with any verb; anon sees only live public content of public, active
# handles; a user_id in a body or a filter never widens access.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use SV::Test;
use SV::Test::Stack;

my $secret = 'rest-iso-secret-' . ('i' x 32);
my $s = SV::Test::Stack->new(workers => 2, conf => { jwt_secret => $secret });
my $ngx = $s->ngx;
my $su = $s->su;

sub call {
    my ($who, $method, $path, $body, %h) = @_;
    return $ngx->call($method, $path, headers => { %$who, %h }, body => $body);
}
sub one { scalar $su->selectrow_array(@_) }
sub ids { [sort map { $_->{id} } @{ ref $_[0] eq 'ARRAY' ? $_[0] : [] }] }

my $A = $s->user('a@example.com');
my $B = $s->user('b@example.com');
my $yt = $s->platform('youtube');
my $h_pub = $s->fixture_handle($A, 'a_public', 'public');
my $h_priv = $s->fixture_handle($A, 'a_private', 'private');
my $h_inactive = $s->fixture_handle($A, 'a_inactive', 'public', 'inactive');
my $c_pub = $s->fixture_content($h_pub, 'pub', 'public');
my $c_privvis = $s->fixture_content($h_pub, 'privvis', 'private');
my $c_unl = $s->fixture_content($h_pub, 'unl', 'unlisted');
my $c_del = $s->fixture_content($h_pub, 'del', 'public', 1);
my $c_on_priv = $s->fixture_content($h_priv, 'onpriv', 'public');
my $c_on_inactive = $s->fixture_content($h_inactive, 'oninactive', 'public');
my $h_b = $s->fixture_handle($B, 'b_handle', 'private');
my $c_b = $s->fixture_content($h_b, 'bcontent', 'private');
$su->do(q{INSERT INTO ai_content_suggestions (content_id, user_id, suggested_title, model) VALUES (?, ?, 'Better', 'm')}, undef, $c_privvis, $A);
$su->do(q{INSERT INTO audit_log (user_id, action) VALUES (?, 'a-action'), (?, 'b-action')}, undef, $A, $B);
$su->do(q{UPDATE handle_content SET title = 'edited' WHERE id = ?}, undef, $c_privvis);

my %anon = ();
# A user's token as GoTrue signs it, with the server's secret unless another is given.
sub jwt { my ($uid, $key) = @_; $s->jwt(user => $uid, email => "$uid\@example.com", ($key ? (secret => $key) : ())) }
my %A = (Authorization => 'Bearer ' . jwt($A));
my %B = (Authorization => 'Bearer ' . jwt($B));

# --- reads ------------------------------------------------------------------------
my ($res, $doc) = call(\%anon, 'GET', '/rest/v1/handle_content?select=id');
is($res->code, 200, 'anon content read') or diag $res->content;
is_deeply(ids($doc), [$c_pub], 'anon: only live public content of public, active handles');
($res, $doc) = call(\%anon, 'GET', '/rest/v1/handle_content?select=id&deleted_at=not.is.null');
is_deeply(ids($doc), [], 'anon: soft-deleted never shown, even when asked');
($res, $doc) = call(\%anon, 'GET', '/rest/v1/account_handles?select=id');
is_deeply(ids($doc), [$h_pub], 'anon: only public, active handles');
($res, $doc) = call(\%B, 'GET', '/rest/v1/handle_content?select=id');
is_deeply(ids($doc), [sort $c_pub, $c_b], 'B: public content plus its own');
($res, $doc) = call(\%B, 'GET', "/rest/v1/handle_content?select=id&user_id=eq.$A");
is_deeply(ids($doc), [$c_pub], "B filtering on A's user_id still sees only public content");
($res, $doc) = call(\%B, 'GET', "/rest/v1/handle_content?select=id&or=(user_id.eq.$A,visibility.eq.private)");
is_deeply(ids($doc), [sort $c_pub, $c_b], 'or= does not widen either');
($res, $doc) = call(\%A, 'GET', '/rest/v1/handle_content?select=id&deleted_at=not.is.null');
is_deeply(ids($doc), [$c_del], 'A sees its own soft-deleted content on request');

for my $t (qw(ai_content_suggestions content_edit_history audit_log subscription_settings quota_usage_history)) {
    ($res, $doc) = call(\%B, 'GET', "/rest/v1/$t?select=user_id");
    is($res->code, 200, "B reads $t") or diag $res->content;
    ok(!grep({ ($_->{user_id} // '') eq $A } @{ $doc // [] }), "B sees none of A's $t rows");
    ($res, $doc) = call(\%A, 'GET', "/rest/v1/$t?select=user_id");
    ok(!grep({ ($_->{user_id} // '') eq $B } @{ $doc // [] }), "A sees none of B's $t rows");
}
($res, $doc) = call(\%A, 'GET', '/rest/v1/content_edit_history?select=user_id');
ok(scalar @{ $doc // [] } >= 1, 'A sees its own history');
for my $t (qw(ai_content_suggestions content_edit_history audit_log subscription_settings quota_usage_history platform_connections)) {
    ($res, $doc) = call(\%anon, 'GET', "/rest/v1/$t");
    is($res->code, 401, "anon reading $t: 401 (no privilege)") or diag $res->content;
    is($doc->{code}, '42501', "anon $t: 42501");
}

# --- writes by B on A's rows --------------------------------------------------------------
($res, $doc) = call(\%B, 'PATCH', "/rest/v1/handle_content?id=eq.$c_pub", { title => 'hacked' }, Prefer => 'count=exact');
ok($res->code == 204 || $res->code == 404, "B PATCH A's public content: nothing (" . $res->code . ')');
is($res->header('Content-Range'), '*/0', 'zero rows touched');
is(one(q{SELECT title FROM handle_content WHERE id = ?}, undef, $c_pub), 'title pub', 'title unchanged');
($res, $doc) = call(\%B, 'PATCH', "/rest/v1/handle_content?user_id=eq.$A", { title => 'hacked' });
is(one(q{SELECT count(*) FROM handle_content WHERE title = 'hacked'}), 0, 'PATCH by user_id filter changes nothing');
($res, $doc) = call(\%B, 'DELETE', "/rest/v1/handle_content?id=eq.$c_pub");
ok(!defined one(q{SELECT deleted_at FROM handle_content WHERE id = ?}, undef, $c_pub), "B cannot soft-delete A's content");
($res, $doc) = call(\%B, 'DELETE', "/rest/v1/account_handles?id=eq.$h_inactive");
is(one(q{SELECT count(*) FROM account_handles WHERE id = ?}, undef, $h_inactive), 1, "B cannot delete A's handle");
($res, $doc) = call(\%B, 'DELETE', '/rest/v1/ai_content_suggestions?id=not.is.null', undef, Prefer => 'count=exact');
is($res->code . ' ' . ($res->header('Content-Range') // ''), '204 */0', "B's DELETE matching every row touches none of A's");
is(one(q{SELECT count(*) FROM ai_content_suggestions}), 1, "B cannot delete A's suggestions");
($res, $doc) = call(\%B, 'PATCH', "/rest/v1/account_handles?id=eq.$h_pub", { display_name => 'pwned' });
ok(!defined one(q{SELECT display_name FROM account_handles WHERE id = ?}, undef, $h_pub), "B cannot rename A's handle");

# --- user_id in a body never widens ----------------------------------------------------------
($res, $doc) = call(\%B, 'POST', '/rest/v1/account_handles', { user_id => $A, platform_id => $yt, handle => 'squat' });
is($res->code, 403, 'B inserting a handle for A: 403') or diag $res->content;
is($doc->{code}, '42501', 'RLS WITH CHECK: 42501');
($res, $doc) = call(\%B, 'POST', '/rest/v1/handle_content', { handle_id => $h_pub, platform_content_id => 'inject' });
ok($res->code >= 400 && $res->code < 500, "B inserting content on A's handle: 4xx (" . $res->code . ')');
is(one(q{SELECT count(*) FROM handle_content WHERE platform_content_id = 'inject'}), 0, 'no row');
($res, $doc) = call(\%B, 'POST', '/rest/v1/handle_content', { handle_id => $h_b, user_id => $A, platform_content_id => 'inject2' });
ok($res->code >= 400 && $res->code < 500, 'B inserting content claiming user A: 4xx');
($res, $doc) = call(\%B, 'PATCH', "/rest/v1/handle_content?id=eq.$c_b", { user_id => $A });
ok($res->code >= 400 && $res->code < 500, 'B moving its content to A: 4xx');
is(one(q{SELECT user_id FROM handle_content WHERE id = ?}, undef, $c_b), $B, 'owner unchanged');
($res, $doc) = call(\%B, 'POST', '/rest/v1/handle_content?on_conflict=handle_id,platform_content_id',
    { handle_id => $h_pub, platform_content_id => 'pub', title => 'upsert-hack' }, Prefer => 'resolution=merge-duplicates');
ok($res->code >= 400 && $res->code < 500, "B upserting over A's content: 4xx (" . $res->code . ')');
is(one(q{SELECT title FROM handle_content WHERE id = ?}, undef, $c_pub), 'title pub', 'upsert changed nothing');

# --- anon writes ------------------------------------------------------------------------------
($res, $doc) = call(\%anon, 'POST', '/rest/v1/account_handles', { platform_id => $yt, handle => 'anon' });
is($res->code, 401, 'anon insert: 401');
($res, $doc) = call(\%anon, 'PATCH', "/rest/v1/handle_content?id=eq.$c_pub", { title => 'x' });
is($res->code, 401, 'anon patch: 401');
($res, $doc) = call(\%anon, 'DELETE', "/rest/v1/account_handles?id=eq.$h_pub");
is($res->code, 401, 'anon delete: 401');

# --- bad tokens --------------------------------------------------------------------------------
($res, $doc) = call({ Authorization => 'Bearer ' . jwt($A, 'wrong-secret-' . ('x' x 32)) }, 'GET', '/rest/v1/handle_content');
is($res->code, 401, 'forged token: 401');
($res, $doc) = call({ Authorization => 'Bearer garbage' }, 'GET', '/rest/v1/platforms');
is($res->code, 401, 'malformed token: 401');

done_testing;
