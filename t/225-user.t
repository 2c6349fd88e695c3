#!/usr/bin/perl
# Started as root, the pool master keeps root (socket, log, signals) and
# its workers, which parse what clients send, run as `user` (php-fpm's
# model): on start, after a reload and after a recycle. An unknown user
# stops the start, and a reload that names one is rejected.

use strict;
use warnings;
use Test::More;
use IO::Socket::UNIX;
use POSIX ();
use SV::Test qw(:DEFAULT fcgi_ask slurp_file write_file sv_builddir);
use SV::Test::Pool;
use SV::Test::Stack;

plan skip_all => 'switching users needs root' unless $> == 0;

my $pg = SV::Test::Stack->new(pool => 0)->pg;
# The worker user must reach PostgreSQL's socket: the user it runs as.
my $user = $pg->os_user // plan skip_all => 'no unprivileged user for PostgreSQL';
my ($uid, $gid) = (getpwnam($user))[2, 3];

my $ids = sub {
    my ($pid) = @_;
    my $status = slurp_file("/proc/$pid/status") // '';
    my ($u) = $status =~ /^Uid:\s+\d+\s+(\d+)/m;
    my ($g) = $status =~ /^Gid:\s+\d+\s+(\d+)/m;
    return ($u // -1) . ':' . ($g // -1);
};
my $healthz = sub { ($_[0]->fcgi('/healthz'))[0] };

my $pool = SV::Test::Pool->new(pg => $pg, workers => 2, conf => { user => $user, max_requests => 3 });
$pool->start;
is($ids->($pool->pid), '0:0', 'the master stays root');
my @workers = $pool->worker_pids;
is(scalar @workers, 2, 'two workers');
# A worker drops to the user right after the fork, before it takes its
# scoreboard slot or serves anything; the start may return in between.
for my $w (@workers) {
    ok(wait_until(sub { $ids->($w) eq "$uid:$gid" }, 10), "worker $w runs as $user")
        or diag "worker $w: " . $ids->($w);
}
like($healthz->($pool), qr/^Status: 200/, 'and serves, PostgreSQL included');
like($pool->log, qr/event=start [^\n]*user=\Q$user\E/, 'the start line names the user');

# Recycled workers (max_requests = 3) and a reload's new ones too.
like($healthz->($pool), qr/^Status: 200/, 'request') for 1 .. 8;
my $from = $pool->log_offset;
$pool->reload;
ok($pool->wait_log(qr/event=reload generation=2/, 10, from => $from), 'reloaded');
ok(wait_until(sub { my @w = $pool->worker_pids; @w == 2 && !grep { $ids->($_) ne "$uid:$gid" } @w }, 10),
    "every worker after recycles and a reload runs as $user")
    or diag join ' ', map { "$_=" . $ids->($_) } $pool->worker_pids;

# A reload naming a user that does not exist keeps the running pool.
$pool->conf(user => 'no-such-user-sv');
$from = $pool->log_offset;
$pool->reload;
ok($pool->wait_log(qr/configuration rejected[^\n]*no user no-such-user-sv/, 10, from => $from),
    'a reload with an unknown user is rejected, and the log says why');
like($healthz->($pool), qr/^Status: 200/, 'the pool keeps serving');
$pool->stop;

# Without the pool (spawn-fcgi, mod_fcgid: the listening socket on fd 0)
# the process drops to the user itself.
{
    my $dir = sv_tempdir();
    write_file("$dir/sv.conf", "database_url = " . $pg->conninfo(user => 'authenticator')
        . "\nuser = $user\nlog_file = $dir/sv.log\n");
    my $listener = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => "$dir/s.sock", Listen => 8)
        or die "listen: $!";
    my $kid = fork // die "fork: $!";
    if ($kid == 0) {
        POSIX::dup2(fileno($listener), 0) or POSIX::_exit(99);
        exec(sv_builddir() . '/streamvibe-fcgi', '--config', "$dir/sv.conf") or POSIX::_exit(98);
    }
    close $listener;
    my $answer = '';
    wait_until(sub {
        my $sock = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => "$dir/s.sock") or return 0;
        ($answer) = fcgi_ask($sock, '/healthz');
        return defined $answer;
    }, 10);
    like($answer // '', qr/^Status: 200/, 'spawn-fcgi mode serves');
    is($ids->($kid), "$uid:$gid", "and runs as $user");
    kill 'TERM', $kid;
    waitpid $kid, 0;
}

my $bad = SV::Test::Pool->new(pg => $pg, workers => 1, conf => { user => 'no-such-user-sv' });
eval { $bad->start(timeout => 10) };
like($@, qr/no user no-such-user-sv/, 'an unknown user stops the start, with the reason');

my $group_only = SV::Test::Pool->new(pg => $pg, workers => 1, conf => { group => 'nogroup' });
eval { $group_only->start(timeout => 10) };
like($@, qr/group is set but user is not/, 'a group without a user is refused');

done_testing;
