#!/usr/bin/perl
# A worker buffers access lines while it has back-to-back work. When the
# master kills it (request_timeout) the lines of the requests it had
# already answered must still reach the log: the buffer lives in the
# worker's scoreboard slot and the master writes it out.

use strict;
use warnings;
use Test::More;
use IO::Socket::UNIX;
use Time::HiRes qw(sleep);
use SV::Test qw(:DEFAULT fcgi_request_bytes fcgi_read_answer);
use SV::Test::Pg;
use SV::Test::Pool;

plan skip_all => 'PostgreSQL server not installed' unless SV::Test::Pg::available();

my $pg = SV::Test::Pg->new;
$pg->start;
my ($rc, $out) = $pg->migrate;
is($rc, 0, 'migrate') or diag $out;
my $pool = SV::Test::Pool->new(pg => $pg, workers => 1, conf => { request_timeout => 2 });
$pool->start;

local $SIG{PIPE} = 'IGNORE';
my @conn = map { IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $pool->socket) or die "connect: $!" } 1 .. 2;
sleep 0.5; # both accepted by the one worker

# /healthz reads schema_migrations: a lock holds it until the kill. Both
# requests arrive together, so the worker answers the 404 and goes
# straight on to /healthz without an idle moment to flush the log.
my $dbh = $pg->dbh(user => 'postgres');
$dbh->begin_work;
$dbh->do('LOCK TABLE public.schema_migrations IN ACCESS EXCLUSIVE MODE');
$conn[1]->syswrite(fcgi_request_bytes('/healthz'));
$conn[0]->syswrite(fcgi_request_bytes('/lost-line-probe'));
my ($answer) = fcgi_read_answer($conn[0], 10);
like($answer, qr/^Status: 404/, 'the first request was answered');
ok($pool->wait_log(qr/request timed out|event=request_timeout/, 15), 'the worker was killed for request_timeout')
    or diag $pool->log;
$dbh->rollback;
ok(wait_until(sub { $pool->log =~ m{event=access [^\n]*path=/lost-line-probe} }, 5),
   'the answered request has its access line') or diag $pool->log;
my $log = $pool->log;
ok(index($log, 'path=/lost-line-probe') >= 0
   && index($log, 'path=/lost-line-probe') < index($log, 'event=worker_exit'),
   'written before the worker_exit line');

close $_ for @conn;
$pool->stop;
done_testing;
