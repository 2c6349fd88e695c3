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
use File::Path qw(make_path remove_tree);
use JSON::PP ();
use Time::HiRes qw(time);
use SV::Test qw(sv_srcdir sv_tempdir run_command find_program slurp_file write_file);
use SV::Test::Pg;
use SV::Test::Nginx;
use SV::Test::Stack;
use FindBin;
use lib "$FindBin::Bin/fake";
use FakePlatform;

my $CI = defined $ENV{CI} && length $ENV{CI} && $ENV{CI} ne 'false' && $ENV{CI} ne '0';

# Skip, or in CI fail: CI installs everything and has the registry.
sub skip_or_fail {
    my ($why, $detail) = @_;
    if ($CI) {
        plan tests => 1;
        fail("supabase-js test cannot run in CI: $why");
        diag($detail) if defined $detail;
        exit 1;
    }
    print STDERR "#\n# *** t/500-supabase-js.t SKIPPED: $why ***\n#\n";
    print STDERR map { "# $_\n" } split /\n/, $detail if defined $detail;
    plan skip_all => $why;
}

skip_or_fail('nginx not installed') unless SV::Test::Nginx::available();
skip_or_fail('PostgreSQL server not installed') unless SV::Test::Pg::available();
my $node = find_program('node') // find_program('nodejs');
skip_or_fail('node not installed (scripts/install-deps installs it)') unless $node;
my $npm = find_program('npm');
skip_or_fail('npm not installed (scripts/install-deps installs it)') unless $npm;

my $jsdir = sv_srcdir() . '/t/js';
my $lock = slurp_file("$jsdir/package-lock.json") // BAIL_OUT("cannot read $jsdir/package-lock.json");
my $pkg = slurp_file("$jsdir/package.json") // BAIL_OUT("cannot read $jsdir/package.json");
-r "$jsdir/v2-design.mjs" or BAIL_OUT("cannot read $jsdir/v2-design.mjs");

# --- node_modules, installed once per lock file --------------------------
my $key = substr(sha256_hex($pkg . "\0" . $lock), 0, 16);
my $cache = $ENV{SV_NPM_CACHE} // "/var/tmp/streamvibe-npm-$key";
my $stamp = "$cache/.streamvibe-npm-ok";

unless (-e $stamp) {
    # Install into a private directory and rename it into place, so two
    # runs at once never see a half-installed tree.
    (my $parent = $cache) =~ s{/[^/]+/?$}{};
    make_path($parent) unless -d $parent;
    my $tmp = "$cache.tmp.$$";
    remove_tree($tmp);
    make_path($tmp) or BAIL_OUT("cannot create $tmp: $!");
    copy("$jsdir/package.json", "$tmp/package.json") or BAIL_OUT("copy package.json: $!");
    copy("$jsdir/package-lock.json", "$tmp/package-lock.json") or BAIL_OUT("copy package-lock.json: $!");
    my %env = (npm_config_update_notifier => 'false');
    # npm keeps its download cache in ~/.npm; use a shared one when HOME
    # is not writable (e.g. a distcheck or a sandboxed user).
    $env{npm_config_cache} = "/var/tmp/streamvibe-npm-cache"
        if !defined $ENV{npm_config_cache} && !(defined $ENV{HOME} && -w $ENV{HOME});
    my $t0 = time;
    my ($rc, $out, $err) = run_command(
        [$npm, 'ci', '--no-audit', '--no-fund', '--ignore-scripts',
         '--fetch-retries=2', '--fetch-retry-mintimeout=2000', '--fetch-retry-maxtimeout=10000'],
        dir => $tmp, env => \%env, timeout => 600);
    my $took = time - $t0;
    if ($rc != 0) {
        remove_tree($tmp);
        my $msg = "$out$err";
        if ($msg =~ /\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|ERR_SOCKET_TIMEOUT|network)\b/i) {
            skip_or_fail("npm ci cannot reach the npm registry ($1)", "npm ci output:\n$msg");
        }
        diag("npm ci output:\n$msg");
        BAIL_OUT("npm ci failed (exit $rc) in $tmp");
    }
    write_file("$tmp/.streamvibe-npm-ok", sprintf("npm ci took %.1fs\n", $took));
    if (!rename($tmp, $cache)) {
        # Another run got there first (or a stale, unstamped dir is there).
        if (-e $stamp) {
            remove_tree($tmp);
        } else {
            remove_tree($cache);
            rename($tmp, $cache) or BAIL_OUT("cannot rename $tmp to $cache: $!");
        }
    }
    note(sprintf('npm ci into %s took %.1fs', $cache, $took));
} else {
    note("using cached node_modules in $cache");
}
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
my @node_flags;
{
    my ($frc) = run_command([$node, '--experimental-websocket', '-e', '0'], timeout => 30);
    push @node_flags, '--experimental-websocket' if $frc == 0;
}
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

# Re-issue the script's TAP: each "ok"/"not ok" becomes a test here; its
# comments follow as notes, or as diagnostics after a failure.
my ($n, $plan, $last_failed) = (0, undef, 0);
for my $line (split /\n/, $tap) {
    if ($line =~ /^(not )?ok \d+(?: - (.*))?$/) {
        my $pass = !defined $1;
        my $name = $2 // '';
        $name =~ s/\\#/#/g;
        ok($pass, "js: $name");
        $last_failed = !$pass;
        $n++;
    } elsif ($line =~ /^1\.\.(\d+)/) {
        $plan = $1;
    } elsif ($line =~ /^# ?(.*)$/) {
        if ($last_failed) { diag($1) } else { note($1) }
    } elsif (length $line) {
        diag("js stdout: $line");
    }
}
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
