#!/usr/bin/perl
# nginx keeps idle FastCGI connections open and opens more of them than
# the pool has workers. Idle kept connections pin workers, so the
# template caps them below the worker count: with 3 workers, 2 cached
# connections and ten concurrent clients every request is answered and
# nothing waits in the backlog for a worker that never frees up.

use strict;
use warnings;
use Test::More;
use POSIX ();
use LWP::UserAgent;
use SV::Test qw(:DEFAULT slurp_file write_file);
use SV::Test::Pg;
use SV::Test::Pool;
use SV::Test::Nginx;

plan skip_all => 'nginx not installed' unless SV::Test::Nginx::available();
plan skip_all => 'PostgreSQL server not installed' unless SV::Test::Pg::available();

my $pg = SV::Test::Pg->new;
$pg->start;
my ($rc, $out) = $pg->migrate;
is($rc, 0, 'migrate') or diag $out;

my $pool = SV::Test::Pool->new(pg => $pg, workers => 3);
$pool->start;
my $ngx = SV::Test::Nginx->new(pool => $pool);
$ngx->start;
like(SV::Test::slurp_file($ngx->conf_file), qr/keepalive 2;.*fastcgi_keep_conn on;/s,
    'nginx keeps at most workers - 1 idle connections');

my $dir = sv_tempdir();
my ($clients, $per_client) = (10, 40);
my @kids;
for my $c (1 .. $clients) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $ua = LWP::UserAgent->new(keep_alive => 1, timeout => 20, env_proxy => 0);
        my ($ok, @bad) = (0);
        for (1 .. $per_client) {
            my $res = $ua->get($ngx->url('/healthz'));
            if ($res->code == 200) { $ok++ } else { push @bad, $res->code }
        }
        write_file("$dir/result.$c", join(' ', $ok, @bad));
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
waitpid($_, 0) for @kids;

my $total = 0;
for my $c (1 .. $clients) {
    my ($ok, @bad) = split ' ', slurp_file("$dir/result.$c") // '0 missing';
    $total += $ok;
    diag "client $c failures: @bad" if @bad;
}
is($total, $clients * $per_client, 'every request answered 200');

my $status = $ngx->json($ngx->request('GET', '/status'));
cmp_ok($status->{accepted_conn}, '>=', $clients * $per_client, 'status counts every request');

my @accepts = ($pool->log =~ /event=access/g);
cmp_ok(scalar @accepts, '>=', $clients * $per_client, 'one access line per request');
is(scalar($pool->worker_pids), 3, 'the workers survived');

$ngx->stop;
$pool->stop;
done_testing;
