#!/usr/bin/perl
# A kept FastCGI connection belongs to one worker, but a request on it
# never waits for that worker when it cannot serve it: a busy worker
# passes the connection to a free one, and a worker leaving on reload or
# recycle passes its connections to the workers that stay, so nginx never
# sees them closed under it. Only a stopping pool closes them. Raw
# FastCGI connections stand in for nginx's kept ones, so which worker
# holds which is known.

use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use IO::Select;
use JSON::PP ();
use SV::Test qw(:DEFAULT fcgi_request_bytes fcgi_read_answer fcgi_ask peer_closed pid_alive free_tcp_port);
use SV::Test::Pool;
use SV::Test::Stack;

plan skip_all => 'DBD::Pg not installed' unless eval { require DBD::Pg; 1 };
my $pg = SV::Test::Stack->new(pool => 0)->pg;
local $SIG{PIPE} = 'IGNORE';

# The answer's text (head and body), or undef when none came within
# $timeout seconds (default 10): a liveness bound, far above any answer here.
my $ask = sub { my ($sock, $uri, $timeout) = @_; scalar fcgi_ask($sock, $uri, timeout => $timeout) };
my $json_of = sub {
    my ($text) = @_;
    return undef unless defined $text && $text =~ /\r?\n\r?\n(.*)\z/s;
    return eval { JSON::PP->new->decode($1) };
};

{
    my $pool = SV::Test::Pool->new(pg => $pg, workers => 2, conf => { request_timeout => 0 });
    $pool->start;

    # While worker A is held by a request on $first, connections
    # opened now all go to worker B.
    my $dbh = $pg->dbh(user => 'postgres');
    my $hold = sub {
        $dbh->begin_work;
        # /healthz reads schema_migrations.
        $dbh->do('LOCK TABLE public.schema_migrations IN ACCESS EXCLUSIVE MODE');
    };
    $hold->();
    my $first = $pool->connect;
    $first->syswrite(fcgi_request_bytes('/healthz'));
    my $waiting_on_lock = sub {
        $dbh->selectrow_array('SELECT count(*) FROM pg_locks WHERE NOT granted') == 1;
    };
    ok(wait_until($waiting_on_lock, 10), 'worker A is held');
    my @on_b = map { $pool->connect } 1 .. 4;
    my $status = sub { ($json_of->($ask->($_[0], '/status?full')) // {}) };
    like($ask->($_, '/status') // '', qr/^Status: 200/, 'worker B serves a new connection') for @on_b;
    my ($b_pid) = map { $_->{pid} } grep { $_->{connections} >= 4 }
        @{ $status->($on_b[0])->{processes} // [] };
    ok($b_pid, 'worker B holds the four connections');
    $dbh->rollback;
    my ($text, $ended) = fcgi_read_answer($first, 10);
    like($text // '', qr/^Status: 200/, 'worker A answers once released');

    # Now B is held by a request on one of its connections; those on its
    # other three are passed on to A.
    $hold->();
    my $stuck = shift @on_b;
    $stuck->syswrite(fcgi_request_bytes('/healthz'));
    ok(wait_until($waiting_on_lock, 10), 'worker B is held');
    my $answered = grep { ($ask->($_, '/status', 5) // '') =~ /^Status: 200/ } @on_b;
    is($answered, 3, 'requests on the busy worker\'s kept connections are answered meanwhile');
    my $st = $json_of->($ask->($first, '/status'));
    cmp_ok($st->{fastcgi_passed}, '>=', 3, 'the status page counts the connections passed on')
        or diag explain $st;
    my ($b_now) = map { $_->{connections} } grep { $_->{pid} == $b_pid }
        @{ $status->($first)->{processes} // [] };
    is($b_now, 1, 'and no longer shows them as its own');
    ok(!IO::Select->new($stuck)->can_read(0), 'the stuck request is still waiting');

    $dbh->rollback;
    ($text, $ended) = fcgi_read_answer($stuck, 10);
    ok($ended && $text =~ /^Status: 200/ && $text =~ /"status":"ok"/,
        'the stuck request then gets its own answer, on its own connection') or diag $text;
    like($ask->($stuck, '/healthz') // '', qr/^Status: 200/, 'and its connection serves the next request');
    $dbh->disconnect;
    $pool->stop;
}

SKIP: {
    # The status page counts a connection passed on (and no longer the
    # passing worker's) as soon as it has left: the worker that takes it
    # can answer its request, and a status request after it, before the
    # passing one runs again, as on a loaded machine. A sendmsg that
    # sleeps after passing a descriptor (t/preload/sendmsg-sleep.c)
    # plays the passing worker left waiting by the scheduler.
    my $cc = SV::Test::find_program($ENV{CC} // 'cc') or skip 'no C compiler to build the preload with', 3;
    my $dir = sv_tempdir(prefix => 'svpreload');
    my ($rc, $out) = SV::Test::run_command([$cc, '-shared', '-fPIC', '-o', "$dir/sendmsg-sleep.so",
        sv_srcdir() . '/t/preload/sendmsg-sleep.c', '-ldl'], merge => 1);
    is($rc, 0, 'the sendmsg preload builds') or diag $out;
    # An ASan build wants its runtime first among the libraries.
    my $asan = join ':', grep { length } $ENV{ASAN_OPTIONS} // '', 'verify_asan_link_order=0';
    my $pool = SV::Test::Pool->new(pg => $pg, workers => 2, conf => { request_timeout => 0 },
        env => { LD_PRELOAD => "$dir/sendmsg-sleep.so", SV_TEST_SENDMSG_SLEEP_MS => 3000,
                 ASAN_OPTIONS => $asan });
    $pool->start;
    my $dbh = $pg->dbh(user => 'postgres');
    my $hold = sub { $dbh->begin_work; $dbh->do('LOCK TABLE public.schema_migrations IN ACCESS EXCLUSIVE MODE') };
    my $waiting_on_lock = sub { $dbh->selectrow_array('SELECT count(*) FROM pg_locks WHERE NOT granted') == 1 };
    # Worker A held: the next two connections are worker B's.
    $hold->();
    my $on_a = $pool->connect;
    $on_a->syswrite(fcgi_request_bytes('/healthz'));
    wait_until($waiting_on_lock, 10);
    my @on_b = map { $pool->connect } 1 .. 2;
    $ask->($_, '/status') for @on_b;
    $dbh->rollback;
    fcgi_read_answer($on_a, 10);
    my $before = $json_of->($ask->($on_a, '/status?full')) // {};
    my ($b_pid) = map { $_->{pid} } grep { $_->{connections} == 2 } @{ $before->{processes} // [] };
    # Now B is held, and passes on its other connection's request.
    $hold->();
    $on_b[0]->syswrite(fcgi_request_bytes('/healthz'));
    wait_until($waiting_on_lock, 10);
    my $passed = $ask->($on_b[1], '/status');
    my $after = $json_of->($ask->($on_a, '/status?full')) // {};
    my ($b_now) = map { $_->{connections} } grep { $_->{pid} == ($b_pid // 0) }
        @{ $after->{processes} // [] };
    ok(defined $passed && defined $b_pid && $after->{fastcgi_passed} == ($before->{fastcgi_passed} // 0) + 1,
        'a connection passed on is counted before its request is answered')
        or diag explain { b_pid => $b_pid, before => $before->{fastcgi_passed}, after => $after };
    is($b_now, 1, 'and is no longer counted as the passing worker\'s');
    $dbh->rollback;
    fcgi_read_answer($on_b[0], 10);
    $dbh->disconnect;
    $pool->stop;
}

{
    # PostgreSQL that accepts connections and never answers: a worker
    # waiting to connect (up to 3 s) passes requests on like one waiting
    # for a query.
    my $port = free_tcp_port();
    my $hung = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Listen => 16,
        ReuseAddr => 1) or die "listen: $!";
    my $pool = SV::Test::Pool->new(workers => 2, conf => { request_timeout => 0,
        database_url => "host=127.0.0.1 port=$port dbname=streamvibe user=authenticator" });
    $pool->start;
    my $first = $pool->connect;
    $first->syswrite(fcgi_request_bytes('/healthz'));
    sleep 0.3;   # worker A is connecting; the next connections go to B
    my @on_b = map { $pool->connect } 1 .. 3;
    like($ask->($_, '/status') // '', qr/^Status: 200/, 'worker B serves') for @on_b;
    my ($text) = fcgi_read_answer($first, 10);
    like($text // '', qr/^Status: 503/, 'worker A gives up connecting: 503');
    my $stuck = shift @on_b;
    $stuck->syswrite(fcgi_request_bytes('/healthz'));
    sleep 0.3;   # worker B is connecting
    # 1.5 s: a liveness bound well under the 3 s connect wait.
    my $answered = grep { ($ask->($_, '/status', 1.5) // '') =~ /^Status: 200/ } @on_b;
    is($answered, 2, 'requests on its other kept connections are answered meanwhile');
    ($text) = fcgi_read_answer($stuck, 10);
    like($text // '', qr/^Status: 503/, 'the request waiting on PostgreSQL gets its 503');
    $pool->stop;
}

{
    # Several hosts, the first one hung: libpq's per-host connect_timeout
    # moves on to the next, as it does for psql.
    my $port = free_tcp_port();
    my $hung = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Listen => 16,
        ReuseAddr => 1) or die "listen: $!";
    my $pool = SV::Test::Pool->new(pg => $pg, workers => 1, conf => { database_url => sprintf(
        'host=127.0.0.1,%s port=%d,%d dbname=streamvibe user=authenticator connect_timeout=2',
        $pg->socket_dir, $port, $pg->port) });
    $pool->start;
    like($ask->($pool->connect, '/healthz', 20) // '', qr/^Status: 200/,
        'with the first of two hosts hung, the second serves');
    $pool->stop;
}

{
    # One worker recycled after every request, four connections each
    # sending its next request as soon as its answer is in: a connection
    # taken from the queue just before the worker leaves must not be
    # passed back unserved (with one worker, the same ones every time).
    my $pool = SV::Test::Pool->new(pg => $pg, workers => 1, conf => { max_requests => 1 });
    $pool->start;
    my @conns = map { $pool->connect } 1 .. 4;
    my (%raw, %answers);
    my $sel = IO::Select->new(@conns);
    $_->syswrite(fcgi_request_bytes('/healthz')) for @conns;
    my $end = time + 3;
    while (time < $end) {
        for my $c ($sel->can_read(0.2)) {
            my $n = sysread($c, my $buf, 65536);
            if (!$n) { $sel->remove($c); next }
            $raw{$c} .= $buf;
            # The answer is complete once FCGI_END_REQUEST (8 + 8 bytes)
            # has arrived; the record before it ends FCGI_STDOUT.
            next unless length $raw{$c} >= 16 && substr($raw{$c}, -16, 2) eq "\x01\x03";
            $answers{$c}++ if $raw{$c} =~ /Status: 200/;
            $raw{$c} = '';
            $c->syswrite(fcgi_request_bytes('/healthz'));
        }
    }
    my @counts = map { $answers{$_} // 0 } @conns;
    my ($min, $max) = (sort { $a <=> $b } @counts)[0, -1];
    ok($min >= 1 && $min * 4 >= $max, 'with max_requests = 1 every busy connection is served its share')
        or diag "answers per connection: @counts";
    $pool->stop;
}

{
    # Hashing a password is CPU work with no PostgreSQL wait to pass
    # requests on from: the worker gives its idle connections away first
    # (here to the queue, from which the one worker takes them back).
    my $pool = SV::Test::Pool->new(pg => $pg, workers => 1,
        conf => { jwt_secret => 'pass-on-test-secret-' . ('p' x 32) });
    $pool->start;
    my @conns = map { $pool->connect } 1 .. 3;
    like($ask->($_, '/status') // '', qr/^Status: 200/, 'a kept connection') for @conns;
    my $before = $json_of->($ask->($conns[0], '/status'))->{fastcgi_passed};
    $conns[0]->syswrite(fcgi_request_bytes('/auth/v1/token?grant_type=password', method => 'POST',
        body => '{"email":"nobody@example.com","password":"not a password"}'));
    my ($text, $ended) = fcgi_read_answer($conns[0], 10);
    like($text // '', qr/^Status: 400/, 'a failed login (a password hash checked)') or diag $text;
    my $st = $json_of->($ask->($conns[0], '/status'));
    is($st->{fastcgi_passed} - $before, 2, 'the worker gave its two idle connections away first');
    like($ask->($_, '/status') // '', qr/^Status: 200/, 'and they still serve requests') for @conns[1, 2];
    $pool->stop;
}

{
    # Reload: the old worker's kept connection is served by the new one.
    my $pool = SV::Test::Pool->new(pg => $pg, workers => 1);
    $pool->start;
    my $conn = $pool->connect;
    like($ask->($conn, '/healthz') // '', qr/^Status: 200/, 'a kept connection is served');
    my ($old) = $pool->worker_pids;
    my $from = $pool->log_offset;
    $pool->reload;
    ok($pool->wait_log(qr/event=worker_exit worker=$old\b/, 10, from => $from), 'the reload retired its worker');
    ok(!peer_closed($conn), 'the connection stayed open');
    like($ask->($conn, '/healthz') // '', qr/^Status: 200/, 'and the new worker answers on it');
    my ($new) = $pool->worker_pids;
    isnt($new, $old, 'a different worker');

    # Stop: connections close, and the pool exits.
    my $master = $pool->pid;
    kill 'TERM', $master;
    ok(wait_until(sub { peer_closed($conn) }, 10), 'stopping the pool closes its kept connections');
    ok(wait_until(sub { !pid_alive($master) }, 10), 'and the pool exits');
    $pool->stop;
}

{
    # Recycle after max_requests: the connection outlives every worker.
    my $pool = SV::Test::Pool->new(pg => $pg, workers => 1, conf => { max_requests => 2 });
    $pool->start;
    my $conn = $pool->connect;
    my $ok = grep { ($ask->($conn, '/healthz') // '') =~ /^Status: 200/ } 1 .. 7;
    is($ok, 7, 'seven requests on one connection across three recycled workers');
    my @recycled = ($pool->log =~ /event=worker_recycle/g);
    cmp_ok(scalar @recycled, '>=', 3, 'the workers were recycled meanwhile');
    $pool->stop;
}

done_testing;
