#!/usr/bin/perl
# The tests' HTTP client (SV::Test::HTTPClient) never sends a request
# twice unless its method is safe. A server may close a kept-alive
# connection after it has read, and applied, the request that went out on
# it; the client then sees "Server closed connection without sending any
# data back" and cannot tell. Sending a POST again there ran it twice: a
# second signup answered 422 user_already_exists (t/300, under load in
# CI). Here a loopback server plays that server: it applies every request
# it reads (one line in its journal) and drops a reused connection after
# reading its request, without answering.

use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use SV::Test qw(:DEFAULT sv_tempdir slurp_file register_cleanup stop_process pid_alive);

my $dir = sv_tempdir(prefix => 'svhttpc');
my $journal = "$dir/journal";
my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp',
    Listen => 8, ReuseAddr => 1) or die "listen: $!";
my $port = $listen->sockport;

my $pid = fork // die "fork: $!";
if ($pid == 0) {
    # One connection at a time (the client sends one request at a time).
    # The first request on a connection is answered and the connection
    # kept; the next one on it is read, applied, and the connection closed.
    while (my $c = $listen->accept) {
        for (my $n = 0; ; $n++) {
            my ($head, $buf) = ('', '');
            while ($head !~ /\r\n\r\n/) {
                my $k = sysread($c, $buf, 4096) or last;
                $head .= $buf;
            }
            last unless $head =~ /\r\n\r\n/;
            my ($line) = $head =~ /^(\S+ \S+)/;
            my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
            my $body = substr($head, index($head, "\r\n\r\n") + 4);
            while (length $body < ($len // 0)) {
                my $k = sysread($c, $buf, 4096) or last;
                $body .= $buf;
            }
            open my $j, '>>', $journal or die "journal: $!";
            print {$j} "$line $body\n";
            close $j;
            last if $n > 0;    # applied, then dropped without an answer
            syswrite($c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                . "Connection: keep-alive\r\n\r\nok");
        }
        close $c;
    }
    exit 0;
}
close $listen;
register_cleanup(sub { stop_process($pid, signals => ['KILL']) if pid_alive($pid) });

{
    package Local::Client;
    use parent -norequire, 'SV::Test::HTTPClient';
    sub url { "http://127.0.0.1:$_[0]{port}$_[1]" }
}
require SV::Test::HTTPClient;
my $client = bless { port => $port }, 'Local::Client';
my $applied = sub { my ($what) = @_; scalar grep { index($_, $what) == 0 } split /\n/, slurp_file($journal) // '' };

my $res = $client->request('GET', '/warm');
is($res->code, 200, 'a first request is answered on a new connection, kept');

# A POST: not on the kept connection (where it would be applied, dropped
# and, sent again, applied a second time).
$res = $client->call('POST', '/signup', body => { email => 'bob@example.com' });
is($res->code, 200, 'a POST is answered');
is($applied->('POST /signup'), 1, 'and applied once');

# The same for every method that is not safe (each time, the connection
# the last request left kept is there to be reused).
for my $m (qw(PUT PATCH DELETE)) {
    $res = $client->call($m, "/item-$m", body => { n => 1 });
    is($applied->("$m /item-$m"), 1, "$m: applied once");
    is($res->code, 200, "$m: answered");
}

# A safe method on the kept connection: dropped there, sent again once.
$res = $client->request('GET', '/read');
is($res->code, 200, 'a GET whose kept connection was dropped is sent again and answered');
is($applied->('GET /read'), 2, 'on a new connection (it is safe to repeat)');

stop_process($pid, signals => ['KILL']);
done_testing;
