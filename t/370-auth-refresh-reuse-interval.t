#!/usr/bin/perl
# GoTrue's refresh token reuse interval: a refresh token that was rotated
# less than refresh_token_reuse_interval seconds ago still refreshes (two
# tabs or an SSR server refreshing at the same moment), and gets the
# session's live refresh token back, as GoTrue answers: one live chain per
# session, never a second one. Reused after the interval it means a stolen
# copy: the whole session is revoked, as in strict mode (interval 0, see
# t/310), also when it is the parent of the live token (GoTrue would still
# hand that one out; we stop at the interval).

use strict;
use warnings;
use Test::More;
use JSON::PP;
use MIME::Base64 qw(decode_base64url);
use Time::HiRes ();
use LWP::UserAgent;
use SV::Test qw(:DEFAULT run_parallel);
use SV::Test::Stack;

my $interval = 4;
my $s = SV::Test::Stack->new(workers => 3,
    conf => { jwt_secret => 'reuse-test-secret-' . ('i' x 32), login_max_failures => 1000,
              refresh_token_reuse_interval => $interval });
my ($pool, $ngx) = ($s->pool, $s->ngx);
my $su = $s->su;

sub post { my ($path, $body) = @_; $ngx->call('POST', $path, body => $body) }
sub sid { my (undef, $p) = split /\./, $_[0]; return decode_json(decode_base64url($p))->{session_id} }
sub login {
    my ($res, $doc) = post('/auth/v1/token?grant_type=password',
                           { email => 'erin@example.com', password => 'erin password' });
    is($res->code, 200, 'login') or diag $res->as_string;
    return $doc;
}
sub refresh { return post('/auth/v1/token?grant_type=refresh_token', { refresh_token => $_[0] }) }
sub user_code { scalar($ngx->call('GET', '/auth/v1/user', token => $_[0]))->code }
sub revoked { $su->selectrow_array('SELECT revoked_at IS NOT NULL FROM auth.sessions WHERE id = ?', undef, $_[0]) }
# waits until $t0 + $secs (a rotation's time as the client saw it)
sub sleep_until { my $d = $_[0] - Time::HiRes::time(); Time::HiRes::sleep($d) if $d > 0 }

my ($res, $s0) = post('/auth/v1/signup', { email => 'erin@example.com', password => 'erin password' });
is($res->code, 200, 'signup') or diag $res->as_string;
my $session = sid($s0->{access_token});

sub live_tokens {
    return $su->selectrow_array('SELECT count(*) FROM auth.refresh_tokens WHERE session_id = ? AND NOT revoked',
                                undef, $_[0]);
}

# --- within the interval: two tabs refresh with the same token -------------
my $t0 = Time::HiRes::time();
my ($r1, $tab1) = refresh($s0->{refresh_token});
is($r1->code, 200, 'tab 1 refreshes') or diag $r1->as_string;
my ($r2, $tab2) = refresh($s0->{refresh_token});
is($r2->code, 200, 'tab 2 refreshes with the same (just rotated) token: 200, not a revocation')
    or diag $r2->as_string;
ok($tab2->{access_token} && $tab2->{refresh_token}, 'tab 2 gets a full session');
is(sid($tab2->{access_token}), $session, 'of the same session');
is($tab2->{user}{id}, $s0->{user}{id}, 'same user');
is($tab2->{refresh_token}, $tab1->{refresh_token}, "tab 2 gets the session's live refresh token, the one tab 1 got");
isnt($tab2->{refresh_token}, $s0->{refresh_token}, 'not the old one');
ok(!revoked($session), 'the session is not revoked');
is(user_code($tab1->{access_token}), 200, "tab 1's access token works");
is(user_code($tab2->{access_token}), 200, "tab 2's access token works");
is(live_tokens($session), 1, 'one live refresh token in the session: one chain');

# tab 1 carries on; tab 2, one step behind, catches up with it
($res, my $t1b) = refresh($tab1->{refresh_token});
is($res->code, 200, 'tab 1 refreshes again') or diag $res->as_string;
($res, my $t2b) = refresh($tab2->{refresh_token});
is($res->code, 200, 'tab 2 refreshes with the token both hold') or diag $res->as_string;
is($t2b->{refresh_token}, $t1b->{refresh_token}, 'and gets the live token again');
($res, my $t0b) = refresh($s0->{refresh_token});
is($res->code, 200, 'even the first token, two rotations back, within its interval') or diag $res->as_string;
is($t0b->{refresh_token}, $t1b->{refresh_token}, 'gets the live token');
is(live_tokens($session), 1, 'still one live token');
ok(!revoked($session), 'session still live');

# a later replay is still detected: the first token, once its interval is over
sleep_until($t0 + $interval + 1.5);
($res, my $doc) = refresh($s0->{refresh_token});
is($res->code, 400, 'the first token replayed after its interval: 400') or diag $res->as_string;
is($doc && $doc->{error_code}, 'refresh_token_already_used', 'refresh_token_already_used');
ok(revoked($session), 'the session is revoked');
($res, $doc) = refresh($t1b->{refresh_token});
is($doc && $doc->{error_code}, 'refresh_token_not_found', 'and its live token with it');

# --- concurrent refreshes with one token: all succeed within the interval ----
my $p = login();
my $psession = sid($p->{access_token});
my @tokens = run_parallel(4, sub {
    my $ua = LWP::UserAgent->new(keep_alive => 0, timeout => 30, env_proxy => 0);
    my ($r, $d) = $ngx->call('POST', '/auth/v1/token?grant_type=refresh_token', ua => $ua,
        body => { refresh_token => $p->{refresh_token} });
    return $r->code == 200 && $d ? $d->{refresh_token} // 'failed' : 'failed';
});
my %got;
$got{$_}++ for @tokens;
ok(!$got{failed}, 'four concurrent refreshes with one token: all succeed (SSR + browser race)');
is(scalar keys %got, 1, 'and all four get the same refresh token');
is(live_tokens($psession), 1, 'one live token');
ok(!revoked($psession), 'and the session survives');

# --- after the interval: reuse revokes the session ------------------------------
my $q = login();
my $qsession = sid($q->{access_token});
$t0 = Time::HiRes::time();
my ($rq, $q1) = refresh($q->{refresh_token});
is($rq->code, 200, 'rotation') or diag $rq->as_string;
sleep_until($t0 + $interval + 1.5);
($res, $doc) = refresh($q->{refresh_token});
is($res->code, 400, 'reuse after the interval: 400, though its child is the live token and unused') or diag $res->as_string;
is($doc && $doc->{error_code}, 'refresh_token_already_used', 'refresh_token_already_used');
is($doc && $doc->{msg}, 'Invalid Refresh Token: Already Used', 'GoTrue message');
ok(revoked($qsession), 'the session is revoked');
($res, $doc) = refresh($q1->{refresh_token});
is($doc && $doc->{error_code}, 'refresh_token_not_found', "the newest token of the session is dead too");
is(user_code($q1->{access_token}), 403, 'its access token is refused by GET /user');

# --- the interval starts at the rotation and does not grow with reuse ----------
my $r = login();
my $rsession = sid($r->{access_token});
$t0 = Time::HiRes::time();
($res) = refresh($r->{refresh_token});
is($res->code, 200, 'rotation');
sleep_until($t0 + $interval / 2);
($res) = refresh($r->{refresh_token});
is($res->code, 200, 'reuse halfway through the interval: 200');
sleep_until($t0 + $interval + 1.5);
($res, $doc) = refresh($r->{refresh_token});
is($doc && $doc->{error_code}, 'refresh_token_already_used', 'reuse after the interval (counted from the rotation)');
ok(revoked($rsession), 'the session is revoked');

# --- a revoked session is not revived by the interval ----------------------------
my $l = login();
($res, my $l1) = refresh($l->{refresh_token});
is($res->code, 200, 'rotation');
$res = $ngx->call('POST', '/auth/v1/logout', token => $l1->{access_token});
is($res->code, 204, 'logout');
($res, $doc) = refresh($l->{refresh_token});
is($res->code, 400, 'reuse within the interval after logout: 400');
is($doc && $doc->{error_code}, 'refresh_token_not_found', 'refresh_token_not_found');

unlike($pool->log, qr/status=500/, 'no 500 at all');
$s->stop;
done_testing;
