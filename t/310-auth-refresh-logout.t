#!/usr/bin/perl
# Refresh tokens rotate and are single use (reuse revokes the session;
# strict mode, refresh_token_reuse_interval = 0: t/370 covers the interval),
# logout revokes sessions (local / others / global), a password change
# signs out the other sessions, and a revoked session's access token is
# refused by GET /auth/v1/user.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use MIME::Base64 qw(decode_base64url);
use LWP::UserAgent;
use SV::Test qw(:DEFAULT run_parallel);
use SV::Test::Stack;

my $s = SV::Test::Stack->new(workers => 2,
    conf => { jwt_secret => 'refresh-test-secret-' . ('r' x 32), login_max_failures => 1000,
              refresh_token_reuse_interval => 0 });
my ($pool, $ngx) = ($s->pool, $s->ngx);
my $su = $s->su;

sub post { my ($path, $body) = @_; $ngx->call('POST', $path, body => $body) }
sub sid { my (undef, $p) = split /\./, $_[0]; return decode_json(decode_base64url($p))->{session_id} }
sub login {
    my ($email, $pw) = @_;
    my ($res, $doc) = post('/auth/v1/token?grant_type=password', { email => $email, password => $pw });
    is($res->code, 200, "login $email") or diag $res->as_string;
    return $doc;
}
sub refresh { return post('/auth/v1/token?grant_type=refresh_token', { refresh_token => $_[0] }) }
sub user_status {
    my ($res, $doc) = $ngx->call('GET', '/auth/v1/user', token => $_[0]);
    return ($res->code, $doc);
}
# GET /auth/v1/user with $tok answers $status.
sub user_is {
    my ($tok, $status, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    # Without a token the answer is 401 no_authorization, whatever the
    # session's state: say that the request that should have given one
    # failed, rather than let a 401 read like a session check's answer.
    is((user_status($tok))[0], $status, $name)
        or defined $tok or diag "$name: no token to send (the login or refresh that gave it failed above)";
}
sub err_is {
    my ($res, $doc, $status, $code, $name) = @_;
    is($res->code, $status, "$name: $status") or diag $res->as_string;
    is($doc && $doc->{error_code}, $code, "$name: $code");
    is($doc && $doc->{code}, $status, "$name: code field");
}

my ($res, $s0) = post('/auth/v1/signup', { email => 'carol@example.com', password => 'carol password' });
is($res->code, 200, 'signup') or diag $res->as_string;
my $uid = $s0->{user}{id};
my $session = sid($s0->{access_token});

# --- rotation -----------------------------------------------------------
my ($r1, $s1) = refresh($s0->{refresh_token});
is($r1->code, 200, 'refresh 200') or diag $r1->as_string;
for my $k (qw(access_token token_type expires_in expires_at refresh_token user)) {
    ok(defined $s1->{$k}, "refresh response has $k");
}
isnt($s1->{refresh_token}, $s0->{refresh_token}, 'a new refresh token');
is(sid($s1->{access_token}), $session, 'same session');
is($s1->{user}{id}, $uid, 'same user');
is($su->selectrow_array('SELECT count(*) FROM auth.refresh_tokens WHERE session_id = ?', undef, $session), 2,
   'two tokens in the session');
is($su->selectrow_array('SELECT count(*) FROM auth.refresh_tokens WHERE session_id = ? AND NOT revoked', undef, $session),
   1, 'only the newest is live');
is($su->selectrow_array('SELECT count(*) FROM auth.refresh_tokens WHERE session_id = ? AND parent IS NOT NULL', undef, $session),
   1, 'the child records its parent');
user_is($s1->{access_token}, 200, 'new access token works');

my ($r2, $s2) = refresh($s1->{refresh_token});
is($r2->code, 200, 'second rotation');

# --- reuse detection ----------------------------------------------------
($res, my $doc) = refresh($s0->{refresh_token});
err_is($res, $doc, 400, 'refresh_token_already_used', 'reusing a spent token');
is($doc->{msg}, 'Invalid Refresh Token: Already Used', 'GoTrue message');
ok($su->selectrow_array('SELECT revoked_at IS NOT NULL FROM auth.sessions WHERE id = ?', undef, $session),
   'the session is revoked');
($res, $doc) = refresh($s2->{refresh_token});
err_is($res, $doc, 400, 'refresh_token_not_found', 'even the newest token of that session is dead');
(my $code, $doc) = user_status($s2->{access_token});
is($code, 403, 'GET /user refuses an access token of the revoked session');
is($doc->{error_code}, 'session_not_found', 'session_not_found');

# --- bad refresh input ----------------------------------------------------
($res, $doc) = refresh('not-a-token');
err_is($res, $doc, 400, 'refresh_token_not_found', 'unknown token');
($res, $doc) = refresh('');
err_is($res, $doc, 400, 'validation_failed', 'empty token');
($res, $doc) = post('/auth/v1/token?grant_type=refresh_token', { refresh_token => [1] });
err_is($res, $doc, 400, 'validation_failed', 'non-string token');
($res, $doc) = post('/auth/v1/token?grant_type=refresh_token', {});
err_is($res, $doc, 400, 'validation_failed', 'no token');
($res, $doc) = refresh("x' OR 1=1 --");
err_is($res, $doc, 400, 'refresh_token_not_found', 'SQL-ish token');
($res, $doc) = refresh('A' x 100000);
ok($res->code == 400 || $res->code == 413, 'huge token: 4xx') or diag $res->code;

# --- logout (local) -------------------------------------------------------
my $a = login('carol@example.com', 'carol password');
my $b = login('carol@example.com', 'carol password');
$res = $ngx->call('POST', '/auth/v1/logout', token => $a->{access_token});
is($res->code, 204, 'logout 204') or diag $res->as_string;
is($res->content, '', 'no body');
user_is($a->{access_token}, 403, 'logged-out access token refused by GET /user');
($res, $doc) = refresh($a->{refresh_token});
err_is($res, $doc, 400, 'refresh_token_not_found', 'refresh after logout');
user_is($b->{access_token}, 200, 'the other session is untouched by a local logout');
($res, $doc) = refresh($b->{refresh_token});
is($res->code, 200, 'and can still refresh');
$b = $doc;
$res = $ngx->call('POST', '/auth/v1/logout?scope=local', token => $a->{access_token});
# GoTrue checks the session on /logout too; supabase-js treats 403 as
# signed out already
err_is($res, $ngx->json($res), 403, 'session_not_found', 'logging out twice: the session is gone');
($code) = user_status($b->{access_token});
is($code, 200, 'and nothing else was signed out');

# --- logout (others) ------------------------------------------------------
my $c = login('carol@example.com', 'carol password');
$res = $ngx->call('POST', '/auth/v1/logout?scope=others', token => $c->{access_token});
is($res->code, 204, 'logout others 204');
user_is($c->{access_token}, 200, 'scope=others keeps the current session');
user_is($b->{access_token}, 403, 'scope=others ends the other sessions');

# --- logout (global) ------------------------------------------------------
my $d = login('carol@example.com', 'carol password');
$res = $ngx->call('POST', '/auth/v1/logout?scope=global', token => $c->{access_token});
is($res->code, 204, 'logout global 204');
user_is($c->{access_token}, 403, 'global: current session ended');
user_is($d->{access_token}, 403, 'global: every session ended');
($res, $doc) = refresh($d->{refresh_token});
is($res->code, 400, 'global: refresh fails');

# --- other grants -----------------------------------------------------------
($res, $doc) = post('/auth/v1/token?grant_type=client_credentials', {});
err_is($res, $doc, 400, 'invalid_credentials', 'an unsupported grant type (GoTrue answers invalid_credentials)');
is($doc && $doc->{msg}, 'unsupported_grant_type', "GoTrue's message");

# --- logout errors --------------------------------------------------------
my $e = login('carol@example.com', 'carol password');
$res = $ngx->call('POST', '/auth/v1/logout?scope=everyone', token => $e->{access_token});
err_is($res, $ngx->json($res), 400, 'validation_failed', 'bad scope');
$res = $ngx->request('POST', '/auth/v1/logout');
err_is($res, $ngx->json($res), 401, 'no_authorization', 'logout without a token');
$res = $ngx->call('POST', '/auth/v1/logout', token => 'garbage');
err_is($res, $ngx->json($res), 403, 'bad_jwt', 'logout with a garbage token');

# --- another user's tokens --------------------------------------------------
($res, my $dave) = post('/auth/v1/signup', { email => 'dave@example.com', password => 'dave password' });
is($res->code, 200, 'dave signs up');
($res, $doc) = refresh($dave->{refresh_token});
is($doc->{user}{id}, $dave->{user}{id}, "dave's refresh token yields dave");
$res = $ngx->call('POST', '/auth/v1/logout?scope=global', token => $doc->{access_token});
is($res->code, 204, 'dave logs out globally');
user_is($e->{access_token}, 200, "dave's global logout does not touch carol");

# --- password change signs out the other sessions --------------------------
my $x = login('carol@example.com', 'carol password');
my $y = login('carol@example.com', 'carol password');
$res = $ngx->call('PUT', '/auth/v1/user', token => $x->{access_token},
    body => { password => 'carol new password' });
is($res->code, 200, 'password change') or diag $res->as_string;
user_is($x->{access_token}, 200, 'the session that changed it continues');
user_is($y->{access_token}, 403, 'other sessions are signed out');
($res, $doc) = refresh($y->{refresh_token});
is($res->code, 400, "and cannot refresh");

# --- parallel use of one refresh token: exactly one wins -----------------
my $p = login('carol@example.com', 'carol new password');
my @codes = run_parallel(4, sub {
    # a connection of its own: the parent's kept-alive one is shared
    my $ua = LWP::UserAgent->new(keep_alive => 0, timeout => 30, env_proxy => 0);
    return $ngx->call('POST', '/auth/v1/token?grant_type=refresh_token', ua => $ua,
        body => { refresh_token => $p->{refresh_token} })->code;
});
is(scalar(grep { $_ eq '200' } @codes), 1, 'four concurrent refreshes with one token: exactly one succeeds')
    or diag "codes: @codes";

unlike($pool->log, qr/status=500/, 'no 500 at all');
$s->stop;
done_testing;
