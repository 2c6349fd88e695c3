#!/usr/bin/perl
# Connections that open and send nothing (yet) must not hold a worker:
# the worker accepts them into its poll set and serves each once its
# request arrives. libfcgi's own accept waits up to 2 s for a new
# connection's first bytes, so ten silent connections used to block a
# one-worker pool for 20 s.

use strict;
use warnings;
use Test::More;
use LWP::UserAgent;
use SV::Test qw(:DEFAULT fcgi_ask);
use SV::Test::Stack;

my $s = SV::Test::Stack->new(workers => 1);
my ($pool, $ngx) = ($s->pool, $s->ngx);

my @silent = map { $pool->connect } 1 .. 10;

# A liveness bound, not a speed target: far below the 20 s the old
# accept would block, far above any answer.
my $ua = LWP::UserAgent->new(keep_alive => 0, timeout => 10, env_proxy => 0);
my $ok = 0;
for (1 .. 10) {
    my $res = $ua->get($ngx->url('/healthz'));
    $ok++ if $res->code == 200;
}
is($ok, 10, 'requests through nginx are answered while ten silent connections are open');

my $status = $ngx->json($ngx->request('GET', '/status?full'));
my ($worker) = @{ $status->{processes} // [] };
cmp_ok($worker->{connections} // 0, '>=', 10, 'the worker holds the silent connections open')
    or diag explain $status;

# A silent connection that finally sends its request is served.
local $SIG{PIPE} = "IGNORE"; # a closed connection must fail the test, not kill it
my $late = $silent[3];
my ($reply, $ended) = fcgi_ask($late, '/healthz');
ok($ended, 'the late request gets FCGI_END_REQUEST');
like($reply, qr/^Status: 200 OK\r\n/, 'and a 200 answer') or diag $reply;
like($reply, qr/"status"\s*:\s*"ok"/, 'from /healthz') or diag $reply;

close $_ for @silent;
$s->stop;
done_testing;
