#!/usr/bin/perl
# /functions/v1/credentials through nginx: a signed-in user stores tokens
# obtained elsewhere (sealed before they reach PostgreSQL, bound to the
# caller's row, never in an answer), lists their metadata, replaces them,
# and deletes them, the provider's revoke endpoint (a fake provider on
# loopback) being called first: Google's refresh token, TikTok's access
# token; a failed revoke still deletes and says so; Instagram has no
# revoke endpoint. Isolation between users, the owner's /rest/v1 view of
# the metadata, a sealed value moved to another user's row that does not
# open, and a server without a vault key.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use FindBin;
use lib "$FindBin::Bin/fake";
use FakeOAuth;
use SV::Test qw(:DEFAULT run_command vault_key);
use SV::Test::Stack;

my ($vault_key, $key_id, $keygen_out) = vault_key();
my $fake = FakeOAuth->new(client_id => 'cred-client', client_secret => 'cred-client-secret');
my $secret = 'credentials-secret-' . ('c' x 32);
my $s = SV::Test::Stack->new(workers => 2, conf => {
    jwt_secret => $secret, vault_key_file => $vault_key, $fake->conf(qw(youtube tiktok instagram)) });
ok(defined $key_id, 'keygen') or diag $keygen_out;
my ($pg, $pool, $ngx, $su) = ($s->pg, $s->pool, $s->ngx, $s->su);
my $JSON = JSON::PP->new->canonical;
my $anon = $s->jwt(role => 'anon');

sub user {
    my ($email) = @_;
    my $id = $s->user($email);
    return ($id, $s->auth($id, email => $email,
        session_id => '00000000-0000-4000-8000-00000000000' . length($email) % 10));
}
my ($A, $hA) = user('a@example.com');
my ($B, $hB) = user('bb@example.com');
my @bodies;
sub call {
    my ($h, $method, $path, $body) = @_;
    my $res = $ngx->request($method, $path, headers => $h,
        defined $body ? (body => ref $body ? $JSON->encode($body) : $body) : ());
    push @bodies, $res->content;
    return ($res, $ngx->json($res));
}
sub rnd { join '', map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. 24 }

# --- who may call -------------------------------------------------------------
my ($res, $doc) = call({ apikey => $anon }, 'GET', '/functions/v1/credentials');
is($res->code, 401, 'no token: 401');
is_deeply([sort keys %$doc], [qw(code error)], 'Edge Functions error shape {error, code}');
is($doc->{code}, 'no_authorization', 'code no_authorization');
($res, $doc) = call({ Authorization => "Bearer $anon", apikey => $anon }, 'GET', '/functions/v1/credentials');
is($res->code, 403, 'the anon key is not a user: 403');
($res, $doc) = call($hA, 'GET', '/functions/v1/credentials');
is($res->code, 200, 'A lists credentials');
is_deeply($doc, [], 'none yet');
($res, $doc) = call($hA, 'PUT', '/functions/v1/credentials', '{}');
is($res->code, 405, 'PUT: 405');
like($res->header('Allow') // '', qr/GET.*POST/, 'Allow lists GET and POST');

# --- store ------------------------------------------------------------------------
my $at = 'ya29.A-access-' . rnd();
my $rt = '1//A-refresh-' . rnd();
($res, $doc) = call($hA, 'POST', '/functions/v1/credentials', {
    platform => 'youtube', access_token => $at, refresh_token => $rt,
    expires_at => '2030-01-02T03:04:05Z', scopes => ['youtube.readonly', 'openid'], user_id => $B });
is($res->code, 201, 'POST: 201 Created') or diag $res->content;
is($doc->{platform}, 'youtube', 'answer names the platform');
is_deeply($doc->{scopes}, ['youtube.readonly', 'openid'], 'scopes');
like($doc->{token_expires_at} // '', qr/^2030-01-02T03:04:05/, 'expiry');
ok($doc->{is_active} && $doc->{has_refresh_token}, 'active, has a refresh token');
ok(!defined $doc->{last_verified_at}, 'tokens from elsewhere are not verified yet');
unlike($res->content, qr/\Q$at\E|\Q$rt\E|sv1:/, 'the answer holds neither token nor sealed value');
my $row = $su->selectrow_hashref(q{SELECT user_id, encrypted_access_token AS a, encrypted_refresh_token AS r, key_id
    FROM platform_credentials});
is($row->{user_id}, $A, "stored for the caller, not the body's user_id");
like($row->{a}, qr/^sv1:$key_id:[A-Za-z0-9_-]+$/, 'access token sealed with the current key');
like($row->{r}, qr/^sv1:$key_id:/, 'refresh token sealed');
unlike($row->{a} . $row->{r}, qr/ya29|A-access|A-refresh/, 'no plaintext in the row');
is($row->{key_id}, $key_id, 'key_id recorded');

my $at2 = 'ya29.A-access2-' . rnd();
($res, $doc) = call($hA, 'POST', '/functions/v1/credentials', { platform => 'youtube', access_token => $at2,
    refresh_token => $rt, expires_in => 3600, scopes => 'a b,c' });
is($res->code, 200, 'a second POST replaces: 200');
is_deeply($doc->{scopes}, [qw(a b c)], 'scopes as one string are split');
is($su->selectrow_array(q{SELECT count(*) FROM platform_credentials WHERE user_id = ?}, undef, $A), 1, 'still one row');
ok($su->selectrow_array(q{SELECT token_expires_at BETWEEN now() + interval '59 minutes' AND now() + interval '61 minutes'
    FROM platform_credentials WHERE user_id = ?}, undef, $A), 'expires_in counts from now');
my $at_epoch = 'tt-access-' . rnd();
($res, $doc) = call($hA, 'POST', '/functions/v1/credentials', { platform => 'tiktok', access_token => $at_epoch,
    expires_at => 1900000000 });
is($res->code, 201, 'tiktok without a refresh token');
like($doc->{token_expires_at}, qr/^2030-03-17T17:46:40/, 'expires_at as epoch seconds');
ok(!$doc->{has_refresh_token}, 'no refresh token');

# --- list, isolation, /rest/v1 ---------------------------------------------------
($res, $doc) = call($hA, 'GET', '/functions/v1/credentials');
is_deeply([map { $_->{platform} } @$doc], [qw(tiktok youtube)], "A's two credentials, metadata only");
unlike($res->content, qr/\Q$at2\E|\Q$rt\E|\Q$at_epoch\E|sv1:/, 'no token in the list');
($res, $doc) = call($hB, 'GET', '/functions/v1/credentials');
is_deeply($doc, [], "B sees none of A's");
($res, $doc) = call($hB, 'DELETE', '/functions/v1/credentials/youtube');
is($res->code, 404, "B cannot delete A's credential");
is($doc->{code}, 'credential_not_found', 'credential_not_found');
($res, $doc) = call($hA, 'GET', '/rest/v1/platform_credentials?select=platform_id,scopes,token_expires_at,is_active,last_verified_at');
is(scalar @$doc, 2, 'the owner reads the metadata through /rest/v1 too');
($res, $doc) = call($hA, 'GET', '/rest/v1/platform_credentials?select=encrypted_access_token');
is($res->code, 403, 'but not a token column');
($res, $doc) = call($hB, 'GET', '/rest/v1/platform_credentials?select=platform_id');
is_deeply($doc, [], 'B reads none of the rows');

# --- a sealed value moved to another row does not open -------------------------------
$su->do(q{INSERT INTO platform_credentials (user_id, platform_id, encrypted_access_token, encrypted_refresh_token)
    SELECT ?, platform_id, encrypted_access_token, encrypted_refresh_token FROM platform_credentials c
     WHERE c.user_id = ? AND platform_id = (SELECT id FROM platforms WHERE name = 'youtube')}, undef, $B, $A);
($res, $doc) = call($hB, 'DELETE', '/functions/v1/credentials/youtube');
is($res->code, 200, "B deletes the row holding A's copied ciphertext");
ok($doc->{deleted} && !$doc->{revoked}, 'deleted, not revoked');
like($doc->{revoke_error}, qr/cannot be opened/, "A's token does not open in B's row");
ok(!grep({ /\Q$rt\E/ } $fake->revoked), 'so nothing was sent to the provider');
like($pool->log, qr/event=credential_unreadable user_id=$B/, 'logged, by user and field only');

# --- delete and revoke ---------------------------------------------------------------
($res, $doc) = call($hA, 'DELETE', '/functions/v1/credentials/youtube');
is($res->code, 200, 'A deletes the YouTube credential') or diag $res->content;
is_deeply($doc, { platform => 'youtube', deleted => JSON::PP::true, revoked => JSON::PP::true }, 'revoked and deleted');
is_deeply([$fake->revoked], [$rt], "Google's refresh token was revoked at the provider");
($res, $doc) = call($hA, 'DELETE', '/functions/v1/credentials/youtube');
is($res->code, 404, 'deleting again: 404');
$fake->mode(revoke => '500');
($res, $doc) = call($hA, 'DELETE', '/functions/v1/credentials/tiktok');
is($res->code, 200, 'a failing revoke still deletes');
ok($doc->{deleted} && !$doc->{revoked}, 'deleted: true, revoked: false');
like($doc->{revoke_error}, qr/500/, 'and says what the provider answered');
is(($fake->revoked)[-1], "failed $at_epoch", "TikTok revokes the access token");
is($su->selectrow_array(q{SELECT count(*) FROM platform_credentials WHERE user_id = ?}, undef, $A), 0, 'A has no rows left');
$fake->mode();
my $ig = 'IGQ-' . rnd();
call($hA, 'POST', '/functions/v1/credentials', { platform => 'instagram', access_token => $ig });
($res, $doc) = call($hA, 'DELETE', '/functions/v1/credentials/instagram');
ok($doc->{deleted} && !$doc->{revoked}, 'instagram: deleted, not revoked');
like($doc->{revoke_error}, qr/no revoke endpoint/, 'the platform has no revoke endpoint');
($res, $doc) = call($hA, 'DELETE', '/functions/v1/credentials/myspace');
is($res->code, 404, 'unknown platform in the path: 404');
($res, $doc) = call($hA, 'DELETE', '/functions/v1/credentials');
is($res->code, 405, 'DELETE without a platform: 405');

# --- a server without a vault key ------------------------------------------------------
$pool->conf(vault_key_file => '');
$pool->reload;
ok(wait_until(sub { $pool->log =~ /event=reload generation=2/ }), 'reloaded without a key');
# Once the old generation's 2 workers are gone, no request reaches
# one with the old configuration.
ok(wait_until(sub { (() = $pool->log =~ /event=worker_exit [^\n]*generation=1\b/g) >= 2 }, 30), 'the old workers are gone');
($res, $doc) = call($hA, 'POST', '/functions/v1/credentials', { platform => 'youtube', access_token => 'x-' . rnd() });
is($res->code, 503, 'storing without a key: 503');
is($doc->{code}, 'vault_not_configured', 'vault_not_configured');
is($su->selectrow_array(q{SELECT count(*) FROM platform_credentials WHERE user_id = ?}, undef, $A), 0, 'nothing stored');

# --- nothing leaked ----------------------------------------------------------------
my @mine = ($at, $rt, $at2, $at_epoch, $ig);
my $all = join "\n", @bodies, $pool->log, $ngx->access_log, $ngx->error_log, $pg->log;
for my $t (@mine) {
    unlike($all, qr/\Q$t\E/, "token $t appears in no answer and no log");
}

$ngx->stop;
$pool->stop;
done_testing;
