#!/usr/bin/perl
# The pool status page (php-fpm's pm.status_path): counters as JSON,
# ?full lists the workers, status_allow restricts who may see it.

use strict;
use warnings;
use Test::More;
use SV::Test;
use SV::Test::Stack;

my $workers = 3;
my $s = SV::Test::Stack->new(workers => $workers);
{
    my ($pool, $ngx) = ($s->pool, $s->ngx);

    my $res = $ngx->request('GET', '/status');
    is($res->code, 200, 'GET /status from 127.0.0.1 is 200') or diag $res->as_string;
    like($res->header('Content-Type') // '', qr{^application/json}, 'JSON');
    my $st = $ngx->json($res) // {};
    for my $k (qw(pool process_manager start_time accepted_conn idle_processes
                  active_processes total_processes slow_requests max_children_reached)) {
        ok(exists $st->{$k}, "status has $k");
    }
    is($st->{total_processes}, $workers, "total_processes == workers ($workers)");
    cmp_ok(($st->{idle_processes} // 0) + ($st->{active_processes} // 0), '==', $workers,
        'idle + active == total');
    cmp_ok($st->{active_processes} // 0, '>=', 1, 'the worker serving /status is active');
    like($st->{start_time} // '', qr/^\d+$/, 'start_time is epoch seconds');
    cmp_ok(abs(($st->{start_time} // 0) - time), '<', 300, 'start_time is recent');

    my $before = $st->{accepted_conn} // 0;
    $ngx->request('GET', '/healthz') for 1 .. 5;
    my $st2 = $ngx->json($ngx->request('GET', '/status')) // {};
    cmp_ok($st2->{accepted_conn} // 0, '>=', $before + 5, 'accepted_conn increased by the requests')
        or diag "before $before after " . ($st2->{accepted_conn} // 'undef');

    $res = $ngx->request('GET', '/status?full');
    is($res->code, 200, 'GET /status?full is 200');
    my $full = $ngx->json($res) // {};
    my ($list_key) = grep { ref $full->{$_} eq 'ARRAY' } sort keys %$full;
    ok($list_key, 'full status has a list of workers' . ($list_key ? " ($list_key)" : ''))
        or diag $res->content;
    my @procs = $list_key ? @{ $full->{$list_key} } : ();
    is(scalar @procs, $workers, 'one entry per worker');
    my %live = map { $_ => 1 } $pool->worker_pids;
    for my $p (@procs) {
        ok($live{ $p->{pid} // 0 }, "entry pid $p->{pid} is a live worker");
        ok(defined $p->{state}, 'entry has state');
        like($p->{requests} // '', qr/^\d+$/, 'entry has a request count');
    }
    my $sum = 0;
    $sum += $_->{requests} // 0 for @procs;
    cmp_ok($sum, '>=', 7, 'per-worker request counts add up');
    $s->stop;
}

{
    my $restricted = SV::Test::Stack->new(pg => $s->pg, workers => 2, conf => { status_allow => '10.9.9.9' });
    my ($pool, $ngx) = ($restricted->pool, $restricted->ngx);
    my $res = $ngx->request('GET', '/status');
    is($res->code, 403, 'status_allow = 10.9.9.9: 403 for 127.0.0.1') or diag $res->as_string;
    my $doc = $ngx->json($res);
    is(ref $doc, 'HASH', '403 body is JSON');
    ok(exists $doc->{$_}, "403 has $_") for qw(code message details hint);
    is($ngx->request('GET', '/healthz')->code, 200, 'healthz unaffected');
    $restricted->stop;
}

done_testing;
