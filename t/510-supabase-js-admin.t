#!/usr/bin/perl
# supabase-js's auth.admin.* (the pinned @supabase/supabase-js of
# t/js/package-lock.json, installed as t/500 installs it) against
# PostgreSQL + pool + nginx: t/js/admin-users.mjs, whose TAP is re-issued
# here. The real client's createUser, listUsers (pagination from
# X-Total-Count and Link), getUserById, updateUserById and deleteUser.
#
# Skips only when node/npm are missing or the npm registry cannot be
# reached -- and never when $CI is set: there those are failures.

use strict;
use warnings;
use Test::More;
use Cwd qw(abs_path);
use Digest::SHA qw(sha256_hex);
use File::Copy qw(copy);
use Time::HiRes qw(time);
use SV::Test qw(sv_srcdir sv_tempdir run_command);
use SV::Test::Npm;
use SV::Test::Pg;
use SV::Test::Nginx;
use SV::Test::Stack;

sub skip_or_fail { SV::Test::Npm::skip_or_fail(@_) }

my $node = SV::Test::Npm::node_for_stack();

my $jsdir = sv_srcdir() . '/t/js';
my $cache = eval { SV::Test::Npm::install_lock($jsdir) } // do {
    my $e = $@;
    skip_or_fail('npm ci cannot reach the npm registry', $e) if $e =~ /^npm-offline/;
    BAIL_OUT($e);
};

my $s = SV::Test::Stack->new(workers => 2,
    conf => { jwt_secret => 'sv-510-admin-' . sha256_hex("$$-" . time . rand()), password_min_length => 10 });
Test::More->builder->is_passing or BAIL_OUT('migrate failed');
my ($pool, $ngx) = ($s->pool, $s->ngx);
my %keys = map { $_ => $s->jwt(role => $_, exp => int(time) + 86400) } qw(anon service_role);

my $dir = sv_tempdir(prefix => 'svadminjs');
copy("$jsdir/admin-users.mjs", "$dir/admin-users.mjs") or BAIL_OUT("copy admin-users.mjs: $!");
symlink(abs_path("$cache/node_modules"), "$dir/node_modules") or BAIL_OUT("symlink: $!");
my $t0 = time;
my ($nrc, $tap, $stderr) = run_command([$node, SV::Test::Npm::node_flags(), "$dir/admin-users.mjs"],
    dir => $dir, timeout => 300,
    env => { SUPABASE_URL => 'http://127.0.0.1:' . $ngx->port, SUPABASE_ANON_KEY => $keys{anon},
             SUPABASE_SERVICE_KEY => $keys{service_role}, NODE_OPTIONS => undef, NO_COLOR => 1 });
note(sprintf('admin-users.mjs ran for %.1fs', time - $t0));
my ($n, $plan) = SV::Test::Npm::reissue_tap('js', $tap);
ok(defined $plan && $plan == $n && $n > 40, "admin-users.mjs ran to the end ($n assertions)")
    or diag("exit $nrc; stderr:\n$stderr");

unless (Test::More->builder->is_passing) {
    diag($pool->diag_output);
    diag("--- nginx error.log\n" . $ngx->error_log);
}
$s->stop;
done_testing;
