#!/usr/bin/perl
# /auth/v1 signup, password login, GET/PUT /user through nginx, with
# GoTrue's shapes (what @supabase/auth-js reads) and its error bodies.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use MIME::Base64 qw(decode_base64url);
use SV::Test;
use SV::Test::Stack;

my $secret = 'signup-test-secret-' . ('s' x 32);
my $s = SV::Test::Stack->new(workers => 2,
    conf => { jwt_secret => $secret, jwt_exp => 3600, login_max_failures => 1000 });
my ($pool, $ngx) = ($s->pool, $s->ngx);
my $su = $s->su;

sub post { my ($path, $body) = @_; $ngx->call('POST', $path, body => $body) }
sub claims_of {
    my ($jwt) = @_;
    my ($h, $p) = split /\./, $jwt;
    return (decode_json(decode_base64url($h)), decode_json(decode_base64url($p)));
}
my $uuid_re = qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
my $ts_re = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
sub gotrue_error {
    my ($res, $doc, $status, $code, $name) = @_;
    is($res->code, $status, "$name: status $status") or diag $res->as_string;
    is(ref $doc, 'HASH', "$name: JSON body");
    is($doc->{code}, $status, "$name: code is the status");
    is($doc->{error_code}, $code, "$name: error_code $code");
    ok(defined $doc->{msg} && length $doc->{msg}, "$name: msg");
}

# --- signup -------------------------------------------------------------
my $t0 = time;
my ($res, $doc) = post('/auth/v1/signup',
    { email => 'Alice@Example.COM', password => 'correct horse', data => { name => 'Alice' },
      gotrue_meta_security => {} });
is($res->code, 200, 'signup 200') or diag $res->as_string;
like($res->header('Content-Type') // '', qr{^application/json}, 'JSON');
unlike($res->content, qr/correct horse/, 'the password is not echoed');
for my $k (qw(access_token token_type expires_in expires_at refresh_token user)) {
    ok(defined $doc->{$k}, "session has $k");
}
is($doc->{token_type}, 'bearer', 'token_type bearer');
is($doc->{expires_in}, 3600, 'expires_in = jwt_exp');
ok($doc->{expires_at} >= $t0 + 3600 && $doc->{expires_at} <= time + 3600 + 1, 'expires_at = now + exp');
like($doc->{refresh_token}, qr/^[A-Za-z0-9_-]{22,}$/, 'refresh token is url-safe text of >= 128 bits');
my $u = $doc->{user};
like($u->{id}, $uuid_re, 'user.id is a uuid');
is($u->{email}, 'alice@example.com', 'email lower-cased like GoTrue');
is($u->{aud}, 'authenticated', 'aud');
is($u->{role}, 'authenticated', 'role');
like($u->{email_confirmed_at} // '', $ts_re, 'autoconfirmed: email_confirmed_at set (RFC 3339 UTC)');
like($u->{created_at} // '', $ts_re, 'created_at');
like($u->{updated_at} // '', $ts_re, 'updated_at');
like($u->{last_sign_in_at} // '', $ts_re, 'last_sign_in_at');
is($u->{phone}, '', 'phone empty string');
is_deeply($u->{app_metadata}, { provider => 'email', providers => ['email'] }, 'app_metadata');
is_deeply($u->{user_metadata}, { name => 'Alice' }, 'user_metadata from signUp options.data');
is(ref $u->{identities}, 'ARRAY', 'identities array');
is($u->{identities}[0]{provider}, 'email', 'email identity');
ok(!exists $u->{encrypted_password} && $res->content !~ /argon2/, 'no hash in the response');
my $alice = { id => $u->{id}, access => $doc->{access_token}, refresh => $doc->{refresh_token} };

my ($hdr, $cl) = claims_of($alice->{access});
is($hdr->{alg}, 'HS256', 'access token is HS256');
is($cl->{sub}, $alice->{id}, 'sub = user id');
is($cl->{aud}, 'authenticated', 'aud claim');
is($cl->{role}, 'authenticated', 'role claim');
is($cl->{email}, 'alice@example.com', 'email claim');
like($cl->{session_id} // '', $uuid_re, 'session_id claim');
is($cl->{exp} - $cl->{iat}, 3600, 'exp - iat = jwt_exp');
is($cl->{exp}, $doc->{expires_at}, 'exp = expires_at');
is($cl->{aal}, 'aal1', 'aal');
is($cl->{amr}[0]{method}, 'password', 'amr');
ok(JSON::PP::is_bool($cl->{is_anonymous}) && !$cl->{is_anonymous}, 'is_anonymous false');
is_deeply($cl->{user_metadata}, { name => 'Alice' }, 'user_metadata claim');

my $row = $su->selectrow_hashref('SELECT encrypted_password FROM auth.users WHERE id = ?', undef, $alice->{id});
like($row->{encrypted_password}, qr/^\$argon2id\$v=19\$m=65536,t=2,p=1\$/, 'stored as argon2id (interactive limits)');
is($su->selectrow_array('SELECT count(*) FROM auth.refresh_tokens WHERE token_hash = ?', undef, $alice->{refresh}),
   0, 'the refresh token itself is not stored');
is($su->selectrow_array(q{SELECT tier::text FROM public.subscription_settings WHERE user_id = ?}, undef, $alice->{id}),
   'free', 'new user has a free-tier subscription_settings row');

# --- signup errors --------------------------------------------------------
($res, $doc) = post('/auth/v1/signup', { email => 'ALICE@example.com', password => 'another pass' });
gotrue_error($res, $doc, 422, 'user_already_exists', 'duplicate email (any case)');
($res, $doc) = post('/auth/v1/signup', { email => 'bob@example.com', password => 'short' });
gotrue_error($res, $doc, 422, 'weak_password', 'short password');
is_deeply($doc->{weak_password}, { reasons => ['length'] }, 'weak_password.reasons');
like($doc->{msg}, qr/at least 8 characters/, 'message names the minimum');
($res, $doc) = post('/auth/v1/signup', { email => 'bob@example.com', password => 'x' x 1025 });
gotrue_error($res, $doc, 422, 'validation_failed', 'password over 1024 bytes');
($res, $doc) = post('/auth/v1/signup', { email => 'not-an-email', password => 'long enough pw' });
gotrue_error($res, $doc, 400, 'email_address_invalid', 'bad email');
($res, $doc) = post('/auth/v1/signup', { email => ('a' x 5000) . '@example.com', password => 'long enough pw' });
gotrue_error($res, $doc, 400, 'email_address_invalid', 'huge email');
($res, $doc) = post('/auth/v1/signup', { password => 'long enough pw' });
gotrue_error($res, $doc, 400, 'validation_failed', 'no email');
($res, $doc) = post('/auth/v1/signup', '{"email": "bob@example.com", ');
gotrue_error($res, $doc, 400, 'bad_json', 'broken JSON');
($res, $doc) = post('/auth/v1/signup', '[1,2]');
gotrue_error($res, $doc, 400, 'bad_json', 'JSON array body');
($res, $doc) = post('/auth/v1/signup', { email => 'bob@example.com', password => 'long enough pw', data => [1] });
gotrue_error($res, $doc, 400, 'validation_failed', 'data not an object');
($res, $doc) = post('/auth/v1/signup', { email => 'bob@example.com', password => 'long enough pw', data => { x => "a\x{0}b" } });
ok($res->code >= 400 && $res->code < 500, 'NUL in user metadata is a 4xx, not a 500') or diag $res->as_string;
($res, $doc) = post('/auth/v1/signup', { email => 123, password => 'long enough pw' });
gotrue_error($res, $doc, 400, 'validation_failed', 'email not a string');

# SQL-looking but valid address: stored and usable as data, nothing else.
my $odd = "o'brien+x--\@example.com";
($res, $doc) = post('/auth/v1/signup', { email => $odd, password => q{pw' OR '1'='1} });
is($res->code, 200, 'quote-laden address signs up') or diag $res->as_string;
is($doc->{user}{email}, $odd, 'stored verbatim');
is($su->selectrow_array('SELECT count(*) FROM auth.users'), 2, 'two users exist');

# --- password login ---------------------------------------------------------
($res, $doc) = post('/auth/v1/token?grant_type=password',
    { email => 'alice@EXAMPLE.com', password => 'correct horse', gotrue_meta_security => {} });
is($res->code, 200, 'password login 200') or diag $res->as_string;
is($doc->{user}{id}, $alice->{id}, 'same user');
is($doc->{token_type}, 'bearer', 'bearer');
my (undef, $cl2) = claims_of($doc->{access_token});
isnt($cl2->{session_id}, $cl->{session_id}, 'a new session per login');
($res, $doc) = post('/auth/v1/token?grant_type=password', { email => $odd, password => q{pw' OR '1'='1} });
is($res->code, 200, 'quote-laden credentials log in');
($res, $doc) = post('/auth/v1/token?grant_type=password', { email => $odd, password => q{' OR '1'='1} });
is($res->code, 400, 'SQL-ish password is just a wrong password');

my ($r1, $wrong) = post('/auth/v1/token?grant_type=password', { email => 'alice@example.com', password => 'wrong horse' });
gotrue_error($r1, $wrong, 400, 'invalid_credentials', 'wrong password');
is($wrong->{msg}, 'Invalid login credentials', 'GoTrue message');
my ($r2, $unknown) = post('/auth/v1/token?grant_type=password', { email => 'nobody@example.com', password => 'wrong horse' });
is($r2->code, $r1->code, 'unknown email: same status');
is($r2->content, $r1->content, 'unknown email: byte-identical body');
my ($r3, $nopw) = post('/auth/v1/token?grant_type=password', { email => 'alice@example.com' });
is($r3->content, $r1->content, 'missing password: same answer');
my ($r4) = post('/auth/v1/token?grant_type=password', { email => 'alice@example.com', password => 'y' x 5000 });
is($r4->content, $r1->content, 'huge password: same answer');
my ($r5) = post('/auth/v1/token?grant_type=password', { email => 'alice@example.com', password => 'correct horse ' });
is($r5->code, 400, 'password compared exactly (trailing space fails)');

# timing: unknown email costs an argon2id verification like a known one
my $t = time;
post('/auth/v1/token?grant_type=password', { email => "nobody$_\@example.com", password => 'x' x 10 }) for 1 .. 3;
my $t_unknown = time - $t;
ok(1, "unknown-email logins took ${t_unknown}s for 3");

($res, $doc) = post('/auth/v1/token?grant_type=password', { password => 'x' });
gotrue_error($res, $doc, 400, 'validation_failed', 'login without email');
($res, $doc) = post('/auth/v1/token?grant_type=magic', { email => 'alice@example.com', password => 'x' });
gotrue_error($res, $doc, 400, 'invalid_credentials', "unknown grant_type (GoTrue's code)");
($res, $doc) = post('/auth/v1/token', { email => 'alice@example.com', password => 'x' });
gotrue_error($res, $doc, 400, 'invalid_credentials', 'no grant_type');
$res = $ngx->request('GET', '/auth/v1/token?grant_type=password');
is($res->code, 405, 'GET /token is 405');

# --- GET /user ------------------------------------------------------------
($res, $doc) = $ngx->call('GET', '/auth/v1/user', token => $alice->{access});
is($res->code, 200, 'GET /user 200') or diag $res->as_string;
is($doc->{id}, $alice->{id}, 'GET /user returns the user object itself');
is($doc->{email}, 'alice@example.com', 'email');
ok(!exists $doc->{user}, 'not wrapped');
$res = $ngx->request('GET', '/auth/v1/user');
gotrue_error($res, $ngx->json($res), 401, 'no_authorization', 'GET /user without a token');

# --- PUT /user ----------------------------------------------------------
# Bob, for cross-user checks
($res, $doc) = post('/auth/v1/signup', { email => 'bob@example.com', password => 'bob password' });
is($res->code, 200, 'bob signs up') or diag $res->as_string;
my $bob = { id => $doc->{user}{id}, access => $doc->{access_token} };

my $put = sub { my ($tok, $body) = @_; $ngx->call('PUT', '/auth/v1/user', token => $tok, body => $body) };
($res, $doc) = $put->($alice->{access}, { data => { name => 'Alice A', plan => 'x' } });
is($res->code, 200, 'PUT data') or diag $res->as_string;
is_deeply($doc->{user_metadata}, { name => 'Alice A', plan => 'x' }, 'metadata merged');
($res, $doc) = $put->($alice->{access}, { data => { plan => undef } });
is_deeply($doc->{user_metadata}, { name => 'Alice A' }, 'null removes a key');

($res, $doc) = $put->($alice->{access}, { password => 'correct horse' });
gotrue_error($res, $doc, 422, 'same_password', 'same password');
($res, $doc) = $put->($alice->{access}, { password => 'tiny' });
gotrue_error($res, $doc, 422, 'weak_password', 'weak new password');
($res, $doc) = $put->($alice->{access}, { password => 'battery staple' });
is($res->code, 200, 'password changed') or diag $res->as_string;
unlike($res->content, qr/battery staple|argon2/, 'no password or hash in the answer');
($res) = post('/auth/v1/token?grant_type=password', { email => 'alice@example.com', password => 'correct horse' });
is($res->code, 400, 'old password no longer works');
($res, $doc) = post('/auth/v1/token?grant_type=password', { email => 'alice@example.com', password => 'battery staple' });
is($res->code, 200, 'new password works');
$alice->{access2} = $doc->{access_token};

($res, $doc) = $put->($alice->{access}, { email => 'BOB@example.com' });
gotrue_error($res, $doc, 422, 'email_exists', "cannot take Bob's email");
($res, $doc) = $put->($alice->{access}, { email => 'bad email' });
gotrue_error($res, $doc, 400, 'email_address_invalid', 'bad new email');
($res, $doc) = $put->($alice->{access}, { email => 'alice2@example.com' });
is($res->code, 200, 'email changed');
is($doc->{email}, 'alice2@example.com', 'new email returned');
($res) = post('/auth/v1/token?grant_type=password', { email => 'alice2@example.com', password => 'battery staple' });
is($res->code, 200, 'login with the new email');

# Bob's token only ever touches Bob, whatever the body says.
($res, $doc) = $put->($bob->{access}, { data => { name => 'pwned' }, id => $alice->{id}, user_id => $alice->{id} });
is($res->code, 200, 'bob updates himself');
is($doc->{id}, $bob->{id}, 'the update went to bob');
is($su->selectrow_array(q{SELECT raw_user_meta_data->>'name' FROM auth.users WHERE id = ?}, undef, $alice->{id}),
   'Alice A', "alice's metadata untouched");
$res = $ngx->call('GET', '/auth/v1/user', token => $bob->{access});
is($ngx->json($res)->{id}, $bob->{id}, "bob's token reads bob");

# An anon/service key is not a user.
my $anon_key = $s->jwt(claims => { role => 'anon', iss => 'streamvibe', exp => time + 600 });
$res = $ngx->call('GET', '/auth/v1/user', token => $anon_key, headers => { apikey => $anon_key });
gotrue_error($res, $ngx->json($res), 403, 'bad_jwt', 'GET /user with the anon key');

# Nothing secret in the pool's log.
my $log = $pool->log;
unlike($log, qr/correct horse|battery staple|bob password/, 'no password in the log');
unlike($log, qr/\Q$alice->{refresh}\E/, 'no refresh token in the log');
unlike($log, qr/\Q$alice->{access}\E/, 'no access token in the log');
unlike($log, qr/argon2id/, 'no hash in the log');
unlike($log, qr/status=500/, 'no 500 at all');

$s->stop;
done_testing;
