#!/usr/bin/perl
# nginx keeps its FastCGI connections to the pool open (fastcgi_keep_conn,
# keepalive 16) and opens more of them than the pool has workers. A
# worker serves whichever of its connections has a request and accepts
# new ones in between, so idle kept connections never pin it: with 2
# workers and ten concurrent clients every request is answered, over far
# fewer connections than requests.

use strict;
use warnings;
use Test::More;
use LWP::UserAgent;
use SV::Test qw(:DEFAULT slurp_file run_parallel);
use SV::Test::Stack;

my $s = SV::Test::Stack->new(workers => 2);
my ($pool, $ngx) = ($s->pool, $s->ngx);
like(slurp_file($ngx->conf_file), qr/keepalive 16;.*fastcgi_keep_conn on;/s,
    'nginx keeps up to 16 idle connections, more than the pool has workers');

# Two rounds: after the first, nginx holds idle connections on both
# workers, and the second round's extra connections must still be
# accepted by those same workers.
my ($clients, $per_client) = (10, 40);
my $total = 0;
for my $round (1, 2) {
    my @results = run_parallel($clients, sub {
        my $ua = LWP::UserAgent->new(keep_alive => 1, timeout => 20, env_proxy => 0);
        my ($ok, @bad) = (0);
        for (1 .. $per_client) {
            my $res = $ua->get($ngx->url('/healthz'));
            if ($res->code == 200) { $ok++ } else { push @bad, $res->code }
        }
        return join(' ', $ok, @bad);
    });
    for my $c (1 .. $clients) {
        my ($ok, @bad) = split ' ', $results[$c - 1] || '0 missing';
        $total += $ok;
        diag "round $round client $c failures: @bad" if @bad;
    }
}
is($total, 2 * $clients * $per_client, 'every request answered 200');

my $status = $ngx->json($ngx->request('GET', '/status?full'));
cmp_ok($status->{accepted_conn}, '>=', 2 * $clients * $per_client, 'status counts every request');
cmp_ok($status->{fastcgi_connections}, '>=', 2, 'connections were accepted');
cmp_ok($status->{fastcgi_connections}, '<', $clients * $per_client / 4,
    'nginx reused its connections: far fewer connections than requests')
    or diag "fastcgi_connections $status->{fastcgi_connections}";
my $held = 0;
$held += $_->{connections} for @{ $status->{processes} // [] };
cmp_ok($held, '>=', 1, 'workers report the kept connections they hold') or diag explain $status;

my @access = ($pool->log =~ /event=access/g);
cmp_ok(scalar @access, '>=', 2 * $clients * $per_client, 'one access line per request');

# Requests with bodies on a kept connection, some answered without
# reading the body (404 before routing reads it): whatever is left of a
# request must never be taken for the start of the next one, which nginx
# could not retry for a POST (502).
my $ua = LWP::UserAgent->new(keep_alive => 1, timeout => 20, env_proxy => 0);
my $before = $ngx->json($ngx->request('GET', '/status'))->{fastcgi_connections};
my (%codes, $n);
for my $i (1 .. 60) {
    my ($path, $body) = $i % 2 ? ('/no/such/path', 'x' x (1000 + $i)) : ('/rest/v1/handle_content', '{not json');
    my $res = $ua->post($ngx->url($path), Content_Type => 'application/json', Content => $body);
    $codes{ $res->code }++;
    $n++;
}
is_deeply(\%codes, { 404 => 30, 400 => 30 }, 'POSTs on kept connections: 404 and 400, never 502')
    or diag explain \%codes;
my $after = $ngx->json($ngx->request('GET', '/status'))->{fastcgi_connections};
cmp_ok($after - $before, '<=', 2, 'and they reused one connection') or diag "$before -> $after";
is(scalar($pool->worker_pids), 2, 'the workers survived');

$s->stop;
done_testing;
