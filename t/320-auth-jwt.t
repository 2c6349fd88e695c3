#!/usr/bin/perl
# Forged, expired, alg=none, wrong-algorithm and wrong-secret tokens are
# refused with 401 on /rest/v1 (PostgREST's shape) and /auth/v1/user
# (GoTrue's shape); valid anon/user tokens and token-less requests pass.
# Without a jwt_secret, token-bearing requests are 401 and /auth/v1 says
# the server is misconfigured.

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
    my $doc = $ngx->json($res) // {};
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
);
for my $name (sort keys %bad) {
    my ($tok, $re) = @{ $bad{$name} };
    rest_401(rest(apikey => $anon, Authorization => "Bearer $tok"), $name, $re);
    my $u = $ngx->request('GET', '/auth/v1/user', headers => { apikey => $anon, Authorization => "Bearer $tok" });
    is($u->code, 401, "/auth/v1/user: $name → 401") or diag $u->as_string;
    my $d = $ngx->json($u) // {};
    is($d->{error_code}, 'bad_jwt', "/auth/v1/user: $name → bad_jwt");
    is($d->{code}, 401, "/auth/v1/user: $name → GoTrue shape");
}
rest_401(rest(apikey => 'x.y.z'), 'a JWT-shaped bad apikey');
rest_401(rest(Authorization => 'Basic dXNlcjpwYXNz'), 'Basic auth');
rest_401(rest(Authorization => 'Bearer '), 'empty Bearer');

# A correctly signed but expired user token, and a user token for a
# session that never existed: GET /user refuses both.
my %c = %$uclaims;
$c{exp} = $now - 1;
my $u = $ngx->request('GET', '/auth/v1/user', headers => { Authorization => 'Bearer ' . jwt(claims => \%c) });
is($u->code, 401, 'expired user token → 401');
like($ngx->json($u)->{msg}, qr/expired/, 'message says expired');
%c = %$uclaims;
$c{session_id} = '00000000-0000-4000-8000-000000000000';
$u = $ngx->request('GET', '/auth/v1/user', headers => { Authorization => 'Bearer ' . jwt(claims => \%c) });
is($u->code, 403, 'validly signed token for an unknown session → 403');
is($ngx->json($u)->{error_code}, 'session_not_found', 'session_not_found');
%c = %$uclaims;
$c{sub} = "x' OR '1'='1";
$u = $ngx->request('GET', '/auth/v1/user', headers => { Authorization => 'Bearer ' . jwt(claims => \%c) });
is($u->code, 403, 'non-uuid sub → 403, not 500');
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
