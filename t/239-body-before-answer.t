#!/usr/bin/perl
# A request answered without its body (413 here) is answered only once
# the body has been read. Apache's mod_proxy_fcgi reads the answer while
# it is still sending the body, stops sending once the answer is there,
# and reuses the connection: had the pool answered first, the next
# request on that connection would meet the rest of the old one and
# fail (Apache: "Failed writing Environment", 503). This plays Apache's
# part on a raw FastCGI connection.

use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::UNIX;
use Time::HiRes qw(time);
use SV::Test qw(:DEFAULT fcgi_request_bytes fcgi_read_answer);
use SV::Test::Pg;
use SV::Test::Pool;

plan skip_all => 'PostgreSQL server not installed' unless SV::Test::Pg::available();

my $pg = SV::Test::Pg->new;
$pg->start;
my ($rc, $out) = $pg->migrate;
is($rc, 0, 'migrate') or diag $out;
my $pool = SV::Test::Pool->new(pg => $pg, workers => 1, conf => { body_limit => 1024 });
$pool->start;

my $record = sub { my ($type, $content) = @_; pack('CCnnCC', 1, $type, 1, length $content, 0, 0) . $content };
my $pair = sub { my ($n, $v) = @_; pack('CC', length $n, length $v) . $n . $v };
# BEGIN_REQUEST (keep the connection) and the parameters of a POST with
# a body of $len bytes: what Apache writes before it polls.
my $head = sub {
    my ($len) = @_;
    my $params = join '', map { $pair->(@$_) } ([REQUEST_METHOD => 'POST'], [REQUEST_URI => '/healthz'],
        [QUERY_STRING => ''], [REMOTE_ADDR => '127.0.0.1'], [SERVER_PROTOCOL => 'HTTP/1.1'],
        [CONTENT_TYPE => 'application/json'], [CONTENT_LENGTH => $len]);
    return $record->(1, pack('nCx5', 1, 1)) . $record->(4, $params) . $record->(4, '');
};
my $body = sub { my ($len) = @_; return $record->(5, 'x' x $len) . $record->(5, '') };

local $SIG{PIPE} = 'IGNORE';
my $sock = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $pool->socket) or die "connect: $!";
$sock->syswrite($head->(4096));
# Apache now polls for both: the answer, or room to send the body; once
# the answer is there, it sends no more of the body.
my $early = IO::Select->new($sock)->can_read(0.5);
ok(!$early, 'no answer before the body is sent');
$sock->syswrite($body->(4096)) unless $early;
my ($text, $ended) = fcgi_read_answer($sock, 10);
like($text, qr/^Status: 413/, 'the body sent: 413') or diag $text;
ok($ended, 'the request ended');
$sock->syswrite(fcgi_request_bytes('/healthz'));
($text, $ended) = fcgi_read_answer($sock, 10);
like($text, qr/^Status: 200/, 'the next request on the same connection is served') or diag $text;

# A peer that never sends the body is answered all the same, once the
# read times out, and the connection closes.
$sock->syswrite($head->(4096));
my $t0 = time;
($text, $ended) = fcgi_read_answer($sock, 10);
like($text, qr/^Status: 413/, 'a body that never comes: still 413');
cmp_ok(time - $t0, '<', 8, 'after the read timeout, not never');
ok(IO::Select->new($sock)->can_read(5) && !sysread($sock, my $buf, 1), 'and the connection is closed');

like($pool->log, qr/status=413/, '413 logged');
is(scalar($pool->worker_pids), 1, 'the worker is still there');
$pool->stop;
done_testing;
