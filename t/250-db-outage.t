#!/usr/bin/perl
# Database down: /healthz answers 503 with Retry-After and a JSON error,
# no worker dies; database back: the workers reconnect on their own.

use strict;
use warnings;
use Test::More;
use SV::Test;
use SV::Test::Stack;

my $workers = 2;
my $s = SV::Test::Stack->new(workers => $workers, conf => { retry_after => 3 });
my ($pg, $pool, $ngx) = ($s->pg, $s->pool, $s->ngx);

# Touch every worker's connection (nginx spreads the requests).
is($ngx->request('GET', '/healthz')->code, 200, "healthy before the outage ($_)") for 1 .. 4;
my @before = $pool->wait_workers($workers);

$pg->stop;
for my $i (1 .. 4) {
    my $res = $ngx->request('GET', '/healthz');
    is($res->code, 503, "database down: 503 ($i)") or diag $res->as_string;
    is($res->header('Retry-After'), 3, 'Retry-After from retry_after');
    my $doc = $ngx->json($res);
    is(ref $doc, 'HASH', 'JSON body') or diag $res->content;
    is($doc->{database}, 'unreachable', 'body says the database is unreachable') or diag $res->content;
}
is_deeply([$pool->worker_pids], \@before, 'no worker died or was replaced');

$pg->start;
my @codes;
ok(wait_until(sub {
    my $c = $ngx->request('GET', '/healthz')->code;
    push @codes, $c;
    $c == 200;
}, 10), 'healthz is 200 again once PostgreSQL is back') or diag "codes: @codes";
is(scalar(grep { $_ == 200 } map { $ngx->request('GET', '/healthz')->code } 1 .. 10), 10,
    'every worker reconnected: next 10 requests 200');
is_deeply([$pool->worker_pids], \@before, 'same workers throughout');

$s->stop;
done_testing;
