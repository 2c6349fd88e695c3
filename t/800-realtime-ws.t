#!/usr/bin/perl
# streamvibe-realtime on its own (as under its own systemd unit): the
# WebSocket upgrade and what it refuses, hostile frames (each closes its
# socket with the right code and nothing else), the Phoenix basics
# (heartbeat in both serializers, join/leave, errors, token expiry on an
# open socket) and the limits (sockets, channels, message size,
# handshake and idle timeouts). The daemon must be alive and healthy at
# the end.

use strict;
use warnings;
use Test::More;
use JSON::PP ();
use Time::HiRes qw(time sleep);
use SV::Test qw(sv_builddir sv_tempdir free_tcp_port spawn_process stop_process pid_alive
    wait_until slurp_file write_file register_cleanup);
use SV::Test::Pg;
use SV::Test::Stack;
use SV::Test::WebSocket;

my $pg = SV::Test::Stack->new(pool => 0)->pg;

my $secret = 'sv-600-realtime-' . join('', map { chr(97 + int rand 26) } 1 .. 32);
sub jwt { SV::Test::jwt(secret => $secret, claims => $_[0]) }
my $now = int time;
my $anon = jwt({ role => 'anon', iss => 'streamvibe', iat => $now, exp => $now + 3600 });

my $dir = sv_tempdir(prefix => 'svrt');
my $port = free_tcp_port();
my $max_sockets = 12;
write_file("$dir/rt.conf", <<CONF);
database_url = ${\ $pg->conninfo(user => 'authenticator')}
jwt_secret = $secret
realtime_listen = 127.0.0.1:$port
log_file = $dir/rt.log
realtime_max_sockets = $max_sockets
realtime_max_channels = 3
realtime_max_message = 4096
realtime_handshake_timeout = 1
realtime_idle_timeout = 3
CONF
my $bin = sv_builddir() . '/streamvibe-realtime';
my $pid = spawn_process([$bin, '--config', "$dir/rt.conf"], stdout => "$dir/stderr", stderr => "$dir/stderr");
register_cleanup(sub { stop_process($pid) if $pid });
ok(wait_until(sub { my $r = eval { SV::Test::WebSocket::raw_request($port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 2) } // '';
                    $r =~ /"listen":"up","queries":"up"/ }, 15),
   'the daemon answers /healthz with both database connections up')
    or BAIL_OUT('daemon did not start: ' . (slurp_file("$dir/stderr") // '') . (slurp_file("$dir/rt.log") // ''));

my $url2 = "/realtime/v1/websocket?apikey=$anon&vsn=2.0.0";
my $url1 = "/realtime/v1/websocket?apikey=$anon&vsn=1.0.0";
sub ws { SV::Test::WebSocket->connect(port => $port, path => shift // $url2, @_) }

# --- the upgrade ---------------------------------------------------------
{
    my $ws = ws();
    is($ws->status, 101, 'upgrade: 101 Switching Protocols');
    ok($ws->accept_ok, 'Sec-WebSocket-Accept is SHA-1(key + GUID), base64');
    $ws->close;

    my $c = ws("/realtime/v1/websocket?vsn=2.0.0");
    is($c->status, 403, 'no apikey: 403');
    like($c->body, qr/apikey/, '... saying the apikey is required');
    $c = ws("/realtime/v1/websocket?apikey=not.a.jwt&vsn=2.0.0");
    is($c->status, 403, 'an apikey that is not a valid token: 403');
    my $other = $anon; $other =~ s/.$/substr($other, -1) eq 'A' ? 'B' : 'A'/e;
    $c = ws("/realtime/v1/websocket?apikey=$other&vsn=2.0.0");
    is($c->status, 403, 'an apikey with a bad signature: 403');
    $c = ws("/realtime/v1/websocket?apikey=$anon&vsn=3.0.0");
    is($c->status, 400, 'vsn 3.0.0: 400');
    $c = ws("/realtime/v1/nothere?apikey=$anon");
    is($c->status, 404, 'another path: 404');
    $c = ws($url2, headers => { 'Sec-WebSocket-Version' => '8' });
    is($c->status, 426, 'Sec-WebSocket-Version 8: 426');
    like($c->head, qr/^Sec-WebSocket-Version: 13/mi, '... naming the version served');
    $c = ws($url2, headers => { 'Sec-WebSocket-Key' => 'short' });
    is($c->status, 400, 'a key that is not 16 bytes of base64: 400');
    $c = ws($url2, headers => { Upgrade => undef });
    is($c->status, 400, 'no Upgrade header: 400');

    my $ans = SV::Test::WebSocket::raw_request($port, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" . ("\0" x 64) . "\r\n\r\n");
    like($ans, qr{^HTTP/1\.1 400 }, 'TLS hello / binary garbage: 400');
    $ans = SV::Test::WebSocket::raw_request($port, "GET / HTTP/1.1\r\nBad Header\r\n\r\n");
    like($ans, qr{^HTTP/1\.1 400 }, 'a header line without a colon: 400');
    $ans = SV::Test::WebSocket::raw_request($port, "GET $url2 HTTP/1.1\r\nHost: x\r\nX-Big: " . ('a' x 65536) . "\r\n\r\n");
    like($ans, qr{^HTTP/1\.1 431 }, '64 KB of headers: 431');
    my $t0 = time;
    $ans = SV::Test::WebSocket::raw_request($port, "GET $url2 HTTP/1.1\r\nHost: x\r\n", 5);
    my $took = time - $t0;
    ok($ans eq '' && $took < 4, sprintf('an unfinished request head is dropped after the handshake timeout (%.1fs)', $took));
}

# --- Phoenix basics --------------------------------------------------------
{
    my $ws = ws();
    $ws->phx_send('phoenix', 'heartbeat', {}, ref => '8');
    my $r = $ws->phx_recv(5);
    is($r && $r->{raw}, '[null,"8","phoenix","phx_reply",{"status":"ok","response":{}}]',
       'vsn 2.0.0 heartbeat: the exact reply realtime-js waits for');

    my $v1 = ws($url1);
    $v1->phx_send('phoenix', 'heartbeat', {}, ref => '9');
    $r = $v1->phx_recv(5);
    is($r && $r->{raw}, '{"topic":"phoenix","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"9"}',
       'vsn 1.0.0 heartbeat: a JSON object without join_ref');

    # A channel without postgres_changes (broadcast-only config).
    my $config = { config => { broadcast => { ack => JSON::PP::false, self => JSON::PP::false },
                               presence => { key => '', enabled => JSON::PP::false },
                               postgres_changes => [], private => JSON::PP::false } };
    $r = $ws->phx_join('realtime:plain', $config, ref => '1');
    is_deeply($r && $r->{payload}, { status => 'ok', response => { postgres_changes => [] } },
              'join without bindings: ok with postgres_changes []');
    is($r && $r->{join_ref}, '1', '... carrying the join_ref');

    $ws->phx_send('realtime:nope', 'access_token', { access_token => $anon }, ref => '2', join_ref => '2');
    $r = $ws->phx_recv(5);
    is_deeply($r && $r->{payload}, { status => 'error', response => { reason => 'unmatched topic' } },
              'a message for a topic not joined: unmatched topic');

    $r = $ws->phx_join('realtime:bad', { %$config, access_token => 'garbage' }, ref => '3');
    is($r && $r->{payload}{response}{reason}, 'MalformedJWT: The token provided is not a valid JWT',
       'join with a malformed token: the error Supabase gives');
    my $expired = jwt({ role => 'anon', iat => $now - 100, exp => $now - 30 });
    $r = $ws->phx_join('realtime:bad', { %$config, access_token => $expired }, ref => '4');
    like($r && $r->{payload}{response}{reason}, qr/^InvalidJWTToken: Token has expired \d+ seconds ago$/,
         'join with an expired token: InvalidJWTToken');
    my $norole = jwt({ iat => $now, exp => $now + 60 });
    $r = $ws->phx_join('realtime:bad', { %$config, access_token => $norole }, ref => '5');
    is($r && $r->{payload}{response}{reason}, 'InvalidJWTToken: Fields `role` and `exp` are required in JWT',
       'join with a token lacking role: InvalidJWTToken');
    $r = $ws->phx_join('realtime:', $config, ref => '6');
    like($r && $r->{payload}{response}{reason}, qr/^TopicNameRequired/, 'topic "realtime:": TopicNameRequired');

    # The channel limit (3 per socket; realtime:plain is one).
    $ws->phx_join("realtime:c$_", $config, ref => "1$_") for 1 .. 2;
    $r = $ws->phx_join('realtime:c3', $config, ref => '20');
    is($r && $r->{payload}{response}{reason}, 'ChannelRateLimitReached: Too many channels',
       'a fourth channel on one socket: ChannelRateLimitReached');

    # Joins per second and socket: 20.
    my $burst = ws();
    $burst->phx_send('realtime:again', 'phx_join', $config, ref => "j$_", join_ref => "j$_") for 1 .. 30;
    my %reasons;
    for (1 .. 30) {
        my $x = $burst->phx_wait(sub { $_[0]{event} eq 'phx_reply' }, 5) or last;
        $reasons{ $x->{payload}{response}{reason} // $x->{payload}{status} }++;
    }
    ok(($reasons{ok} // 0) >= 15 && ($reasons{'ClientJoinRateLimitReached: Too many joins per second'} // 0) >= 5,
       '30 joins in a burst: the ones over 20 a second get ClientJoinRateLimitReached')
        or diag explain \%reasons;
    $burst->close;

    # Leave: ok, then phx_close with the join's ref.
    $ws->phx_send('realtime:c1', 'phx_leave', {}, ref => '21', join_ref => '11');
    $r = $ws->phx_recv(5);
    is_deeply([$r && @$r{qw(ref event)}, $r && $r->{payload}{status}], ['21', 'phx_reply', 'ok'], 'phx_leave: ok');
    $r = $ws->phx_recv(5);
    is_deeply([$r && @$r{qw(join_ref ref event)}], ['11', '11', 'phx_close'], '... then phx_close with the join ref');

    # An invalid access_token closes the channel as Supabase does.
    $ws->phx_send('realtime:c2', 'access_token', { access_token => $expired }, ref => '22', join_ref => '12');
    $r = $ws->phx_recv(5);
    is($r && $r->{event}, 'system', 'expired access_token: a system message');
    is($r && $r->{payload}{status}, 'error', '... status error');
    like($r && $r->{payload}{message}, qr/^Token has expired/, '... saying the token expired');
    is($r && $r->{payload}{channel}, 'c2', '... for the channel');
    $r = $ws->phx_recv(5);
    is($r && $r->{event}, 'phx_close', '... then phx_close');

    # A token that runs out while the channel is open.
    my $short = jwt({ role => 'anon', iat => $now, exp => int(time) + 2 });
    $r = $ws->phx_join('realtime:short', { %$config, access_token => $short }, ref => '30');
    is($r && $r->{payload}{status}, 'ok', 'join with a token valid for 2 s');
    my $sys = $ws->phx_wait(sub { $_[0]{event} eq 'system' && $_[0]{topic} eq 'realtime:short' }, 6);
    like($sys && $sys->{payload}{message}, qr/^Token has expired \d+ seconds ago$/, 'at expiry: system "Token has expired"');
    $r = $ws->phx_wait(sub { $_[0]{event} eq 'phx_close' && $_[0]{topic} eq 'realtime:short' }, 3);
    ok($r, '... and phx_close: the channel is closed on the open socket');

    # Binary frames (user broadcasts) are ignored; pings answered.
    $ws->send_frame(opcode => 2, payload => "\x03\x01\x01\x05\x01\x00\x011" . "1realtime:plain" . "ev");
    $ws->send_frame(opcode => 9, payload => 'ping!');
    my $f = $ws->recv_frame(5);
    is_deeply([$f && @$f{qw(opcode payload)}], [10, 'ping!'], 'ping: pong with the same payload');
    $ws->phx_send('phoenix', 'heartbeat', {}, ref => '99');
    $r = $ws->phx_wait(sub { ($_[0]{ref} // '') eq '99' }, 5);
    ok($r, 'the socket still serves after a binary frame');

    # Frames that arrive in pieces, and a message in fragments, with pauses
    # between them (an idle socket gives its WebSocket state up between
    # messages; never in the middle of one).
    my $hb = $ws->phx_encode('phoenix', 'heartbeat', {}, ref => 'split1');
    $ws->send_frame(opcode => 1, payload => $hb, split => 3);
    ok($ws->phx_wait(sub { ($_[0]{ref} // '') eq 'split1' }, 5), 'a frame split inside its header: answered');
    $hb = $ws->phx_encode('phoenix', 'heartbeat', {}, ref => 'split2');
    $ws->send_frame(opcode => 1, payload => $hb, split => 10);
    ok($ws->phx_wait(sub { ($_[0]{ref} // '') eq 'split2' }, 5), 'a frame split inside its payload: answered');
    $hb = $ws->phx_encode('phoenix', 'heartbeat', {}, ref => 'frag3');
    $ws->send_frame(opcode => 1, payload => substr($hb, 0, 9), fin => 0);
    sleep 0.3;
    $ws->send_frame(opcode => 9, payload => 'in between');
    sleep 0.3;
    $ws->send_frame(opcode => 0, payload => substr($hb, 9), fin => 1);
    my $pong = $ws->recv_frame(5);
    is($pong && $pong->{opcode}, 10, 'a ping between the fragments of a message: pong');
    ok($ws->phx_wait(sub { ($_[0]{ref} // '') eq 'frag3' }, 5), '... and the message, reassembled: answered');

    # A client close is echoed.
    $ws->send_frame(opcode => 8, payload => pack('n', 1000) . 'bye');
    my ($code) = $ws->wait_close(5);
    is($code, 1000, 'close 1000 from the client: echoed');
    ok($ws->wait_eof(5), '... and the connection ends');
    $v1->close;
}

# --- hostile frames ----------------------------------------------------------
for my $case (
    [ 'an unmasked client frame',             1002, sub { $_[0]->send_frame(opcode => 1, payload => '[]', mask => 0) } ],
    [ 'a fragmented ping',                    1002, sub { $_[0]->send_frame(opcode => 9, payload => 'x', fin => 0) } ],
    [ 'a ping longer than 125 bytes',         1002, sub { $_[0]->send_frame(opcode => 9, payload => 'x' x 200) } ],
    [ 'reserved bits set',                    1002, sub { $_[0]->send_frame(opcode => 1, payload => '[]', rsv => 4) } ],
    [ 'an unknown opcode',                    1002, sub { $_[0]->send_frame(opcode => 3, payload => 'x') } ],
    [ 'a continuation without a first frame', 1002, sub { $_[0]->send_frame(opcode => 0, payload => 'x') } ],
    [ 'a text message over realtime_max_message', 1009, sub { $_[0]->send_frame(opcode => 1, payload => 'x' x 5000) } ],
    [ 'fragments adding up over the limit',   1009, sub { $_[0]->send_frame(opcode => 1, payload => 'x' x 3000, fin => 0);
                                                      $_[0]->send_frame(opcode => 0, payload => 'x' x 3000) } ],
    [ 'a frame announcing 2^62 bytes',        1009, sub { $_[0]->send_frame(opcode => 2, payload => 'x', length => 2**62) } ],
    [ 'invalid UTF-8 in a text frame',        1007, sub { $_[0]->send_frame(opcode => 1, payload => "[\"\xc3\x28\"]") } ],
    [ 'invalid UTF-8 split over fragments',   1007, sub { $_[0]->send_frame(opcode => 1, payload => "\"\xe2\x82", fin => 0);
                                                      $_[0]->send_frame(opcode => 0, payload => "\x28\"") } ],
    [ 'text that is not a Phoenix message',   1007, sub { $_[0]->send_text('{"not":"phoenix"') } ],
    [ 'a length not in its shortest form',    1002, sub { $_[0]->send_frame(opcode => 1, payload => '[]', long_form => 64) } ],
    [ 'a close frame with a reserved code',   1002, sub { $_[0]->send_frame(opcode => 8, payload => pack('n', 1005)) } ],
) {
    my ($name, $want, $send) = @$case;
    my $ws = ws();
    $send->($ws);
    my ($code) = $ws->wait_close(5);
    is($code, $want, "$name: close $want");
    ok($ws->wait_eof(5), "... and the server ends the connection");
}

# --- limits ---------------------------------------------------------------------
{
    # Idle: no byte for realtime_idle_timeout (3 s): closed.
    my $ws = ws();
    my $t0 = time;
    my ($code, $reason) = $ws->wait_close(8);
    is($code, 1000, sprintf('a silent socket is closed after the idle timeout (%.1fs)', time - $t0));
    like($reason // '', qr/idle/, '... saying why');
    $ws->close;
    ok(wait_until(sub { SV::Test::WebSocket::raw_request($port, "GET /healthz HTTP/1.1\r\n\r\n") =~ /"sockets":1,/ }, 5),
       'only the health check is open');

    # Sockets: realtime_max_sockets, then 503.
    my @open = map { ws() } 1 .. $max_sockets;
    is(scalar(grep { $_->status == 101 } @open), $max_sockets, "$max_sockets sockets open");
    my $ans = SV::Test::WebSocket::raw_request($port, "GET $url2 HTTP/1.1\r\nHost: x\r\n\r\n");
    like($ans, qr{^HTTP/1\.1 503 }, 'one more: 503');
    like($ans, qr/Too many sockets/, '... Too many sockets');
    $_->close for @open;
    ok(wait_until(sub { SV::Test::WebSocket::raw_request($port, "GET /healthz HTTP/1.1\r\n\r\n") =~ /"sockets":1,/ }, 5),
       'closed sockets are counted out');
}

ok(pid_alive($pid), 'the daemon is still running');
my $h = SV::Test::WebSocket::raw_request($port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
like($h, qr{^HTTP/1\.1 200 .*"status":"ok"}s, '/healthz: 200 ok after all of that');

# SIGTERM: open sockets get a close frame (1001), then it exits.
my $last = ws();
kill 'TERM', $pid;
my ($code) = $last->wait_close(5);
is($code, 1001, 'SIGTERM: open sockets are closed with 1001 going away');
ok(wait_until(sub { !pid_alive($pid) }, 10), 'the daemon exits');
$pid = undef;
my $log = slurp_file("$dir/rt.log") // '';
unlike($log, qr/level=error/, 'no error in the log') or diag $log;
unlike(slurp_file("$dir/stderr") // '', qr/Sanitizer|runtime error/, 'no sanitizer report');

# base_path: the API in a folder of a site (/api/realtime/v1/...), the
# same key as the pool's, so one proxy prefix serves both.
{
    my $bport = free_tcp_port();
    my $conf = slurp_file("$dir/rt.conf");
    $conf =~ s/^realtime_listen = .*$/realtime_listen = 127.0.0.1:$bport/m;
    $conf =~ s/^log_file = .*$/log_file = $dir\/rt-base.log/m;
    write_file("$dir/rt-base.conf", "${conf}base_path = /api\n");
    my $bpid = spawn_process([$bin, '--config', "$dir/rt-base.conf"],
        stdout => "$dir/stderr-base", stderr => "$dir/stderr-base");
    register_cleanup(sub { stop_process($bpid) if $bpid });
    ok(wait_until(sub { (eval { SV::Test::WebSocket::raw_request($bport,
            "GET /api/realtime/v1/healthz HTTP/1.1\r\nHost: x\r\n\r\n", 2) } // '') =~ /^HTTP\/1\.1 200 / }, 15),
       'base_path /api: /api/realtime/v1/healthz answers 200')
        or diag((slurp_file("$dir/stderr-base") // '') . (slurp_file("$dir/rt-base.log") // ''));
    like(SV::Test::WebSocket::raw_request($bport, "GET /realtime/v1/healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
         qr{^HTTP/1\.1 404 }, 'the path without the base: 404');
    like(SV::Test::WebSocket::raw_request($bport, "GET /apix/realtime/v1/healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
         qr{^HTTP/1\.1 404 }, 'nor a longer first segment: 404');
    my $ws = SV::Test::WebSocket->connect(port => $bport, path => "/api$url2");
    is($ws->status, 101, 'the WebSocket below the base: 101');
    # SIGUSR2 (php-fpm's reload, as the pool takes it) reloads, not stops.
    kill 'USR2', $bpid;
    ok(wait_until(sub { (slurp_file("$dir/rt-base.log") // '') =~ /rt_reload/ }, 5), 'SIGUSR2: a reload');
    ok(pid_alive($bpid), 'and the daemon runs on');
    $ws->close;
    stop_process($bpid);
    $bpid = undef;
}
done_testing;
