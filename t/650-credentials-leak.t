#!/usr/bin/perl
# No token leaks: everything the credential code does (OAuth flows for
# two platforms and two users, direct uploads, refreshes on expiry, on
# rejection, concurrent, refused and failing, a key rotation, revoke and
# delete, listings through /functions/v1 and /rest/v1), with PostgreSQL
# logging every statement and its parameters; then every token the fake
# provider issued (and every token the test uploaded) is searched for in
# a pg_dump of the database, every response (bodies and headers), the
# admin command's output, the pool's log, nginx's logs and PostgreSQL's
# log: zero hits. The searches are shown to work: the sealed values do
# appear in the dump and in the statement log.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use FindBin;
use lib "$FindBin::Bin/fake";
use FakeOAuth;
use SV::Test qw(:DEFAULT run_command spawn_process slurp_file vault_key);
use SV::Test::Stack;

my $admin = sv_builddir() . '/streamvibe-admin';
my $keys = sv_tempdir(prefix => 'svkeys');
vault_key("$keys/k$_.key") for 1, 2;
my $fake = FakeOAuth->new(client_id => 'leak-client', client_secret => 'leak-client-secret');
my $secret = 'leak-secret-' . ('l' x 32);
my $port = free_tcp_port();
my $s = SV::Test::Stack->new(workers => 2, nginx_port => $port, pg_settings => { log_statement => "'all'",
    log_min_messages => 'info', log_min_error_statement => 'info' }, conf => { jwt_secret => $secret,
    vault_key_file => "$keys/k1.key", oauth_http_timeout => 3, api_external_url => "http://127.0.0.1:$port",
    site_url => 'https://app.example.com', rate_limit_functions => 'off', $fake->conf(qw(youtube tiktok)) });
my ($pg, $pool, $ngx, $su) = ($s->pg, $s->pool, $s->ngx, $s->su);

my %S = %{ $s->service };
my $A = $s->user('a@example.com');
my $B = $s->user('b@example.com');
my %A = %{ $s->auth($A) };
my %B = %{ $s->auth($B) };

my @seen;    # every response (status line, headers, body) and every command output
sub req {
    my ($method, $path, $h, $body) = @_;
    my $res = $ngx->request($method, $path, headers => $h, defined $body ? (body => encode_json($body)) : ());
    push @seen, $res->as_string;
    return $res;
}
sub browse {
    my ($path, $h) = @_;
    my ($final, $hops) = FakeOAuth::browse($ngx, $path, $h);
    push @seen, map { $_->[2]->as_string } @$hops;
    return $final;
}
sub token {
    my ($uid, $p, @extra) = @_;
    my ($c, $o, $e) = run_command([$admin, 'credentials', 'token', '--user', $uid, '--platform', $p,
        '--config', $pool->config_file, @extra]);
    push @seen, $o, $e;
    return $o;
}
sub expire { $su->do(q{UPDATE platform_credentials SET token_expires_at = now() - interval '1 minute'
    WHERE user_id = ? AND platform_id = (SELECT id FROM platforms WHERE name = ?)}, undef, @_) }

# --- exercise everything ------------------------------------------------------------
is(browse('/functions/v1/oauth/youtube/start', \%A), 'https://app.example.com?connected=youtube', 'A connects YouTube');
is(browse('/functions/v1/oauth/tiktok/start?redirect_to=https://app.example.com/x', \%A),
    'https://app.example.com/x?connected=tiktok', 'A connects TikTok');
is(browse('/functions/v1/oauth/youtube/start', \%B), 'https://app.example.com?connected=youtube', 'B connects YouTube');
my $uploaded = 'IGQVJ-uploaded-' . join('', map { ('a' .. 'z')[rand 26] } 1 .. 30);
is(req('POST', '/functions/v1/credentials', \%A, { platform => 'instagram', access_token => $uploaded,
    refresh_token => "$uploaded-r" })->code, 201, 'A uploads an Instagram token');
like(token($A, 'youtube'), qr/source=valid/, 'a fresh token');
expire($A, 'youtube');
like(token($A, 'youtube'), qr/source=refreshed/, 'a refresh on expiry');
like(token($A, 'youtube', '--rejected'), qr/source=refreshed/, 'a refresh after a rejection');
expire($A, 'youtube');
$fake->mode(delay => 1);
my $dir = sv_tempdir(prefix => 'svleak');
my @p = map { spawn_process([$admin, 'credentials', 'token', '--user', $A, '--platform', 'youtube', '--config',
    $pool->config_file], stdout => "$dir/c$_", stderr => "$dir/c$_") } 1 .. 3;
waitpid($_, 0) for @p;
push @seen, map { slurp_file("$dir/c$_") } 1 .. 3;
is(scalar grep({ /status=ok/ } @seen[-3 .. -1]), 3, 'three concurrent refreshers');
$fake->mode(refresh => '500');
expire($A, 'tiktok');
like(token($A, 'tiktok'), qr/provider_unavailable/, 'a failing provider');
$fake->mode(refresh => 'invalid_grant');
expire($B, 'youtube');
like(token($B, 'youtube'), qr/credential_inactive/, 'a refused refresh');
$fake->mode();
like(token($A, 'tiktok'), qr/source=refreshed/, 'tiktok refreshed once the provider is back');
is(req('GET', '/functions/v1/credentials', \%A)->code, 200, 'A lists');
is(req('GET', '/functions/v1/credentials', \%B)->code, 200, 'B lists');
is(req('GET', '/rest/v1/platform_credentials?select=platform_id,scopes,is_active', \%A)->code, 200, 'metadata via /rest/v1');
is(req('GET', '/rest/v1/platform_credentials?select=*', \%S)->code, 200, 'the service role reads sealed rows via /rest/v1');

# rotation to key 2
$pool->conf(vault_key_file => "$keys/k2.key");
$pool->conf(vault_old_key_files => "$keys/k1.key");
$pool->reload;
ok(wait_until(sub { $pool->log =~ /event=reload generation=2/ }), 'reloaded with key 2');
# Once the old generation's 2 workers are gone, no request reaches
# one with the old configuration.
ok(wait_until(sub { (() = $pool->log =~ /event=worker_exit [^\n]*generation=1\b/g) >= 2 }, 30), 'the old workers are gone');
my ($c, $o, $e) = run_command([$admin, 'keys', 'rotate', '--batch', '2', '--config', $pool->config_file,
    '--database', $pg->conninfo(user => 'postgres')]);
push @seen, $o, $e;
is($c, 0, 'rotated');
like(token($A, 'instagram'), qr/status=ok/, 'readable after rotation');

is(req('DELETE', '/functions/v1/credentials/tiktok', \%A)->code, 200, 'A disconnects TikTok (revoked)');
ok(scalar($fake->revoked) >= 1, 'the provider revoked a token');
is(req('DELETE', '/functions/v1/credentials/youtube', \%B)->code, 200, 'B disconnects YouTube');

# --- search -----------------------------------------------------------------------------
my @tokens = ($fake->tokens, $uploaded, "$uploaded-r");
ok(@tokens >= 10, scalar(@tokens) . ' tokens to look for');
my $dump = `@{[SV::Test::Pg::pg_bindir()]}/pg_dump -h @{[$pg->socket_dir]} -p @{[$pg->port]} -U postgres streamvibe 2>&1`;
like($dump, qr/COPY public\.platform_credentials/, 'pg_dump has the credentials table');
like($dump, qr/sv1:\d+:[A-Za-z0-9_-]{60,}/, 'and its sealed values (the search can see them)');
my $pglog = $pg->log;
like($pglog, qr/statement: |execute /, "PostgreSQL's log has the statements");
like($pglog, qr/parameters: .*'sv1:\d+:/, 'and their parameters, sealed values among them');
my %where = (
    'pg_dump'            => $dump,
    'responses'          => join("\n", @seen[0 .. $#seen]),
    'pool log'           => $pool->log . $pool->stderr,
    'nginx access log'   => $ngx->access_log,
    'nginx error log'    => $ngx->error_log,
    "PostgreSQL's log"   => $pglog,
);
for my $w (sort keys %where) {
    my @hits = grep { index($where{$w}, $_) >= 0 } @tokens;
    is(scalar @hits, 0, "$w: none of the tokens") or diag "found: @hits";
}

$ngx->stop;
$pool->stop;
done_testing;
