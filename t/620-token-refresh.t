#!/usr/bin/perl
# The internal "valid access token for (user, platform)" function,
# exercised through `streamvibe-admin credentials token` (the same C
# function the job runner will call; it prints the outcome and a
# fingerprint, never the token): the stored token while it is fresh; a
# refresh at the provider when it has expired, is within
# oauth_refresh_margin of expiring, or was just rejected; exactly one
# provider call when several processes find it expired at once; a refresh
# the provider refuses marks the credential inactive (and reconnecting
# revives it); a provider that fails for now leaves the credential
# active; rotated refresh tokens are kept; and a credential that
# references Vault secrets (the V2 document's way) is refreshed in place.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use POSIX ();
use FindBin;
use lib "$FindBin::Bin/fake";
use FakeOAuth;
use SV::Test qw(:DEFAULT run_command spawn_process slurp_file vault_key);
use SV::Test::Stack;

my $admin = sv_builddir() . '/streamvibe-admin';
my ($vault_key) = vault_key();
my $fake = FakeOAuth->new(client_id => 'refresh-client', client_secret => 'refresh-client-secret');
my $secret = 'refresh-secret-' . ('r' x 32);
my $port = free_tcp_port();
my $s = SV::Test::Stack->new(workers => 2, nginx_port => $port, conf => { jwt_secret => $secret,
    vault_key_file => $vault_key, oauth_http_timeout => 3, api_external_url => "http://127.0.0.1:$port",
    oauth_refresh_margin => 300, site_url => 'https://app.example.com', rate_limit_functions => 'off',
    $fake->conf(qw(youtube tiktok)) });
my ($pg, $pool, $ngx, $su) = ($s->pg, $s->pool, $s->ngx, $s->su);

my $A = $s->user('a@example.com');
my %A = %{ $s->auth($A) };
my %S = %{ $s->service };

# The admin command, with the pool's own configuration (database_url is
# the server's login role).
sub token {
    my ($platform, @extra) = @_;
    my ($code, $o, $e) = run_command([$admin, 'credentials', 'token', '--user', $A, '--platform', $platform,
        '--config', $pool->config_file, @extra], env => { STREAMVIBE_ADMIN_DATABASE_URL => undef, STREAMVIBE_CONFIG => undef });
    my %r = $o =~ /(\w+)=("[^"]*"|\S+)/g;
    $r{exit} = $code;
    $r{stderr} = $e;
    return \%r;
}
sub fp { substr(sha256_hex($_[0]), 0, 12) }
sub newest_access { (grep { /^fake-at-/ } $fake->tokens)[-1] }
sub refreshes { scalar grep { $_ eq 'ok' } $fake->calls('refresh_token') }
sub expire { my ($p, $interval) = @_; $su->do(qq{UPDATE platform_credentials SET token_expires_at = now() + interval '$interval'
    WHERE platform_id = (SELECT id FROM platforms WHERE name = ?)}, undef, $p) }
sub cred { $su->selectrow_hashref(q{SELECT c.*, extract(epoch FROM token_expires_at)::bigint AS exp FROM platform_credentials c
    JOIN platforms p ON p.id = c.platform_id WHERE p.name = ?}, undef, $_[0]) }

my ($final) = FakeOAuth::browse($ngx, '/functions/v1/oauth/youtube/start', \%A);
is($final, 'https://app.example.com?connected=youtube', 'A connected YouTube through the flow');
my $at0 = newest_access();

# --- fresh: the stored token --------------------------------------------------------
my $r = token('youtube');
is($r->{exit}, 0, 'credentials token: exit 0') or diag explain $r;
is($r->{source}, 'valid', 'source=valid');
is($r->{fingerprint}, fp($at0), 'the token the provider issued (by fingerprint)');
is(refreshes(), 0, 'no provider call');
unlike(join('', values %$r), qr/fake-[ar]t-/, 'the command prints no token');

# --- expired: refreshed ----------------------------------------------------------------------
expire('youtube', '-1 minute');
my $verified = cred('youtube')->{last_verified_at};
$r = token('youtube');
is($r->{source}, 'refreshed', 'expired: source=refreshed');
is(refreshes(), 1, 'one refresh call');
my $at1 = newest_access();
isnt($at1, $at0, 'a new access token was issued');
is($r->{fingerprint}, fp($at1), 'and it is the one handed out');
my $c = cred('youtube');
ok(abs($c->{exp} - (time + 3600)) < 60, 'the new expiry is stored (expires_in 3600)');
isnt($c->{last_verified_at}, $verified, 'last_verified_at moved');
like($c->{encrypted_access_token}, qr/^sv1:/, 'sealed again');
$r = token('youtube');
is($r->{source}, 'valid', 'then fresh again');
is(refreshes(), 1, 'no second call');

# --- near expiry, and rejected --------------------------------------------------------------
expire('youtube', '2 minutes');
$r = token('youtube');
is($r->{source}, 'refreshed', 'within the 300 s margin: refreshed');
is(refreshes(), 2, 'one more call');
$r = token('youtube', '--rejected');
is($r->{source}, 'refreshed', 'a fresh token the platform rejected: refreshed');
is($r->{fingerprint}, fp(newest_access()), 'the new one');
is(refreshes(), 3, 'one more call');

# --- concurrent refreshes: exactly one provider call ---------------------------------------------
expire('youtube', '-1 minute');
$fake->mode(delay => 1);
my $dir = sv_tempdir(prefix => 'svconc');
my @pids = map {
    spawn_process([$admin, 'credentials', 'token', '--user', $A, '--platform', 'youtube', '--config', $pool->config_file],
        stdout => "$dir/out$_", stderr => "$dir/err$_", env => { STREAMVIBE_ADMIN_DATABASE_URL => undef })
} 1 .. 6;
waitpid($_, 0) for @pids;
$fake->mode();
my @outs = map { slurp_file("$dir/out$_") // '' } 1 .. 6;
is(scalar(grep { /^status=ok/ } @outs), 6, 'six processes, six tokens') or diag explain [@outs, map { slurp_file("$dir/err$_") } 1 .. 6];
is(refreshes(), 4, 'exactly one provider call among them');
my %fps = map { /fingerprint=(\w+)/ ? ($1 => 1) : () } @outs;
is_deeply([keys %fps], [fp(newest_access())], 'all six hold the same new token');
is(scalar(grep { /source=refreshed / } @outs), 1, 'one refreshed it');
is(scalar(grep { /source=refreshed_elsewhere|source=valid/ } @outs), 5, 'the others waited and used it');

# --- a provider that fails for now ------------------------------------------------------------------
$fake->mode(refresh => '500');
expire('youtube', '2 minutes');
$r = token('youtube');
is($r->{exit}, 0, 'refresh fails with 500 while the token is still valid: exit 0');
is($r->{source}, 'still_valid', 'source=still_valid');
expire('youtube', '-1 minute');
$r = token('youtube');
is($r->{exit}, 1, 'expired and the provider fails: exit 1');
is($r->{code}, 'provider_unavailable', 'provider_unavailable');
is($r->{http_status}, 503, 'http_status 503');
ok(cred('youtube')->{is_active}, 'the credential stays active');
$fake->mode(refresh => 'slow', delay => 8);
my $before_slow = () = $fake->calls;
$r = token('youtube');
# The provider logs the call only when it answers, 8 s in: a call that
# gave up after oauth_http_timeout returns before that line exists.
is(scalar(() = $fake->calls), $before_slow, 'a slow provider: the call gives up before the provider answers');
is($r->{code}, 'provider_unavailable', 'provider_unavailable');
# The abandoned answer must land before later checks count calls and tokens.
ok(wait_until(sub { scalar(() = $fake->calls) > $before_slow }, 30), 'the provider finished the abandoned call');

# --- refused: inactive ----------------------------------------------------------------------------
$fake->mode(refresh => 'invalid_grant');
my $calls = () = $fake->calls;
$r = token('youtube');
is($r->{exit}, 2, 'the provider refuses the refresh: exit 2');
is($r->{code}, 'credential_inactive', 'credential_inactive');
is($r->{http_status}, 409, 'http_status 409');
ok(!cred('youtube')->{is_active}, 'the credential is marked inactive');
my $res = $ngx->request('GET', '/functions/v1/credentials', headers => \%A);
ok(!decode_json($res->content)->[0]{is_active}, 'the owner sees is_active: false');
$fake->mode();
$calls = () = $fake->calls;
$r = token('youtube');
is($r->{code}, 'credential_inactive', 'later calls: inactive');
is(scalar(() = $fake->calls), $calls, 'without asking the provider again');
($final) = FakeOAuth::browse($ngx, '/functions/v1/oauth/youtube/start', \%A);
is($final, 'https://app.example.com?connected=youtube', 'the user connects again');
ok(cred('youtube')->{is_active}, 'active again');
is(token('youtube')->{source}, 'valid', 'and usable');

# --- TikTok rotates refresh tokens ----------------------------------------------------------------
$fake->mode(rotate_refresh => 1);
FakeOAuth::browse($ngx, '/functions/v1/oauth/tiktok/start', \%A);
for my $round (1 .. 2) {
    expire('tiktok', '-1 minute');
    $r = token('tiktok');
    is($r->{source}, 'refreshed', "tiktok refresh $round") or diag explain $r;
}
is(scalar grep({ $_ eq 'unknown_refresh_token' } $fake->calls('refresh_token')), 0,
    'the second refresh used the rotated refresh token');
$fake->mode();

# --- the V2 document's way: tokens in Vault secrets -------------------------------------------------
# A token the provider issued, stored through the Vault rpc and referenced
# by id in the row, as the document does it.
$su->do(q{DELETE FROM platform_credentials WHERE platform_id = (SELECT id FROM platforms WHERE name = 'youtube')});
my $form = "grant_type=authorization_code";
($final, my $hops) = FakeOAuth::browse($ngx, '/functions/v1/oauth/youtube/start', \%A);
my ($vat, $vrt) = ((grep { /^fake-at-/ } $fake->tokens)[-1], (grep { /^fake-rt-/ } $fake->tokens)[-1]);
$su->do(q{DELETE FROM platform_credentials WHERE platform_id = (SELECT id FROM platforms WHERE name = 'youtube')});
my %ids;
for ([at => $vat], [rt => $vrt]) {
    $res = $ngx->request('POST', '/rest/v1/rpc/vault.create_secret', headers => \%S,
        body => encode_json({ secret => $_->[1], name => "yt_$_->[0]" }));
    $ids{ $_->[0] } = decode_json($res->content)->{id};
}
my ($yt) = $su->selectrow_array(q{SELECT id FROM platforms WHERE name = 'youtube'});
$res = $ngx->request('POST', '/rest/v1/platform_credentials', headers => \%S, body => encode_json({
    user_id => $A, platform_id => $yt, encrypted_access_token => $ids{at}, encrypted_refresh_token => $ids{rt},
    token_expires_at => '2099-01-01T00:00:00Z' }));
is($res->code, 201, 'a credential referencing two Vault secrets') or diag $res->content;
$r = token('youtube');
is($r->{fingerprint}, fp($vat), 'its token is read from the Vault');
expire('youtube', '-1 minute');
$r = token('youtube');
is($r->{source}, 'refreshed', 'and refreshed with the Vault-held refresh token');
my $new = newest_access();
$res = $ngx->request('POST', '/rest/v1/rpc/vault.get_secret', headers => \%S, body => encode_json({ secret_id => $ids{at} }));
is(JSON::PP->new->allow_nonref->decode($res->content), $new, 'the new token replaced the secret in place: get_secret(id) returns it');
is(cred('youtube')->{encrypted_access_token}, $ids{at}, 'the row still references the same secret');

# --- errors of the command itself ---------------------------------------------------------------
$r = token('instagram');
is($r->{exit}, 2, 'no instagram credential: exit 2');
is($r->{code}, 'credential_not_found', 'credential_not_found');
my ($rc) = run_command([$admin, 'credentials', 'token', '--user', $A]);
is($rc, 1, '--platform missing: exit 1');
($rc) = run_command([$admin, 'credentials', 'nope']);
is($rc, 1, 'an unknown verb: exit 1');

$ngx->stop;
$pool->stop;
done_testing;
