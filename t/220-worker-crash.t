#!/usr/bin/perl
# The master respawns a worker that dies, and recycles a worker after
# max_requests; clients never notice either.

use strict;
use warnings;
use Test::More;
use SV::Test;
use SV::Test::Stack;

my $s = SV::Test::Stack->new(workers => 3);
my $pg = $s->pg;

# --- SIGKILL of a worker ----------------------------------------------------
{
    my ($pool, $ngx) = ($s->pool, $s->ngx);

    is($ngx->request('GET', '/healthz')->code, 200, 'healthy before the crash');
    my @before = $pool->wait_workers(3);
    is(scalar @before, 3, 'three workers');
    my $victim = $before[0];
    my $from = $pool->log_offset;
    ok(kill('KILL', $victim), "SIGKILL worker $victim");

    my @after;
    ok(wait_until(sub {
        @after = $pool->worker_pids;
        @after == 3 && !grep { $_ == $victim } @after;
    }, 5), 'master respawned the worker within 5 s') or diag "workers: @after\n" . $pool->diag_output;
    my %old = map { $_ => 1 } @before;
    is(scalar(grep { !$old{$_} } @after), 1, 'exactly one new worker pid');
    ok(SV::Test::pid_alive($pool->pid), 'master still running');

    my @codes = map { $ngx->request('GET', '/healthz')->code } 1 .. 20;
    is(scalar(grep { $_ == 200 } @codes), 20, 'next 20 requests all 200') or diag "codes: @codes";
    like($pool->log(from => $from), qr/\b$victim\b/, 'the dead worker is logged');
    $s->stop;
}

# --- max_requests recycles a worker -------------------------------------------
{
    my $s = SV::Test::Stack->new(pg => $pg, workers => 1, conf => { max_requests => 5 });
    my ($pool, $ngx) = ($s->pool, $s->ngx);

    my ($first) = $pool->wait_workers(1);
    ok($first, "one worker ($first)");
    my (@codes, %seen);
    for my $i (1 .. 12) {
        push @codes, $ngx->request('GET', '/healthz')->code;
        $seen{$_}++ for $pool->worker_pids;
    }
    is(scalar(grep { $_ == 200 } @codes), 12, 'all 12 requests 200') or diag "codes: @codes\n" . $pool->diag_output;
    my ($now) = $pool->wait_workers(1);
    ok($now && $now != $first, "worker recycled ($first -> " . ($now // 'none') . ')');
    cmp_ok(scalar(keys %seen), '>=', 3, '12 requests at max_requests=5 needed at least 3 workers')
        or diag 'seen: ' . join(' ', sort keys %seen);
    $s->stop;
}

done_testing;
