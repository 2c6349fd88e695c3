package SV::Test::Npm;

# node_modules for the tests that run the real @supabase/supabase-js,
# installed outside the source tree into a cache directory that survives
# between runs:
#
#   my $dir = SV::Test::Npm::install_lock("$src/t/js");   # npm ci of that lock file
#   my ($dir, $version) = SV::Test::Npm::install_latest('@supabase/supabase-js', '2');
#
# install_lock keys the cache on package.json + package-lock.json;
# install_latest asks the registry for the newest version of the major
# and keys on it. Both die with "npm-offline: ..." when the registry
# cannot be reached (the caller skips, or fails in CI), and with another
# message on any other failure.

use strict;
use warnings;

use Digest::SHA qw(sha256_hex);
use File::Copy qw(copy);
use File::Path qw(make_path remove_tree);
use JSON::PP ();
use Time::HiRes qw(time);
use Test::More ();
use SV::Test qw(run_command find_program slurp_file write_file);

sub npm { find_program('npm') }

# Whether this is CI, where everything is installed and the registry is
# reachable.
sub ci { my $ci = $ENV{CI}; defined $ci && length $ci && $ci ne 'false' && $ci ne '0' }

# Skips the calling test because $why ($detail: more to show), except in
# CI, where a supabase-js test that cannot run is a failure: a skip there
# would hide a broken client.
sub skip_or_fail {
    my ($why, $detail) = @_;
    (my $test = $0) =~ s{^.*/(t/[^/]+)$}{$1};
    if (ci()) {
        Test::More::plan(tests => 1);
        Test::More::fail("$test cannot run in CI: $why");
        Test::More::diag($detail) if defined $detail;
        exit 1;
    }
    print STDERR "#\n# *** $test SKIPPED: $why ***\n#\n";
    print STDERR map { "# $_\n" } split /\n/, $detail if defined $detail;
    Test::More::plan(skip_all => $why);
}
sub node { find_program('node') // find_program('nodejs') }

# The node program, for a test that runs supabase-js through nginx
# against PostgreSQL: skips (in CI, fails) when any of the four is
# missing.
sub node_for_stack {
    require SV::Test::Nginx;
    require SV::Test::Pg;
    skip_or_fail('nginx not installed') unless SV::Test::Nginx::available();
    skip_or_fail('PostgreSQL server not installed') unless SV::Test::Pg::available();
    my $node = node() or skip_or_fail('node not installed (scripts/install-deps installs it)');
    npm() or skip_or_fail('npm not installed (scripts/install-deps installs it)');
    return $node;
}

# node's flags for supabase-js: Node 20/21 have WebSocket behind a flag.
sub node_flags {
    my $node = node() or return ();
    my ($rc) = run_command([$node, '--experimental-websocket', '-e', '0'], timeout => 30);
    return $rc == 0 ? ('--experimental-websocket') : ();
}

# Re-issues a script's TAP output: each "ok"/"not ok" becomes a test
# here named "$label: <its name>"; its comments follow as notes, or as
# diagnostics after a failure. Returns (the number of results, the plan
# it printed or undef): the caller checks that it ran to the end.
sub reissue_tap {
    my ($label, $tap) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my ($n, $plan, $last_failed) = (0, undef, 0);
    for my $line (split /\n/, $tap) {
        if ($line =~ /^(not )?ok \d+(?: - (.*))?$/) {
            my $pass = !defined $1;
            (my $name = $2 // '') =~ s/\\#/#/g;
            Test::More::ok($pass, "$label: $name");
            $last_failed = !$pass;
            $n++;
        } elsif ($line =~ /^1\.\.(\d+)/) {
            $plan = $1;
        } elsif ($line =~ /^# ?(.*)$/) {
            if ($last_failed) { Test::More::diag($1) } else { Test::More::note($1) }
        } elsif (length $line) {
            Test::More::diag("js stdout: $line");
        }
    }
    return ($n, $plan);
}

sub _env {
    my %env = (npm_config_update_notifier => 'false');
    $env{npm_config_cache} = '/var/tmp/streamvibe-npm-cache'
        if !defined $ENV{npm_config_cache} && !(defined $ENV{HOME} && -w $ENV{HOME});
    return \%env;
}

sub _offline {
    my ($msg) = @_;
    return $msg =~ /\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|ERR_SOCKET_TIMEOUT|network)\b/i ? $1 : undef;
}

# Runs @$cmd in a fresh directory that becomes $cache once it succeeded
# (renamed into place, so two runs at once never see half a tree).
sub _install_into {
    my ($cache, $prepare, $cmd) = @_;
    my $stamp = "$cache/.streamvibe-npm-ok";
    return $cache if -e $stamp;
    (my $parent = $cache) =~ s{/[^/]+/?$}{};
    make_path($parent) unless -d $parent;
    my $tmp = "$cache.tmp.$$";
    remove_tree($tmp);
    make_path($tmp) or die "cannot create $tmp: $!\n";
    $prepare->($tmp);
    my $t0 = time;
    my ($rc, $out, $err) = run_command($cmd, dir => $tmp, env => _env(), timeout => 600);
    if ($rc != 0) {
        remove_tree($tmp);
        my $msg = "$out$err";
        if (my $why = _offline($msg)) { die "npm-offline: $why\n$msg" }
        die "npm failed (exit $rc):\n$msg";
    }
    write_file("$tmp/.streamvibe-npm-ok", sprintf("installed in %.1fs\n", time - $t0));
    if (!rename($tmp, $cache)) {
        if (-e $stamp) { remove_tree($tmp) }
        else { remove_tree($cache); rename($tmp, $cache) or die "cannot rename $tmp to $cache: $!\n" }
    }
    return $cache;
}

sub install_lock {
    my ($jsdir) = @_;
    my $npm = npm() or die "npm not installed\n";
    my $pkg = slurp_file("$jsdir/package.json") // die "cannot read $jsdir/package.json\n";
    my $lock = slurp_file("$jsdir/package-lock.json") // die "cannot read $jsdir/package-lock.json\n";
    my $key = substr(sha256_hex($pkg . "\0" . $lock), 0, 16);
    my $cache = $ENV{SV_NPM_CACHE} // "/var/tmp/streamvibe-npm-$key";
    return _install_into($cache, sub {
        my ($tmp) = @_;
        copy("$jsdir/package.json", "$tmp/package.json") or die "copy package.json: $!\n";
        copy("$jsdir/package-lock.json", "$tmp/package-lock.json") or die "copy package-lock.json: $!\n";
    }, [$npm, 'ci', '--no-audit', '--no-fund', '--ignore-scripts',
        '--fetch-retries=2', '--fetch-retry-mintimeout=2000', '--fetch-retry-maxtimeout=10000']);
}

sub install_latest {
    my ($package, $major) = @_;
    my $npm = npm() or die "npm not installed\n";
    my ($rc, $out, $err) = run_command([$npm, 'view', "$package\@$major", 'version', '--json'],
        env => _env(), timeout => 120);
    if ($rc != 0) {
        my $msg = "$out$err";
        if (my $why = _offline($msg)) { die "npm-offline: $why\n$msg" }
        die "npm view $package\@$major failed (exit $rc):\n$msg";
    }
    my $v = eval { JSON::PP::decode_json($out) };
    my @versions = ref $v eq 'ARRAY' ? @$v : ($v);
    # The newest release (no pre-release tag).
    my ($latest) = sort { _vcmp($b, $a) } grep { defined && /^\d+\.\d+\.\d+$/ } @versions;
    die "npm view $package\@$major: no release found in:\n$out" unless $latest;
    (my $name = $package) =~ s{[^A-Za-z0-9]+}{-}g;
    my $cache = "/var/tmp/streamvibe-npm$name-$latest";
    _install_into($cache, sub {
        my ($tmp) = @_;
        write_file("$tmp/package.json", JSON::PP->new->canonical->encode(
            { name => 'streamvibe-latest', private => JSON::PP::true, dependencies => { $package => $latest } }));
    }, [$npm, 'install', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock',
        '--fetch-retries=2', '--fetch-retry-mintimeout=2000', '--fetch-retry-maxtimeout=10000']);
    return ($cache, $latest);
}

sub _vcmp {
    my @a = split /\./, $_[0];
    my @b = split /\./, $_[1];
    return $a[0] <=> $b[0] || $a[1] <=> $b[1] || $a[2] <=> $b[2];
}

1;
