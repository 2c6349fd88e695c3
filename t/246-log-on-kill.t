#!/usr/bin/perl
# A worker buffers access lines while it has back-to-back work. When the
# master kills it (request_timeout) the lines of the requests it had
# already answered must still reach the log: the buffer lives in the
# worker's scoreboard slot and the master writes it out.

use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use SV::Test qw(:DEFAULT fcgi_request_bytes fcgi_read_answer);
use SV::Test::Stack;

my $s = SV::Test::Stack->new(workers => 1, conf => { request_timeout => 2 }, nginx => 0);
my ($pg, $pool) = ($s->pg, $s->pool);

local $SIG{PIPE} = 'IGNORE';
# Accepted in this order, so they take the worker's slots 0, 1, 2.
my ($busy, $probe, $stuck) = map { $pool->connect } 1 .. 3;
sleep 0.5;

# The worker must go from the probe (a 404) straight to a request that
# never ends, with no idle moment to flush its log in between. So it is
# kept busy first (a read of platforms waits on a lock) while the probe
# and /healthz (stuck on a lock on schema_migrations until the kill; it
# has no statement timeout) arrive; then the first lock is released.
my $lock_platforms = $pg->lock_table('public.platforms');
my $lock_migrations = $pg->lock_table('public.schema_migrations');
my $from = $pool->log_offset;
$busy->syswrite(fcgi_request_bytes('/rest/v1/platforms'));
sleep 0.3;
$probe->syswrite(fcgi_request_bytes('/lost-line-probe'));
$stuck->syswrite(fcgi_request_bytes('/healthz'));
sleep 0.3;
$lock_platforms->rollback;
my ($first) = fcgi_read_answer($busy, 10);
like($first, qr/^Status: 200/, 'the busy request was answered once its lock went');
my ($answer) = fcgi_read_answer($probe, 10);
like($answer, qr/^Status: 404/, 'then the probe');
ok($pool->wait_log(qr/event=request_timeout/, 15, from => $from), 'the worker was killed for request_timeout')
    or diag $pool->log;
$lock_migrations->rollback;
ok($pool->wait_log(qr{event=access [^\n]*path=/lost-line-probe}, 5, from => $from),
   'the answered request has its access line') or diag $pool->log;
my $log = $pool->log;
ok(index($log, 'path=/lost-line-probe') >= 0
   && index($log, 'path=/lost-line-probe') < index($log, 'event=worker_exit'),
   'written before the worker_exit line');

close $_ for $busy, $probe, $stuck;
$pool->stop;
done_testing;
