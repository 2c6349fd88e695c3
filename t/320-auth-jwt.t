#!/usr/bin/perl
# Forged, expired, alg=none, wrong-algorithm and wrong-secret tokens are
# refused: 401 PGRST301 on /rest/v1 (PostgREST's shape), 403 bad_jwt on
# GET/PUT /auth/v1/user and /logout (GoTrue's codes: "invalid JWT: unable
# to parse or verify signature, <golang-jwt's reason>"); a sub that is
# not a UUID is 400, a deleted user 403 user_not_found. A token without
# exp and one with a NUL inside a claim are refused too (defence in depth:
# both need the secret). Valid anon/user tokens and token-less requests
# pass. Without a jwt_secret, token-bearing requests are 401 and /auth/v1
# says the server is misconfigured.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use MIME::Base64 qw(encode_base64url decode_base64url);
use SV::Test;
use SV::Test::Stack;

my $secret = 'jwt-test-secret-' . ('j' x 32);
my $s = SV::Test::Stack->new(workers => 2, conf => { jwt_secret => $secret });
my ($pool, $ngx) = ($s->pool, $s->ngx);

sub jwt { $s->jwt(@_) }
my $now = time;
my $anon = jwt(role => 'anon');
my $service = jwt(role => 'service_role');

sub rest {
    my (%h) = @_;
    return $ngx->request('GET', '/rest/v1/platforms?select=*', headers => { %h });
}
sub rest_401 {
    my ($res, $name, $msg_re) = @_;
    is($res->code, 401, "/rest: $name → 401") or diag $res->as_string;
    my $doc = $ngx->json($res);
    $doc = {} unless ref $doc eq 'HASH';
    is($doc->{code}, 'PGRST301', "/rest: $name → PGRST301");
    ok(exists $doc->{details} && exists $doc->{hint}, "/rest: $name → PostgREST error shape");
    like($doc->{message} // '', $msg_re, "/rest: $name → message") if $msg_re;
    like($res->header('WWW-Authenticate') // '', qr/^Bearer error="invalid_token"/, "/rest: $name → WWW-Authenticate");
}

# --- accepted -------------------------------------------------------------
my $res = rest();
is($res->code, 200, 'no token: anon') or diag $res->as_string;
$res = rest(apikey => $anon, Authorization => "Bearer $anon");
is($res->code, 200, 'anon key (supabase-js sends apikey + Bearer)') or diag $res->as_string;
$res = rest(apikey => $anon);
is($res->code, 200, 'apikey alone');
$res = rest(apikey => 'sb_publishable_not_a_jwt');
is($res->code, 200, 'a non-JWT apikey is ignored (anon)');
$res = rest(Authorization => "bearer $service");
is($res->code, 200, 'service_role key, scheme case-insensitive');

my ($signup, $sess) = $ngx->call('POST', '/auth/v1/signup', token => $anon, headers => { apikey => $anon },
    body => { email => 'erin@example.com', password => 'erin password' });
is($signup->code, 200, 'signup') or diag $signup->as_string;
$res = rest(apikey => $anon, Authorization => "Bearer $sess->{access_token}");
is($res->code, 200, 'user access token on /rest');
my (undef, $payload) = split /\./, $sess->{access_token};
my $uclaims = decode_json(decode_base64url($payload));

# A token a worker has already accepted (and may remember) stops working
# the moment it expires.
my $short = jwt(claims => { role => 'anon', exp => time + 2 });
my %seen;
for (1 .. 4) {
    $res = rest(Authorization => "Bearer $short");
    $seen{$res->code}++;
}
is_deeply(\%seen, { 200 => 4 }, 'short-lived token accepted while valid (every worker)');
sleep 1 while time < $now + 3 || time <= decode_json(decode_base64url((split /\./, $short)[1]))->{exp};
rest_401(rest(Authorization => "Bearer $short"), 'the same token once expired', qr/JWT expired/);
rest_401(rest(Authorization => "Bearer $short"), 'and on the next request too', qr/JWT expired/);

# --- refused --------------------------------------------------------------
my %bad = (
    'expired' => [jwt(claims => { role => 'anon', exp => $now - 10 }), qr/JWT expired/],
    'alg none, no signature' => [jwt(header => '{"alg":"none","typ":"JWT"}', claims => { role => 'service_role' }, sig => '')],
    'alg none, with signature' => [jwt(header => '{"alg":"none"}', claims => { role => 'service_role' })],
    'alg HS512' => [jwt(header => '{"alg":"HS512"}', claims => { role => 'anon' }, alg => 'HS512')],
    'alg RS256' => [jwt(header => '{"alg":"RS256"}', claims => { role => 'anon' })],
    'another secret' => [jwt(claims => { role => 'service_role', exp => $now + 60 }, secret => 'another-secret-' . ('x' x 32))],
    'tampered payload' => [do {
        my ($h, undef, $sig) = split /\./, $anon;
        "$h." . encode_base64url(encode_json({ role => 'service_role', exp => $now + 3600 })) . ".$sig";
    }],
    'tampered signature' => [do { (my $t = $anon) =~ s/(.)(.)$/$1 eq 'A' ? "B$2" : "A$2"/e; $t }],
    'role postgres' => [jwt(claims => { role => 'postgres', exp => $now + 60 })],
    'role authenticator' => [jwt(claims => { role => 'authenticator', exp => $now + 60 })],
    'no role' => [jwt(claims => { sub => $uclaims->{sub}, exp => $now + 60 })],
    'malformed' => ['a.b.c'],
    'two segments' => ['abc.def'],
    'non-JSON payload' => [jwt(claims => 'not json')],
    'string exp' => [jwt(claims => { role => 'anon', exp => "$now" . '0' })],
    # every token this server issues expires; one without exp never would
    'no exp' => [jwt(claims => { role => 'service_role', iss => 'streamvibe', iat => $now }), qr/no exp claim/],
    'no exp, user token' => [do { my %h = %$uclaims; delete $h{exp}; jwt(claims => \%h) }, qr/no exp claim/],
    # as a C string this role is "service_role"; PostgreSQL would see the rest
    'NUL in the role' => [jwt(claims => { role => "service_role\x{0}", exp => $now + 60 })],
    'NUL in sub' => [jwt(claims => { %$uclaims, sub => "$uclaims->{sub}\x{0}x" })],
    'NUL in session_id' => [jwt(claims => { %$uclaims, session_id => "$uclaims->{session_id}\x{0}" })],
    'NUL in email' => [jwt(claims => { %$uclaims, email => "erin\@example.com\x{0}" })],
    'NUL in a key' => [jwt(claims => '{"role":"anon","role\\u0000":"service_role","exp":' . ($now + 60) . '}')],
);
for my $name (sort keys %bad) {
    my ($tok, $re) = @{ $bad{$name} };
    rest_401(rest(apikey => $anon, Authorization => "Bearer $tok"), $name, $re);
    my $role_claim = $name =~ /^(role |no role)/;
    for my $ep (['GET', '/auth/v1/user'], ['PUT', '/auth/v1/user'], ['POST', '/auth/v1/logout']) {
        my $u = $ngx->request($ep->[0], $ep->[1], headers => { apikey => $anon, Authorization => "Bearer $tok" },
            $ep->[0] eq 'PUT' ? (body => '{"data":{"x":1}}') : ());
        is($u->code, 403, "$ep->[0] $ep->[1]: $name → 403") or diag $u->as_string;
        my $d = $ngx->json($u);
        $d = {} unless ref $d eq 'HASH';
        is($d->{error_code}, 'bad_jwt', "$ep->[0] $ep->[1]: $name → bad_jwt");
        is($d->{code}, 403, "$ep->[0] $ep->[1]: $name → GoTrue shape");
        like($d->{msg} // '', $role_claim ? qr/^invalid claim: / : qr/^invalid JWT: unable to parse or verify signature, /,
             "$ep->[0] $ep->[1]: $name → GoTrue's message");
    }
}
my $u0 = $ngx->request('GET', '/auth/v1/user', headers => { Authorization => 'Bearer ' . $bad{'tampered signature'}[0] });
is(($ngx->json($u0) // {})->{msg},
   'invalid JWT: unable to parse or verify signature, token signature is invalid: signature is invalid',
   "a bad signature in GoTrue's (golang-jwt's) words");
$u0 = $ngx->request('GET', '/auth/v1/user', headers => { Authorization => 'Bearer ' . $bad{'no exp, user token'}[0] });
is(($ngx->json($u0) // {})->{msg},
   'invalid JWT: unable to parse or verify signature, token has invalid claims: token is missing required claim: exp claim is required',
   'a missing exp in the same words');
rest_401(rest(apikey => 'x.y.z'), 'a JWT-shaped bad apikey');
rest_401(rest(Authorization => 'Basic dXNlcjpwYXNz'), 'Basic auth');
rest_401(rest(Authorization => 'Bearer '), 'empty Bearer');

# A correctly signed but expired user token, and a user token for a
# session that never existed: GET /user refuses both.
my %c = %$uclaims;
$c{exp} = $now - 1;
my $u = $ngx->request('GET', '/auth/v1/user', headers => { Authorization => 'Bearer ' . jwt(claims => \%c) });
is($u->code, 403, 'expired user token → 403');
is($ngx->json($u)->{msg}, 'invalid JWT: unable to parse or verify signature, token has invalid claims: token is expired',
   "GoTrue's message for an expired token");
%c = %$uclaims;
$c{session_id} = '00000000-0000-4000-8000-000000000000';
$u = $ngx->request('GET', '/auth/v1/user', headers => { Authorization => 'Bearer ' . jwt(claims => \%c) });
is($u->code, 403, 'validly signed token for an unknown session → 403');
is($ngx->json($u)->{error_code}, 'session_not_found', 'session_not_found');
%c = %$uclaims;
$c{sub} = "x' OR '1'='1";
$u = $ngx->request('GET', '/auth/v1/user', headers => { Authorization => 'Bearer ' . jwt(claims => \%c) });
is($u->code, 400, 'non-uuid sub → 400 (GoTrue), not 500');
is($ngx->json($u)->{msg}, 'invalid claim: sub claim must be a UUID', 'and says so');
%c = %$uclaims;
delete $c{sub};
$u = $ngx->request('GET', '/auth/v1/user', headers => { Authorization => 'Bearer ' . jwt(claims => \%c) });
is($u->code, 403, 'no sub → 403');
is($ngx->json($u)->{msg}, 'invalid claim: missing sub claim', 'missing sub claim');
%c = %$uclaims;
$c{session_id} = 'not-a-uuid';
$u = $ngx->request('GET', '/auth/v1/user', headers => { Authorization => 'Bearer ' . jwt(claims => \%c) });
is($u->code, 403, 'non-uuid session_id → 403');
is($ngx->json($u)->{error_code}, 'bad_jwt', 'bad_jwt');

# A deleted user: GoTrue looks the user up before the session.
my $su = $s->su;
my $gone = $ngx->request('POST', '/auth/v1/signup', body => encode_json({ email => 'gone@example.com', password => 'gone password' }));
is($gone->code, 200, 'a second user signs up');
my $gtok = $ngx->json($gone)->{access_token};
$su->do('DELETE FROM auth.users WHERE email = ?', undef, 'gone@example.com');
for my $ep (['GET', '/auth/v1/user'], ['PUT', '/auth/v1/user'], ['POST', '/auth/v1/logout']) {
    $u = $ngx->request($ep->[0], $ep->[1], headers => { Authorization => "Bearer $gtok" },
        $ep->[0] eq 'PUT' ? (body => '{"data":{"x":1}}') : ());
    is($u->code, 403, "$ep->[0] $ep->[1] for a deleted user → 403") or diag $u->as_string;
    is(($ngx->json($u) // {})->{error_code}, 'user_not_found', "$ep->[0] $ep->[1]: user_not_found");
}
unlike($pool->log, qr/status=500/, 'no 500 anywhere');
$s->stop;

# --- no jwt_secret configured ---------------------------------------------
my $s2 = SV::Test::Stack->new(pg => $s->pg, workers => 1);
my ($pool2, $ngx2) = ($s2->pool, $s2->ngx);
$res = $ngx2->request('GET', '/rest/v1/platforms?select=*');
is($res->code, 200, 'no secret: token-less request is anon');
$res = $ngx2->request('GET', '/rest/v1/platforms?select=*', headers => { Authorization => "Bearer $anon" });
is($res->code, 401, 'no secret: token-bearing request is 401');
$res = $ngx2->request('GET', '/rest/v1/platforms?select=*', headers => { Authorization => "Bearer $anon" });
is($res->code, 401, 'again');
$res = $ngx2->call('POST', '/auth/v1/signup', body => { email => 'f@example.com', password => 'f password' });
is($res->code, 500, 'no secret: /auth/v1 answers 500');
like($ngx2->json($res)->{msg} // '', qr/jwt_secret is not configured/, 'and says why');
my @mis = ($pool2->log =~ /auth_misconfigured/g);
is(scalar @mis, 1, 'misconfiguration logged once');
$s2->stop;
done_testing;
