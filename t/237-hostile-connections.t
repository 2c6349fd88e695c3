#!/usr/bin/perl
# Connections to the pool socket that misbehave must cost the worker at
# most a bounded wait, never the requests nginx sends on its other
# connections: half a request and silence, garbage, a request split
# across a reload, more connections than a worker has slots, and
# connections left idle while traffic flows.

use strict;
use warnings;
use Test::More;
use LWP::UserAgent;
use Time::HiRes qw(sleep time);
use SV::Test qw(:DEFAULT fcgi_request_bytes fcgi_read_answer peer_closed);
use SV::Test::Stack;

my $first = SV::Test::Stack->new(workers => 1, conf => { shutdown_timeout => 5 });
my $pg = $first->pg;
local $SIG{PIPE} = 'IGNORE';

# Liveness bounds, not speed targets: far above any answer, below what a
# worker stuck on a connection would take.
my $ua = LWP::UserAgent->new(keep_alive => 0, timeout => 10, env_proxy => 0);

{
    my ($pool, $ngx) = ($first->pool, $first->ngx);

    # Three bytes of a record header, then nothing.
    my $half = $pool->connect;
    $half->syswrite(pack('CCn', 1, 1, 1));
    # A record header of FastCGI version 9, and the socket left open.
    my $garbage = $pool->connect;
    $garbage->syswrite(pack('CCnnCC', 9, 1, 1, 8, 0, 0) . "\0" x 8);
    sleep 0.3;
    my $ok = grep { $ua->get($ngx->url('/healthz'))->code == 200 } 1 .. 5;
    is($ok, 5, 'requests through nginx are answered beside a half-sent request and garbage');
    ok(peer_closed($garbage), 'the garbage connection was closed');

    # A request whose second half arrives after the worker was told to
    # stop (reload): answered whole, not cut short.
    my $split = $pool->connect;
    my $req = fcgi_request_bytes('/healthz');
    $split->syswrite(substr($req, 0, 20));
    sleep 0.3;
    $pool->reload;
    sleep 0.3;
    $split->syswrite(substr($req, 20));
    my ($answer, $ended) = fcgi_read_answer($split, 10);
    like($answer, qr/^Status: 200 OK\r\n/, 'a request split across a reload is answered 200')
        or diag $answer;

    $pool->stop;
    unlike($pool->log, qr/did not finish in time/, 'the pool stopped without killing a stuck worker');
    $ngx->stop;
}

{
    # Every one of the worker's 256 slots (SV_WORKER_MAX_CONNS) taken by a silent connection.
    my $s = SV::Test::Stack->new(pg => $pg, workers => 1);
    my ($pool, $ngx) = ($s->pool, $s->ngx);
    my @silent = map { $pool->connect } 1 .. 256;
    sleep 0.3;
    my $res = $ua->get($ngx->url('/healthz'));
    is($res->code, 200, 'with all 256 slots taken a new connection is still served') or diag $res->status_line;
    like($pool->log, qr/event=connections_full/, 'and the pool says why it closed an idle one');
    my $gone = grep { peer_closed($_) } @silent;
    cmp_ok($gone, '>=', 1, 'the longest-idle silent connection made room');
    close $_ for @silent;
    $s->stop;
}

{
    # keepalive_idle applies while the worker is busy too.
    my $s = SV::Test::Stack->new(pg => $pg, workers => 1, conf => { keepalive_idle => 2 });
    my ($pool, $ngx) = ($s->pool, $s->ngx);
    my @silent = map { $pool->connect } 1 .. 3;
    my $traffic = LWP::UserAgent->new(keep_alive => 1, timeout => 10, env_proxy => 0);
    my $end = time + 5;
    while (time < $end) { $traffic->get($ngx->url('/healthz')); sleep 0.25 }
    my $gone = grep { peer_closed($_) } @silent;
    is($gone, 3, 'connections idle past keepalive_idle are closed while traffic flows');
    $s->stop;
}

done_testing;
