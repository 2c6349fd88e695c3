#!/usr/bin/perl
# The V2 design document's own supabase-js calls against the server:
# PostgreSQL + pool + nginx, @supabase/supabase-js (the exact version in
# t/js/package-lock.json) installed with `npm ci` into a cache directory
# outside the source tree, then t/js/v2-design.mjs run with Node. Its TAP
# is re-issued here test by test. Its step 8d is the seed's sync
# (functions.invoke('sync-platform')) against a fake YouTube started here.
#
# The node_modules cache is keyed on the lock file's hash:
#   $SV_NPM_CACHE, default /var/tmp/streamvibe-npm-<sha256 of the lock, 16 hex>
# so it survives between runs, is never inside the (possibly read-only)
# source tree, and a new lock file gets a fresh directory.
#
# Skips only when node/npm are missing or the npm registry cannot be
# reached -- and never when $CI is set: there those are failures.

use strict;
use warnings;
use Test::More;
use Cwd qw(abs_path);
use Digest::SHA qw(sha256_hex);
use File::Copy qw(copy);
use JSON::PP ();
use Time::HiRes qw(time);
use SV::Test qw(sv_srcdir sv_tempdir run_command slurp_file);
use SV::Test::Npm;
use SV::Test::Pg;
use SV::Test::Nginx;
use SV::Test::Stack;
use FindBin;
use lib "$FindBin::Bin/fake";
use FakePlatform;

# Skip, or in CI fail: CI installs everything and has the registry.
sub skip_or_fail { SV::Test::Npm::skip_or_fail(@_) }

my $node = SV::Test::Npm::node_for_stack();

my $jsdir = sv_srcdir() . '/t/js';
-r "$jsdir/v2-design.mjs" or BAIL_OUT("cannot read $jsdir/v2-design.mjs");

# --- node_modules, installed once per lock file --------------------------
my $cache = eval { SV::Test::Npm::install_lock($jsdir) } // do {
    my $e = $@;
    skip_or_fail('npm ci cannot reach the npm registry', $e) if $e =~ /^npm-offline/;
    diag($e);
    BAIL_OUT("npm ci failed");
};
note("node_modules in $cache");
-e "$cache/node_modules/\@supabase/supabase-js/package.json"
    or BAIL_OUT("$cache has no \@supabase/supabase-js; remove it and re-run");

# --- the stack -------------------------------------------------------------
my $jwt_secret = 'sv-500-supabase-js-' . sha256_hex("$$-" . time . '-' . rand());

# A vault key, so the seed's Vault calls (step 8c) work.
my $keydir = SV::Test::sv_tempdir(prefix => 'svjskey');
run_command([SV::Test::sv_builddir() . '/streamvibe-admin', 'keygen', "$keydir/vault.key"], timeout => 30);
# A fake YouTube for the seed's sync (step 8d), knowing one token.
my $yt_token = 'ya29.js-sync-' . substr(sha256_hex(rand()), 0, 16);
my $youtube = FakePlatform->new('youtube', tokens => [$yt_token]);
$youtube->items(map { +{ id => "jsvid$_", title => "JS video $_", description => "about $_", tags => ['js'],
    views => $_, likes => 0, comments => 0, duration => 30, created => 1714665600 - $_ } } 1 .. 3);
my $s = SV::Test::Stack->new(workers => 2,
    conf => { jwt_secret => $jwt_secret, vault_key_file => "$keydir/vault.key",
        job_spool_dir => SV::Test::sv_tempdir(prefix => 'svjsspool') . '/jobs',
        job_program => SV::Test::sv_builddir() . '/streamvibe-job', youtube_api_url => $youtube->url });
# The only test so far is the stack's "migrate".
Test::More->builder->is_passing or BAIL_OUT('migrate failed');
my ($pg, $pool, $ngx) = ($s->pg, $s->pool, $s->ngx);

# The anon and service_role API keys a web app puts in its config, from
# `streamvibe-admin keys` reading the pool's config file, as an operator
# gets them. Should that fail (a test failure of its own), keys minted here
# the same way (HS256 JWTs signed with the server's secret) still let the
# script run.
my %keys;
{
    my ($krc, $kout, $kerr) = run_command(
        [SV::Test::sv_builddir() . '/streamvibe-admin', 'keys', '--config', $pool->config_file],
        timeout => 30, env => { STREAMVIBE_JWT_SECRET => undef, STREAMVIBE_CONFIG => undef });
    %keys = $kout =~ /^(anon_key|service_role_key)=(\S+)$/mg;
    ok($krc == 0 && $keys{anon_key} && $keys{service_role_key}, 'streamvibe-admin keys prints anon_key and service_role_key')
        or diag("exit $krc\n$kout$kerr");
    $keys{anon_key} //= api_key('anon');
    $keys{service_role_key} //= api_key('service_role');
}

sub api_key { $s->jwt(role => $_[0], exp => int(time) + 24 * 3600) }

# Fallback users, made in SQL with access tokens carrying GoTrue's claims.
# The script uses them only if /auth/v1 fails (its step 1 then already
# failed), so that /rest/v1 is still exercised.
sub fallback_user {
    my ($tag) = @_;
    my $email = "v2doc-fallback-$tag-$$\@example.com";
    my ($id, $sid) = split /\|/, $pg->psql(
        "WITH u AS (INSERT INTO auth.users (email, email_confirmed_at) VALUES ('$email', now()) RETURNING id), "
        . "s AS (INSERT INTO auth.sessions (user_id) SELECT id FROM u RETURNING id, user_id) "
        . "SELECT user_id || '|' || id FROM s");
    my $now = int(time);
    return JSON::PP->new->canonical->encode({
        id => $id, email => $email,
        access_token => $s->jwt(claims => { sub => $id, aud => 'authenticated', role => 'authenticated',
            email => $email, session_id => $sid, iat => $now, exp => $now + 3600, iss => 'streamvibe' }),
    });
}

# The script runs from a directory of this test whose node_modules is the
# cache (ES modules ignore NODE_PATH; bare imports are resolved from the
# importing file's directory).
my $rundir = sv_tempdir(prefix => 'svjs');
copy("$jsdir/v2-design.mjs", "$rundir/v2-design.mjs") or BAIL_OUT("copy v2-design.mjs: $!");
symlink(abs_path("$cache/node_modules"), "$rundir/node_modules") or BAIL_OUT("symlink node_modules: $!");

# supabase-js builds a realtime client in createClient() and wants a
# WebSocket class; Node 20/21 have one behind a flag, Node 22+ built in.
my @node_flags = SV::Test::Npm::node_flags();
my ($vrc, $version) = run_command([$node, '--version'], timeout => 30);
chomp $version;
my $sbver = eval { JSON::PP::decode_json(slurp_file("$cache/node_modules/\@supabase/supabase-js/package.json"))->{version} } // '?';
note("node $version, \@supabase/supabase-js $sbver");

my $t0 = time;
my ($nrc, $tap, $stderr) = run_command([$node, @node_flags, "$rundir/v2-design.mjs"],
    dir => $rundir, timeout => 300,
    env => {
        SUPABASE_URL         => 'http://127.0.0.1:' . $ngx->port,
        SUPABASE_ANON_KEY    => $keys{anon_key},
        SUPABASE_SERVICE_KEY => $keys{service_role_key},
        SV_FALLBACK_A        => fallback_user('a'),
        SV_FALLBACK_B        => fallback_user('b'),
        SV_YOUTUBE_TOKEN     => $yt_token,
        SV_YOUTUBE_TITLES    => JSON::PP::encode_json([map { "JS video $_" } 1 .. 3]),
        NODE_PATH            => "$cache/node_modules",
        NODE_OPTIONS         => undef,
        NO_COLOR             => 1,
    });
note(sprintf('v2-design.mjs ran for %.1fs', time - $t0));

my ($n, $plan) = SV::Test::Npm::reissue_tap('js', $tap);
ok(defined $plan && $plan == $n, "v2-design.mjs ran to the end ($n assertions)")
    or diag("exit $nrc; stderr:\n$stderr");
ok($nrc == 0 || grep({ /^not ok/ } split /\n/, $tap), 'node exited 0, or reported its failures')
    or diag("exit $nrc; stderr:\n$stderr");
diag("node stderr:\n$stderr") if $nrc != 0 && length $stderr;

unless (Test::More->builder->is_passing) {
    diag($pool->diag_output);
    diag("--- nginx error.log\n" . $ngx->error_log);
}

$s->stop;
done_testing;
