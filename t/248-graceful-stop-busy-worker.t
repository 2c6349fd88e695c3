#!/usr/bin/perl
# A worker busy with a long request when the pool stops closes its idle
# kept connections at once. Left open, nginx would keep choosing them, and
# a request sent on one would wait for the long request (up to
# shutdown_timeout) instead of meeting the refused socket like any other
# new request: with the long one waiting on a lock, CI saw both end in a
# 502 when the stop's deadline killed the worker.

use strict;
use warnings;
use Test::More;
use SV::Test qw(:DEFAULT fcgi_ask fcgi_request_bytes fcgi_read_answer peer_closed pid_alive);
use SV::Test::Pg;
use SV::Test::Pool;

plan skip_all => 'PostgreSQL server not installed' unless SV::Test::Pg::available();
plan skip_all => 'DBD::Pg not installed' unless eval { require DBD::Pg; 1 };

my $pg = SV::Test::Pg->new;
$pg->start;
my ($rc, $out) = $pg->migrate;
is($rc, 0, 'migrate') or diag $out;
my $pool = SV::Test::Pool->new(pg => $pg, workers => 1,
                               conf => { request_timeout => 0, shutdown_timeout => 30 });
$pool->start;

# Two connections the one worker has accepted and answered on, kept open
# as nginx keeps them.
my @kept = map { $pool->connect } 1 .. 2;
like(scalar fcgi_ask($_, '/healthz'), qr/"status":"ok"/, 'a kept connection answers') for @kept;

# The long request: /healthz reads schema_migrations, locked here.
my $lock = $pg->lock_table('public.schema_migrations');
my $busy = $pool->connect;
$busy->syswrite(fcgi_request_bytes('/healthz'));
my $probe = $pg->dbh(user => 'postgres');
ok(wait_until(sub {
    $probe->selectrow_array(q{SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'}) > 0
}, 10), 'the request waits on the lock');
ok(!peer_closed($_), 'the kept connections stay open while the pool runs') for @kept;

my $master = $pool->pid;
kill 'TERM', $master;
ok(wait_until(sub { !grep { !peer_closed($_) } @kept }, 5),
   'on stop, the busy worker closes its idle connections at once');
ok(pid_alive($master), 'while the long request still runs');

$lock->rollback;
my ($text, $ended) = fcgi_read_answer($busy, 10);
ok($ended, 'the long request ends');
like($text, qr/"status":"ok"/, 'with its real answer');
ok(wait_until(sub { !pid_alive($master) }, 10), 'and the master exits');

$lock->disconnect;
$probe->disconnect;
$pool->stop;
$pg->stop;
done_testing;
