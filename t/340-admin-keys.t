#!/usr/bin/perl
# streamvibe-admin keys: prints the anon and service_role API keys signed
# with the configured jwt_secret, refuses short or missing secrets, and
# the printed keys work against the server.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use MIME::Base64 qw(encode_base64url decode_base64url);
use Digest::SHA qw(hmac_sha256);
use SV::Test qw(:DEFAULT run_command write_file);
use SV::Test::Pg;
use SV::Test::Nginx;
use SV::Test::Stack;

my $admin = sv_builddir() . '/streamvibe-admin';
plan skip_all => "$admin not built" unless -x $admin;

my $dir = sv_tempdir(prefix => 'svkeys');
my $secret = 'admin-keys-secret-' . ('k' x 30);
write_file("$dir/sv.conf", "# test\njwt_secret = $secret\n", 0600);
my %noenv = (STREAMVIBE_JWT_SECRET => undef, STREAMVIBE_CONFIG => undef);

sub keys_run {
    my ($args, %env) = @_;
    return run_command([$admin, 'keys', @$args], env => { %noenv, %env }, timeout => 30);
}
sub parse_keys {
    my ($out) = @_;
    my %k = map { /^(\w+)=(\S+)$/ ? ($1 => $2) : () } split /\n/, $out;
    return \%k;
}
sub check_key {
    my ($tok, $key, $role, $name) = @_;
    my ($h, $p, $s) = split /\./, $tok // '';
    ok(defined $s, "$name: three segments") or return;
    is(encode_base64url(hmac_sha256("$h.$p", $key)), $s, "$name: HS256 signature with the secret");
    my $hd = decode_json(decode_base64url($h));
    is($hd->{alg}, 'HS256', "$name: alg HS256");
    my $c = decode_json(decode_base64url($p));
    is($c->{role}, $role, "$name: role $role");
    is($c->{iss}, 'streamvibe', "$name: iss");
    ok(abs($c->{iat} - time) < 60, "$name: iat is now");
    is($c->{exp} - $c->{iat}, 10 * 365 * 24 * 3600, "$name: ten years");
}

my ($rc, $out, $err) = keys_run(['--config', "$dir/sv.conf"]);
is($rc, 0, 'keys --config') or diag $err;
my @lines = split /\n/, $out;
is(scalar @lines, 2, 'two lines');
like($lines[0], qr/^anon_key=/, 'anon_key first');
like($lines[1], qr/^service_role_key=/, 'service_role_key second');
my $k = parse_keys($out);
check_key($k->{anon_key}, $secret, 'anon', 'anon key');
check_key($k->{service_role_key}, $secret, 'service_role', 'service key');
unlike($out . $err, qr/\Q$secret\E/, 'the secret itself is not printed');

($rc, $out, $err) = keys_run([], STREAMVIBE_CONFIG => "$dir/sv.conf");
is($rc, 0, 'config from $STREAMVIBE_CONFIG');
check_key(parse_keys($out)->{anon_key}, $secret, 'anon', 'via STREAMVIBE_CONFIG');

my $env_secret = 'from-the-environment-' . ('e' x 20);
($rc, $out, $err) = keys_run(['--config', "$dir/sv.conf"], STREAMVIBE_JWT_SECRET => $env_secret);
is($rc, 0, 'environment overrides the file');
check_key(parse_keys($out)->{service_role_key}, $env_secret, 'service_role', 'via STREAMVIBE_JWT_SECRET');

($rc, $out, $err) = keys_run([], STREAMVIBE_JWT_SECRET => 'x' x 31);
isnt($rc, 0, '31-byte secret refused');
is($out, '', 'nothing printed on stdout');
like($err, qr/32/, 'the error names the minimum');
unlike($err, qr/x{31}/, 'and not the secret');
($rc, $out, $err) = keys_run([], STREAMVIBE_JWT_SECRET => 'y' x 32);
is($rc, 0, '32-byte secret accepted');

($rc, $out, $err) = keys_run([]);
isnt($rc, 0, 'no secret at all: refused');
like($err, qr/jwt_secret/, 'says jwt_secret is missing');
($rc, $out, $err) = keys_run(['--config', "$dir/missing.conf"]);
isnt($rc, 0, 'missing config file: refused');
like($err, qr/missing\.conf/, 'names the file');
($rc, $out, $err) = keys_run(['--bogus']);
isnt($rc, 0, 'unknown option refused');
($rc, $out, $err) = keys_run(['extra']);
isnt($rc, 0, 'stray argument refused');

# The keys work against a server configured with the same secret.
SKIP: {
    skip 'nginx or PostgreSQL not installed', 6
        unless SV::Test::Nginx::available() && SV::Test::Pg::available();
    my $s = SV::Test::Stack->new(workers => 1, conf => { jwt_secret => $secret });
    my $ngx = $s->ngx;
    my $res = $ngx->request('GET', '/rest/v1/platforms?select=*',
        headers => { apikey => $k->{anon_key}, Authorization => "Bearer $k->{anon_key}" });
    is($res->code, 200, 'anon key accepted by /rest/v1') or diag $res->as_string;
    $res = $ngx->request('GET', '/rest/v1/platforms?select=*',
        headers => { apikey => $k->{service_role_key}, Authorization => "Bearer $k->{service_role_key}" });
    is($res->code, 200, 'service_role key accepted by /rest/v1') or diag $res->as_string;
    $res = $ngx->call('POST', '/auth/v1/signup', token => $k->{anon_key}, headers => { apikey => $k->{anon_key} },
        body => { email => 'keys@example.com', password => 'keys password' });
    is($res->code, 200, 'signup with the anon key as apikey') or diag $res->as_string;
    my ($rc2, $o2) = keys_run([], STREAMVIBE_JWT_SECRET => 'z' x 40);
    my $other = parse_keys($o2)->{anon_key};
    $res = $ngx->request('GET', '/rest/v1/platforms?select=*', headers => { apikey => $other, Authorization => "Bearer $other" });
    is($res->code, 401, 'a key printed for another secret is refused');
    $s->stop;
}

done_testing;
