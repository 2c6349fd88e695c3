#!/usr/bin/perl
# Realtime with the real @supabase/supabase-js: PostgreSQL, the pool (which
# starts streamvibe-realtime), nginx proxying /realtime/v1/, and
# t/js/realtime.mjs run three times: with the pinned client of
# t/js/package-lock.json (its default serializer, vsn 2.0.0), the same
# client with vsn 1.0.0 (what clients up to realtime-js 2.90 use), and the
# newest 2.x from the registry. Each run's TAP is re-issued here.
#
# Skips only when node/npm are missing or the registry cannot be reached,
# and never when $CI is set: there those are failures.

use strict;
use warnings;
use Test::More;
use Cwd qw(abs_path);
use Digest::SHA qw(sha256_hex);
use File::Copy qw(copy);
use JSON::PP ();
use Time::HiRes qw(time);
use SV::Test qw(sv_srcdir sv_tempdir free_tcp_port run_command find_program slurp_file);
use SV::Test::Npm;
use SV::Test::Pg;
use SV::Test::Nginx;
use SV::Test::Stack;

sub skip_or_fail { SV::Test::Npm::skip_or_fail(@_) }

my $node = SV::Test::Npm::node_for_stack();
my $psql = find_program('psql', SV::Test::Pg::pg_bindir() // ()) or skip_or_fail('psql not installed');

my $jsdir = sv_srcdir() . '/t/js';
my ($pinned, $latest, $latest_version);
eval {
    $pinned = SV::Test::Npm::install_lock($jsdir);
    ($latest, $latest_version) = SV::Test::Npm::install_latest('@supabase/supabase-js', '2');
    1;
} or do {
    my $e = $@;
    skip_or_fail("the npm registry cannot be reached", $e) if $e =~ /^npm-offline/;
    BAIL_OUT($e);
};

# --- the stack ---------------------------------------------------------------
my $secret = 'sv-510-realtime-' . sha256_hex("$$-" . time . rand());
my $rt_port = free_tcp_port();
my $s = SV::Test::Stack->new(workers => 2, conf => { jwt_secret => $secret, realtime_listen => "127.0.0.1:$rt_port" },
    nginx_conf => { realtime => "127.0.0.1:$rt_port" });
# The only test so far is the stack's "migrate".
Test::More->builder->is_passing or BAIL_OUT('migrate failed');
my ($pg, $pool, $ngx) = ($s->pg, $s->pool, $s->ngx);
ok(SV::Test::wait_until(sub { ($ngx->json($ngx->request('GET', '/realtime/v1/healthz')) // {})->{status} // '' eq 'ok' }, 15),
   'streamvibe-realtime answers through nginx') or diag($pool->diag_output);

my %keys = map { $_ => $s->jwt(role => $_, exp => int(time) + 86400) } qw(anon service_role);

my @flags = SV::Test::Npm::node_flags();
sub run_script {
    my ($label, $modules, %env) = @_;
    my $dir = sv_tempdir(prefix => 'svrtjs');
    copy("$jsdir/realtime.mjs", "$dir/realtime.mjs") or BAIL_OUT("copy realtime.mjs: $!");
    symlink(abs_path("$modules/node_modules"), "$dir/node_modules") or BAIL_OUT("symlink: $!");
    my $ver = eval { JSON::PP::decode_json(slurp_file("$modules/node_modules/\@supabase/supabase-js/package.json"))->{version} } // '?';
    my $t0 = time;
    my ($nrc, $tap, $stderr) = run_command([$node, @flags, "$dir/realtime.mjs"], dir => $dir, timeout => 300,
        env => { SUPABASE_URL => 'http://127.0.0.1:' . $ngx->port, SUPABASE_ANON_KEY => $keys{anon},
                 SUPABASE_SERVICE_KEY => $keys{service_role}, SV_PG_CONNINFO => $pg->conninfo(user => 'postgres'),
                 SV_PSQL => $psql, NODE_OPTIONS => undef, NO_COLOR => 1, %env });
    note(sprintf('%s: supabase-js %s ran for %.1fs', $label, $ver, time - $t0));
    my ($n, $plan) = SV::Test::Npm::reissue_tap($label, $tap);
    ok(defined $plan && $plan == $n && $n > 40, "$label: realtime.mjs ran to the end ($n assertions)")
        or diag("exit $nrc; stderr:\n$stderr");
    return $ver;
}

my $pinned_version = run_script('pinned', $pinned);
run_script("pinned vsn 1.0.0", $pinned, SV_RT_VSN => '1.0.0');
if ($latest_version eq $pinned_version) {
    note("the newest 2.x is the pinned $pinned_version");
} else {
    run_script("latest $latest_version", $latest);
}

my $log = $pool->log;
like($log, qr/event=rt_start .*\(inherited\)/, 'the pool started streamvibe-realtime on the socket it opened');
unlike($log, qr/level=error/, 'no error in the log') or diag($log);
unless (Test::More->builder->is_passing) {
    diag($pool->diag_output);
    diag("--- nginx error.log\n" . $ngx->error_log);
}
$ngx->stop;
$pool->stop;
done_testing;
