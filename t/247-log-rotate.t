#!/usr/bin/perl
# Log rotation under load: log_file is renamed (by hand, then by the
# installed logrotate snippet), SIGUSR1 makes the master and every worker
# open it again, and no access line is lost or written twice: each
# answered request's line is in exactly one of the files.

use strict;
use warnings;
use Test::More;
use POSIX ();
use LWP::UserAgent;
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use Time::HiRes qw(sleep time);
use SV::Test qw(:DEFAULT slurp_file write_file pid_alive find_program run_command
    register_cleanup);
use SV::Test::Pg;
use SV::Test::Pool;
use SV::Test::Nginx;

plan skip_all => 'nginx not installed' unless SV::Test::Nginx::available();
plan skip_all => 'PostgreSQL server not installed' unless SV::Test::Pg::available();

my $pg = SV::Test::Pg->new;
$pg->start;
my ($rc, $out) = $pg->migrate;
is($rc, 0, 'migrate') or diag $out;

# As root the workers run as another user (the one PostgreSQL runs as, so
# they reach its socket): they must still be able to open the new file.
my $user = $> == 0 ? $pg->{os_user} : undef;
my $workers = 3;
my $pool = SV::Test::Pool->new(pg => $pg, workers => $workers,
    # Load from one address is the point here, not the per-address limit.
    conf => { (defined $user ? (user => $user) : ()), max_requests => 0, rate_limit_reads => 'off' });
$pool->start;
my $ngx = SV::Test::Nginx->new(pool => $pool);
$ngx->start;
is($ngx->request('GET', '/healthz')->code, 200, 'healthy before the load');

my $log = $pool->log_file;
my $master = $pool->pid;

# The log files each process writes to: the targets of its descriptors
# that name a file of the log's family.
sub log_targets {
    my ($pid) = @_;
    my @t;
    opendir my $dh, "/proc/$pid/fd" or return ();
    for my $fd (grep { /^\d+$/ } readdir $dh) {
        my $t = readlink "/proc/$pid/fd/$fd" // next;
        push @t, $t if index($t, $log) == 0;
    }
    return @t;
}
# True when the master and every worker write to the file named $log now.
sub all_follow {
    my @procs = ($master, $pool->worker_pids);
    return @procs == $workers + 1 && !grep { my @t = log_targets($_); @t != 1 || $t[0] ne $log } @procs;
}
ok(wait_until(\&all_follow, 20), 'master and workers write to log_file') or diag join ', ', map { "$_: " . join(' ', log_targets($_)) } $master, $pool->worker_pids;

# --- the load: clients through nginx, each request with its own id --------
my $dir = sv_tempdir();
my $clients = 3;
my @kids;
for my $c (1 .. $clients) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $ua = LWP::UserAgent->new(keep_alive => 1, timeout => 30, env_proxy => 0);
        $ua->proxy([qw(http https)], undef);
        my (@answered, @bad);
        my $n = 0;
        until (-e "$dir/done" || $n > 50000) {
            $n++;
            my $id = "rot-$c-$n";
            my $path = $n % 3 ? '/healthz' : '/rest/v1/platforms';
            my $res = $ua->get($ngx->url($path), 'X-Request-Id' => $id);
            if ($res->code == 200) { push @answered, $id } else { push @bad, "$id " . $res->code }
            # Atomically: the parent must never read a half-written count.
            if ($n % 5 == 0) {
                write_file("$dir/progress.$c.tmp", $n);
                rename "$dir/progress.$c.tmp", "$dir/progress.$c";
            }
        }
        write_file("$dir/answered.$c", join('', map { "$_\n" } @answered));
        write_file("$dir/bad.$c", join('', map { "$_\n" } @bad));
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
register_cleanup(sub { kill 'KILL', grep { pid_alive($_) } @kids });

sub progress { my $s = 0; $s += (slurp_file("$dir/progress.$_") || 0) for 1 .. $clients; $s }
sub more_load { my ($n) = @_; my $p = progress(); wait_until(sub { progress() >= $p + $n }, 30) }

ok(more_load(60), 'load is running');

# --- by hand: rename, SIGUSR1 ---------------------------------------------
for my $i (1 .. 2) {
    ok(rename($log, "$log.m$i"), "rotation $i: log_file renamed");
    ok(more_load(30), "rotation $i: requests go on, into the renamed file");
    ok(kill('USR1', $master), "rotation $i: SIGUSR1 to the master");
    ok(wait_until(\&all_follow, 10), "rotation $i: master and every worker write to the new log_file")
        or diag join ', ', map { "$_: " . join(' ', log_targets($_)) } $master, $pool->worker_pids;
    ok(more_load(60), "rotation $i: requests go on, into the new file");
}
if (defined $user) {
    my $uid = (getpwnam($user))[2];
    is((stat $log)[4], $uid, "the new log_file belongs to the workers' user ($user)");
}
is($pool->pid, $master, 'the master is the same process');
is(scalar($pool->worker_pids), $workers, 'and its workers are all there');

# --- the installed snippet, run by logrotate ----------------------------------
my @rotated_by_logrotate;
SKIP: {
    my $logrotate = find_program('logrotate', '/usr/sbin') or skip 'logrotate not installed', 4;
    # The snippet as installed, with the paths of streamvibe.service
    # replaced by this pool's.
    my $snippet = slurp_file(sv_srcdir() . '/logrotate/streamvibe') // die 'logrotate/streamvibe';
    like($snippet, qr{^/var/log/streamvibe/\*\.log \{}m, 'snippet: the log directory of streamvibe.service');
    $snippet =~ s{/var/log/streamvibe/}{$pool->dir . '/'}ge;
    $snippet =~ s{/run/streamvibe/streamvibe\.pid}{$pool->pid_file}ge;
    my $conf = write_file("$dir/logrotate.conf", $snippet, 0644);
    for my $i (1 .. 2) {
        my ($lrc, $lout) = run_command([$logrotate, '-f', '-s', "$dir/logrotate.state", $conf], merge => 1);
        is($lrc, 0, "logrotate -f with the snippet ($i)") or diag $lout;
        ok(wait_until(\&all_follow, 10) && more_load(60), "logrotate $i: everyone follows, requests go on")
            or diag join ', ', map { "$_: " . join(' ', log_targets($_)) } $master, $pool->worker_pids;
    }
    @rotated_by_logrotate = ("$log.1", "$log.2.gz");
}

write_file("$dir/done", 1);
for my $k (@kids) {
    my $t0 = time;
    until (waitpid($k, POSIX::WNOHANG()) == $k) {
        if (time - $t0 > 60) { kill 'KILL', $k; waitpid($k, 0); last }
        sleep 0.05;
    }
}
$ngx->stop;
# Stopping writes out every line the workers still held.
$pool->stop;

# --- every answered request's line, exactly once --------------------------------
my @answered = map { split /\n/, slurp_file("$dir/answered.$_") // '' } 1 .. $clients;
my @bad = map { split /\n/, slurp_file("$dir/bad.$_") // '' } 1 .. $clients;
cmp_ok(scalar @answered, '>=', 300, scalar(@answered) . ' requests answered during the rotations');
is(scalar @bad, 0, 'no request failed') or diag join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)];

my (%seen, %per_file, $torn);
for my $f ($log, "$log.m1", "$log.m2", @rotated_by_logrotate) {
    my $text;
    if ($f =~ /\.gz\z/) {
        gunzip($f => \$text) or do { fail("gunzip $f: $GunzipError"); next };
    } else {
        $text = slurp_file($f);
    }
    ok(defined $text, "$f exists") or next;
    for my $line (split /\n/, $text) {
        $torn++ unless $line =~ /\Ats=\S+ level=\w+ pid=\d+ event=\w+/;
        next unless $line =~ /event=access .*request_id=(rot-\d+-\d+)/;
        $seen{$1}++;
        $per_file{$f}++;
    }
}
ok(!$torn, 'every line is whole') or diag "$torn torn lines";
for my $f ("$log.m1", "$log.m2", $log, @rotated_by_logrotate) {
    cmp_ok($per_file{$f} // 0, '>', 0, "$f holds access lines of the load");
}
my @missing = grep { !$seen{$_} } @answered;
is(scalar @missing, 0, 'no answered request lacks its access line')
    or diag 'missing: ' . join ' ', @missing[0 .. ($#missing < 9 ? $#missing : 9)];
my @twice = grep { $seen{$_} > 1 } sort keys %seen;
is(scalar @twice, 0, 'no access line is written twice') or diag "twice: @twice[0 .. ($#twice < 9 ? $#twice : 9)]";

done_testing;
