#!/usr/bin/perl
# request_timeout: a request stuck in the database is killed by the master,
# nginx answers 502/504 in bounded time, the event is logged, and the pool
# recovers once the database is free again.

use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time);
use SV::Test;
use SV::Test::Stack;

plan skip_all => 'DBD::Pg not installed' unless eval { require DBD::Pg; 1 };
my $workers = 2;
my $s = SV::Test::Stack->new(workers => $workers, conf => { request_timeout => 2 });
my ($pg, $pool, $ngx) = ($s->pg, $s->pool, $s->ngx);
is($ngx->request('GET', '/healthz')->code, 200, 'healthy before the lock');

# /healthz reads schema_migrations for the schema version: lock it.
my $dbh = $pg->lock_table('public.schema_migrations');

my $rid = "timeout-$$";
my $from = $pool->log_offset;
my $t0 = time;
my $res = $ngx->request('GET', '/healthz', headers => { 'X-Request-Id' => $rid });
my $elapsed = time - $t0;
ok($res->code == 502 || $res->code == 504, 'stuck request answered 502/504 by nginx')
    or diag $res->as_string;
cmp_ok($elapsed, '<', 10, sprintf('answered within 10 s (%.1f s)', $elapsed));
cmp_ok($elapsed, '>=', 1.5, 'not before request_timeout');

my $line = $pool->wait_log(qr/^[^\n]*request timed out[^\n]*$/m, 5, from => $from);
ok($line, 'log says "request timed out"') or diag $pool->diag_output;
like($line // '', qr{path=/healthz}, 'timeout line names the path');

$dbh->rollback;
$dbh->disconnect;

my @codes;
ok(wait_until(sub { my $c = $ngx->request('GET', '/healthz')->code; push @codes, $c; $c == 200 }, 10),
    'healthz is 200 again after the lock is released') or diag "codes: @codes";
my @w = $pool->wait_workers($workers, 10);
is(scalar @w, $workers, "worker count back to $workers");
is(scalar(grep { $_ == 200 } map { $ngx->request('GET', '/healthz')->code } 1 .. 10), 10,
    'next 10 requests 200');
like($pool->log, qr/slow|timed out/, 'slow/timed-out request counted in the log');

# A stuck API statement is cancelled by PostgreSQL just before the master
# would kill the worker: the client gets a clean 504 and the worker lives.
my @before = sort $pool->worker_pids;
$dbh = $pg->lock_table('public.platforms');
$res = $ngx->request('GET', '/rest/v1/platforms?select=name');
is($res->code, 504, 'stuck /rest statement: 504 from the server') or diag $res->as_string;
like($res->header('Content-Type') // '', qr{^application/json}, 'as a JSON error');
is(($ngx->json($res) // {})->{code}, '57014', 'PostgreSQL cancelled it (57014)');
$dbh->rollback;
$dbh->disconnect;
is_deeply([sort $pool->worker_pids], \@before, 'no worker was killed for it');
is($ngx->request('GET', '/rest/v1/platforms?select=name')->code, 200, 'the table is readable again');

$s->stop;
done_testing;
