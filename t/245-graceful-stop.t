#!/usr/bin/perl
# While one request is stuck the others are served; then
# SIGTERM stops the pool gracefully: a request already running finishes
# with its real answer, new connections are refused (the socket is gone
# at once), and the master exits by itself once the request is done.

use strict;
use warnings;
use Test::More;
use POSIX ();
use LWP::UserAgent;
use Time::HiRes qw(sleep);
use SV::Test qw(:DEFAULT slurp_file write_file pid_alive);
use SV::Test::Stack;

plan skip_all => 'DBD::Pg not installed' unless eval { require DBD::Pg; 1 };
my $s = SV::Test::Stack->new(workers => 2, conf => { request_timeout => 0, shutdown_timeout => 30 });
my ($pg, $pool, $ngx) = ($s->pg, $s->pool, $s->ngx);
is($ngx->request('GET', '/healthz')->code, 200, 'healthy');

# Hold the request inside the worker: /healthz reads schema_migrations.
my $dbh = $pg->lock_table('public.schema_migrations');

my $dir = sv_tempdir();
my $kid = fork // die "fork: $!";
if ($kid == 0) {
    # Its own user agent: the parent's keep-alive socket must not be shared.
    my $res = LWP::UserAgent->new(timeout => 60, env_proxy => 0)->get($ngx->url('/healthz'));
    write_file("$dir/result", $res->code . "\n" . $res->content);
    POSIX::_exit(0);
}
my @seen;
ok(wait_until(sub { my $r = $ngx->request('GET', '/status?full'); push @seen, $r->code . ' ' . $r->content; my $st = $ngx->json($r); $st && $st->{active_processes} >= 2 }, 10),
    'the request is running in a worker (status shows it active)') or diag join "\n", @seen[0 .. ($#seen < 3 ? $#seen : 3)];

# A stuck request must delay nobody else: a request nginx sends on a
# kept connection of the busy worker is passed on to the free one.
is(scalar(grep { $ngx->request('GET', '/status')->code == 200 } 1 .. 20), 20,
    'other requests are served while one is stuck');

my $master = $pool->pid;
kill 'TERM', $master;
ok(wait_until(sub { !-e $pool->socket }, 5), 'SIGTERM removes the socket at once');
# The idle worker answers on its kept connections for a moment before it
# leaves (a request then is served, not refused); the busy one closes its
# idle ones at once (t/248).
ok(scalar $pool->wait_workers(1, 5), 'the idle worker leaves');
ok(pid_alive($master), 'the master waits for the in-flight request');
is($ngx->request('GET', '/healthz')->code, 502, 'new requests are refused meanwhile');

$dbh->rollback;
waitpid($kid, 0);
my ($code, $body) = split /\n/, slurp_file("$dir/result") // "none\n", 2;
is($code, 200, 'the in-flight request finished with its real answer');
like($body // '', qr/"status":"ok"/, 'and its real body');
ok(wait_until(sub { !pid_alive($master) }, 10), 'the master exits once the request is done');
ok(!-e $pool->pid_file, 'pid file removed');
like($pool->log, qr/event=stop[^\n]*stopped/, 'stop logged');

$dbh->disconnect;
$s->stop;
done_testing;
