#!/usr/bin/perl
# SIGHUP is a graceful reload: under concurrent keepalive load no request
# fails, the workers are replaced and the master stays. So is SIGUSR2,
# php-fpm's reload signal, which an operator coming from it may send
# (the last reload below, so the workers' replacement is its doing).

use strict;
use warnings;
use Test::More;
use POSIX ();
use LWP::UserAgent;
use Time::HiRes qw(sleep time);
use SV::Test qw(:DEFAULT slurp_file write_file pid_alive);
use SV::Test::Stack;

my $workers = 3;
my $s = SV::Test::Stack->new(workers => $workers, conf => { shutdown_timeout => 10 });
my ($pool, $ngx) = ($s->pool, $s->ngx);
is($ngx->request('GET', '/healthz')->code, 200, 'healthy before the load');

my $master = $pool->pid;
my @orig = $pool->wait_workers($workers);
is(scalar @orig, $workers, "$workers workers before reload");

my $dir = sv_tempdir();
my $clients = 4;
my $min_requests = 150;
my @kids;
for my $c (1 .. $clients) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        # Client: sequential keepalive GETs until it has done $min_requests
        # and the parent says the reloads are over.
        my $ua = LWP::UserAgent->new(keep_alive => 1, timeout => 30, env_proxy => 0);
        $ua->proxy([qw(http https)], undef);
        my ($n, $ok, @bad) = (0, 0);
        while ($n < $min_requests || !-e "$dir/done") {
            my $res = $ua->get($ngx->url('/healthz'));
            $n++;
            if ($res->code == 200) { $ok++ } else { push @bad, $res->code . ' ' . ($res->content =~ s/\s+/ /gr) }
            write_file("$dir/progress.$c", $n) if $n % 5 == 0;
            last if $n > 20000;
        }
        write_file("$dir/result.$c", join("\n", $n, $ok, @bad[0 .. ($#bad < 9 ? $#bad : 9)]) . "\n");
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
# If the test dies half-way, the clients go too.
SV::Test::register_cleanup(sub { kill 'KILL', grep { SV::Test::pid_alive($_) } @kids });

sub progress { my $n = 0; $n += (slurp_file("$dir/progress.$_") || 0) for 1 .. $clients; $n }

ok(wait_until(sub { progress() >= 40 }, 30), 'load is running');
my @before_usr2;
for my $i (1 .. 3) {
    my $p = progress();
    my $signal = $i < 3 ? 'HUP' : 'USR2';
    # The workers the SIGUSR2 must replace: those the SIGHUPs left.
    @before_usr2 = $pool->wait_workers($workers) if $signal eq 'USR2';
    ok($pool->reload(signal => $signal), "SIG$signal $i");
    # Let the reload happen under load: wait for more requests to complete.
    wait_until(sub { progress() >= $p + 60 }, 20);
    sleep 0.2;
}
write_file("$dir/done", 1);

for my $k (@kids) {
    my $t0 = time;
    until (waitpid($k, POSIX::WNOHANG()) == $k) {
        if (time - $t0 > 120) { kill 'KILL', $k; waitpid($k, 0); last }
        sleep 0.05;
    }
}

my ($total, $ok) = (0, 0);
for my $c (1 .. $clients) {
    my ($n, $good, @bad) = split /\n/, slurp_file("$dir/result.$c") // "0\n0\nno result file\n";
    $total += $n;
    $ok += $good;
    diag "client $c: $_" for @bad;
}
cmp_ok($total, '>=', $clients * $min_requests, "clients made $total requests");
is($ok, $total, 'every request during the reloads was 200');

my %orig = map { $_ => 1 } @orig, @before_usr2;
my @now;
ok(wait_until(sub { @now = $pool->worker_pids; @now == $workers && !grep { $orig{$_} } @now }, 15),
    'after reload all workers are new') or diag "before: @orig, now: @now";
is($pool->pid, $master, 'master pid unchanged');
ok(pid_alive($master), 'master alive');
my $pidfile = slurp_file($pool->pid_file) // '';
like($pidfile, qr/^\s*$master\s*$/, 'pid file still names the master');
is($ngx->request('GET', '/healthz')->code, 200, 'healthy after the reloads');

$s->stop;
done_testing;
