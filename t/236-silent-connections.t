#!/usr/bin/perl
# Connections that open and send nothing (yet) must not hold a worker:
# the worker accepts them into its poll set and serves each once its
# request arrives. libfcgi's own accept waits up to 2 s for a new
# connection's first bytes, so ten silent connections used to block a
# one-worker pool for 20 s.

use strict;
use warnings;
use Test::More;
use IO::Socket::UNIX;
use IO::Select;
use LWP::UserAgent;
use SV::Test;
use SV::Test::Pg;
use SV::Test::Pool;
use SV::Test::Nginx;

plan skip_all => 'nginx not installed' unless SV::Test::Nginx::available();
plan skip_all => 'PostgreSQL server not installed' unless SV::Test::Pg::available();

my $pg = SV::Test::Pg->new;
$pg->start;
my ($rc, $out) = $pg->migrate;
is($rc, 0, 'migrate') or diag $out;

my $pool = SV::Test::Pool->new(pg => $pg, workers => 1);
$pool->start;
my $ngx = SV::Test::Nginx->new(pool => $pool);
$ngx->start;

my @silent = map {
    IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $pool->socket) or die "connect: $!"
} 1 .. 10;

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
sub record { my ($type, $content) = @_; pack('CCnnCC', 1, $type, 1, length $content, 0, 0) . $content }
sub pair { my ($n, $v) = @_; pack('CC', length $n, length $v) . $n . $v }
my $params = join '', map { pair(@$_) } (
    [REQUEST_METHOD => 'GET'], [REQUEST_URI => '/healthz'], [QUERY_STRING => ''],
    [REMOTE_ADDR => '127.0.0.1'], [SERVER_PROTOCOL => 'HTTP/1.1']);
local $SIG{PIPE} = "IGNORE"; # a closed connection must fail the test, not kill it
my $late = $silent[3];
$late->syswrite(record(1, pack('nCx5', 1, 0)) . record(4, $params) . record(4, '') . record(5, ''));
my ($reply, $ended) = ('', 0);
my $sel = IO::Select->new($late);
while ($sel->can_read(10)) {
    my $n = $late->sysread(my $buf, 65536);
    last unless $n;
    $reply .= $buf;
    my ($pos, $stdout) = (0, '');
    while ($pos + 8 <= length $reply) {
        my ($ver, $type, $id, $len, $pad) = unpack('CCnnC', substr($reply, $pos, 8));
        last if $pos + 8 + $len + $pad > length $reply;
        $stdout .= substr($reply, $pos + 8, $len) if $type == 6;
        $ended = 1 if $type == 3;
        $pos += 8 + $len + $pad;
    }
    if ($ended) { $reply = $stdout; last }
}
ok($ended, 'the late request gets FCGI_END_REQUEST');
like($reply, qr/^Status: 200 OK\r\n/, 'and a 200 answer') or diag $reply;
like($reply, qr/"status"\s*:\s*"ok"/, 'from /healthz') or diag $reply;

close $_ for @silent;
$ngx->stop;
$pool->stop;
done_testing;
