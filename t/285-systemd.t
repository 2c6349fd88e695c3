#!/usr/bin/perl
# streamvibe.service as systemd would run it. systemd is not PID 1 here,
# so the test does what the unit asks for itself: systemd-analyze verify
# (and its offline security review), then ExecStartPre and ExecStart
# with systemd's environment (NOTIFY_SOCKET, RUNTIME_DIRECTORY, ...), its
# RuntimeDirectory and LogsDirectory at /run/streamvibe and
# /var/log/streamvibe, and, as root, its sandbox: a private mount
# namespace where the file system is read-only but for those
# directories (ProtectSystem=strict), /tmp is private (PrivateTmp) and
# /root and /home are hidden (ProtectHome), under NoNewPrivileges, the
# unit's CapabilityBoundingSet and UMask. Type=notify: READY=1 after the
# start, RELOADING=1 and READY=1 around ExecReload, STOPPING=1 on
# KillSignal; KillMode=mixed: the master alone gets the signal and
# stops its workers.

use strict;
use warnings;
use Test::More;
use IO::Socket::UNIX;
use IO::Select;
use POSIX ();
use SV::Test qw(:DEFAULT run_command spawn_process stop_process pid_alive slurp_file
    write_file find_program register_cleanup fcgi_request_bytes fcgi_read_answer);
use SV::Test::Pg;

plan skip_all => 'PostgreSQL server not installed' unless SV::Test::Pg::available();

my $src = sv_srcdir();
my $build = sv_builddir();
my $T = sv_tempdir(prefix => 'svsd');

# --- the unit, with this build's program and a test configuration dir ----------
my $unit_text = slurp_file("$src/systemd/streamvibe.service.in") // die 'streamvibe.service.in';
$unit_text =~ s/\@sbindir\@/$build/g;
$unit_text =~ s/\@sysconfdir\@/$T\/etc/g;
unlike($unit_text, qr/\@\w+\@/, 'every placeholder of the template is known');
my $unit_file = write_file("$T/streamvibe.service", $unit_text, 0644);

my %unit;    # "Section.Key" => [values]
{
    my $section = '';
    for (split /\n/, $unit_text) {
        next if /^\s*(#|;|$)/;
        if (/^\[(\w+)\]$/) { $section = $1; next }
        push @{ $unit{"$section.$1"} }, $2 if /^(\w+)=(.*)$/;
    }
}
sub unit1 { my $v = $unit{"Service.$_[0]"} or return undef; return $v->[-1] }
is(unit1('Type'), 'notify', 'Type=notify');
is(unit1('KillMode'), 'mixed', 'KillMode=mixed: the master stops its workers itself');
like(unit1('ExecReload') // '', qr/^\/bin\/kill -HUP \$MAINPID$/, 'ExecReload sends SIGHUP');
is(unit1('NoNewPrivileges'), 'yes', 'NoNewPrivileges');
is(unit1('ProtectSystem'), 'strict', 'ProtectSystem=strict');
is(unit1('PrivateTmp'), 'yes', 'PrivateTmp');

# The directories the unit creates are the ones the sample configuration
# and the logrotate snippet use.
my $rundir = '/run/' . unit1('RuntimeDirectory');
my $logdir = '/var/log/' . unit1('LogsDirectory');
my $sample = slurp_file("$src/streamvibe.conf.sample");
like($sample, qr{^listen = \Q$rundir\E/}m, "the sample's listen socket is in $rundir");
like($sample, qr{^pid_file = \Q$rundir\E/streamvibe\.pid$}m, "the sample's pid_file is in $rundir");
my $snippet = slurp_file("$src/logrotate/streamvibe");
like($snippet, qr{^\Q$logdir\E/\*\.log }m, "logrotate rotates $logdir");
like($snippet, qr{\Q$rundir\E/streamvibe\.pid}, "and signals the pid in $rundir");
like(unit1('TimeoutStopSec') // '', qr/^\d+$/, 'TimeoutStopSec is set');
cmp_ok(unit1('TimeoutStopSec'), '>', ($sample =~ /^shutdown_timeout = (\d+)/m)[0],
    'and longer than shutdown_timeout, so the pool finishes before systemd kills it');

SKIP: {
    my $sa = find_program('systemd-analyze') or skip 'systemd-analyze not installed', 3;
    my ($rc, $out) = run_command([$sa, 'verify', '--man=no', $unit_file], merge => 1, timeout => 60);
    is($rc, 0, 'systemd-analyze verify');
    is($out, '', 'without a warning') or diag $out;
    ($rc, $out) = run_command([$sa, 'security', '--offline=true', '--no-pager', $unit_file],
        merge => 1, timeout => 60);
    my ($exposure) = $out =~ /Overall exposure level for \S+: ([\d.]+)/;
    ok(defined $exposure && $exposure < 4, "systemd-analyze security: exposure " . ($exposure // '?') . ' (below 4: "OK" or better)')
        or diag $out;
}

# --- PostgreSQL, and the configuration as an operator writes it -----------------
my $pg = SV::Test::Pg->new;
$pg->start;
my ($rc, $out) = $pg->migrate;
is($rc, 0, 'migrate') or diag $out;

my $unshare = find_program('unshare');
my $setpriv = find_program('setpriv');
my $sandbox = $> == 0 && $unshare && $setpriv
    && (run_command([$unshare, '-m', 'true']))[0] == 0;
diag 'no sandbox (needs root, unshare and setpriv): the unit runs with its paths and environment only'
    unless $sandbox;

# Outside the sandbox the unit's directories are the test's own, and the
# configuration names those.
my ($host_run, $host_log) = ("$T/run", "$T/log");
mkdir $host_run or die;
mkdir $host_log or die;
chmod oct(unit1('RuntimeDirectoryMode') // '0755'), $host_run;
chmod oct(unit1('LogsDirectoryMode') // '0755'), $host_log;
my ($svc_run, $svc_log) = $sandbox ? ($rundir, $logdir) : ($host_run, $host_log);

mkdir "$T/etc";
mkdir "$T/etc/streamvibe";
my $user = $> == 0 ? $pg->{os_user} : undef;
my $conf = $sample;
$conf =~ s{^listen = \Q$rundir\E}{listen = $svc_run}m;
$conf =~ s{^pid_file = \Q$rundir\E}{pid_file = $svc_run}m;
$conf .= "\n# the test's\n"
    . 'database_url = ' . $pg->conninfo(user => 'authenticator') . "\n"
    . "workers = 2\n"
    . "listen_mode = 0666\n"
    . "log_file = $svc_log/streamvibe.log\n"
    . (defined $user ? "user = $user\n" : '');
write_file("$T/etc/streamvibe/streamvibe.conf", $conf, 0640);

# --- systemd's side: the notify socket, the environment, the sandbox --------------
my $notify_path = "$T/notify.sock";
my $notify = IO::Socket::UNIX->new(Type => SOCK_DGRAM(), Local => $notify_path)
    or die "notify socket: $!";
chmod 0666, $notify_path;
my @notes;
# Waits for a notification matching $re; returns it (or undef after $timeout s).
sub notified {
    my ($re, $timeout) = @_;
    my $sel = IO::Select->new($notify);
    my $deadline = time + ($timeout // 20);
    while (1) {
        for my $i (0 .. $#notes) {
            return splice(@notes, $i, 1) if $notes[$i] =~ $re;
        }
        my $left = $deadline - time;
        return undef if $left <= 0 || !$sel->can_read($left);
        my $msg;
        $notify->recv($msg, 4096);
        push @notes, $msg;
    }
}

my $path = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
my %sd_env = (
    (map { $_ => undef } keys %ENV),
    PATH              => $path,
    LANG              => 'C.UTF-8',
    INVOCATION_ID     => '0123456789abcdef0123456789abcdef',
    NOTIFY_SOCKET     => $notify_path,
    RUNTIME_DIRECTORY => $svc_run,
    LOGS_DIRECTORY    => $svc_log,
);

# The sandbox: a shell run by unshare -m (a private mount namespace, so
# nothing leaks to the host) that mounts what the unit asks for and
# execs the command through setpriv.
my %cap = map { $_ => 1 } map { lc s/^CAP_//r } split ' ', unit1('CapabilityBoundingSet') // '';
my $bounding = join ',', '-all', map { "+$_" } sort keys %cap;
my $umask = unit1('UMask') // '0022';
my $pg_sock = $pg->socket_dir;
write_file("$T/sandbox.sh", <<"SH", 0755);
#!/bin/sh
# Emulates streamvibe.service's sandbox; run by unshare -m.
set -e
# A fresh /run (the host's is not ours to change) holding
# RuntimeDirectory, and handles on what PrivateTmp is about to hide.
mount -t tmpfs -o mode=0755 sv-run /run
mkdir -p $rundir /run/.sv-keep/t /run/.sv-keep/pg /run/.sv-keep/build
mount --bind '$host_run' $rundir
mount --bind '$T' /run/.sv-keep/t
mount --bind '$pg_sock' /run/.sv-keep/pg
mount --bind '$build' /run/.sv-keep/build
# LogsDirectory.
mount -t tmpfs -o mode=0755 sv-log /var/log
mkdir -p $logdir
mount --bind '$host_log' $logdir
# PrivateTmp: an empty /tmp, where only the test's configuration and
# PostgreSQL's socket (its /run/postgresql) are put back, and the build
# tree when it is a checkout under /tmp (where the programs would be
# installed outside it).
mount -t tmpfs -o mode=1777 sv-tmp /tmp
mkdir -p '$T' '$pg_sock'
mount --bind /run/.sv-keep/t '$T'
mount --bind /run/.sv-keep/pg '$pg_sock'
case '$build' in /tmp/*) mkdir -p '$build'; mount --bind /run/.sv-keep/build '$build' ;; esac
umount -l /run/.sv-keep/t /run/.sv-keep/pg /run/.sv-keep/build
# ProtectHome=yes.
for d in /root /home /run/user; do
    [ -d "\$d" ] && mount -t tmpfs -o ro,mode=0700 sv-home "\$d" || true
done
# ProtectSystem=strict: every mount read-only but the API file systems,
# PrivateTmp's /tmp and the unit's directories.
awk '{ print \$5 }' /proc/self/mountinfo | sort -u | while read -r mp; do
    case "\$mp" in
        /proc|/proc/*|/dev|/dev/*|/sys|/sys/*|/tmp|$rundir|$logdir) continue ;;
        *\\\\*) continue ;;
    esac
    mount -o remount,bind,ro "\$mp"
done
umask $umask
exec $setpriv --no-new-privs --bounding-set $bounding -- "\$@"
SH
sub service_cmd {
    my (@cmd) = @_;
    return $sandbox ? [$unshare, '-m', '--propagation', 'private', "$T/sandbox.sh", @cmd] : \@cmd;
}
sub exec_line {
    my ($key) = @_;
    my $line = unit1($key) // die "no $key";
    my @cmd = split ' ', $line;
    s{^\Q$rundir\E}{$svc_run} for @cmd;    # (none today; the configuration holds the paths)
    return @cmd;
}

if ($sandbox) {
    # The sandbox is what the unit says, before anything runs in it.
    my ($prc, $pout) = run_command(service_cmd('/bin/sh', '-c', join '; ',
        'touch /etc/sv-probe 2>/dev/null && echo etc-writable',
        "touch $build/sv-probe 2>/dev/null && echo build-writable",
        "touch $rundir/probe && echo run-ok && rm $rundir/probe",
        "touch $logdir/probe && echo log-ok && rm $logdir/probe",
        'ls -A /tmp | tr "\n" " "; echo',
        'ls -A /root 2>&1 | head -1',
        'grep NoNewPrivs /proc/self/status',
        'umask'), env => \%sd_env, merge => 1);
    is($prc, 0, 'sandbox: probe runs') or diag $pout;
    unlike($pout, qr/etc-writable|build-writable/, 'sandbox: /etc and the build tree are read-only');
    like($pout, qr/run-ok/, "sandbox: $rundir is writable");
    like($pout, qr/log-ok/, "sandbox: $logdir is writable");
    my @tmp = sort map { "/tmp/$_" } split ' ', (($pout =~ /^((?:\S+ )+)$/m)[0] // '');
    my %back = map { $_ => 1 } map { m{^(/tmp/[^/]+)} } $T, $pg_sock, $build;
    is_deeply(\@tmp, [sort keys %back], 'sandbox: /tmp holds only what was put back');
    like($pout, qr/NoNewPrivs:\s+1/, 'sandbox: NoNewPrivileges');
    (my $bare = $umask) =~ s/^0+//;
    like($pout, qr/^0*\Q$bare\E$/m, "sandbox: UMask $umask");
}

# --- ExecStartPre, ExecStart ------------------------------------------------
($rc, $out) = run_command(service_cmd(exec_line('ExecStartPre')), env => \%sd_env, merge => 1, dir => '/');
is($rc, 0, 'ExecStartPre: the configuration checks') or diag $out;
like($out, qr/configuration ok/, 'and says so');

my $stdout = "$T/journal.log";    # what would go to the journal
my $pid = spawn_process(service_cmd(exec_line('ExecStart')), env => \%sd_env, dir => '/',
    stdout => $stdout, stderr => $stdout);
register_cleanup(sub { stop_process($pid, signals => ['TERM', 'KILL'], timeout => 40) if pid_alive($pid) });

my $ready = notified(qr/^READY=1$/m, 30);
ok($ready, 'READY=1 from the service') or diag slurp_file($stdout), slurp_file("$host_log/streamvibe.log");
my $sock = "$host_run/streamvibe.sock";
ok(-S $sock, 'the socket is in RuntimeDirectory, listening when READY=1 came');
is((slurp_file("$host_run/streamvibe.pid") // '') =~ s/\s+//gr, $pid,
    'the pid file (in RuntimeDirectory) names the main process, the one systemd started');

sub healthz {
    my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $sock) or return "connect: $!";
    $s->syswrite(fcgi_request_bytes('/healthz'));
    my ($text) = fcgi_read_answer($s, 10);
    return $text // '';
}
like(healthz(), qr/^Status: 200.*"database":\s*"ok"/s, 'GET /healthz through the socket: 200, database ok');

my @workers = SV::Test::proc_children($pid);
is(scalar @workers, 2, 'two workers');
my $status = slurp_file("/proc/$pid/status") // '';
if ($sandbox) {
    like($status, qr/^NoNewPrivs:\s+1$/m, 'the master runs with NoNewPrivileges');
    my ($bnd) = $status =~ /^CapBnd:\s+([0-9a-f]+)$/m;
    my %bit = (chown => 0, dac_override => 1, kill => 5, setgid => 6, setuid => 7);
    my $want = 0;
    $want |= 1 << ($bit{$_} // die "unknown capability $_") for keys %cap;
    is(hex($bnd // 0), $want, 'its capabilities are the unit\'s CapabilityBoundingSet');
}
if (defined $user) {
    my $uid = (getpwnam($user))[2];
    for my $w (@workers) {
        my $ws = slurp_file("/proc/$w/status") // '';
        ok(wait_until(sub { (slurp_file("/proc/$w/status") // '') =~ /^Uid:\s+$uid\s/m }, 10),
            "worker $w runs as $user");
        like(slurp_file("/proc/$w/status") // '', qr/^CapEff:\s+0+$/m, "worker $w has no capability");
    }
}
ok(wait_until(sub { (slurp_file("$host_log/streamvibe.log") // '') =~ /event=access .*path=\/healthz/ }, 10),
    'the access line is in LogsDirectory');

# --- ExecReload ----------------------------------------------------------------
my @reload = exec_line('ExecReload');
s/\$MAINPID/$pid/ for @reload;
($rc, $out) = run_command(\@reload, env => \%sd_env, merge => 1);
is($rc, 0, "ExecReload (@reload)") or diag $out;
ok(notified(qr/^RELOADING=1$/m, 10), 'RELOADING=1');
ok(notified(qr/^READY=1$/m, 10), 'then READY=1');
my %old = map { $_ => 1 } @workers;
ok(wait_until(sub { my @w = SV::Test::proc_children($pid); @w == 2 && !grep { $old{$_} } @w }, 20),
    'the workers are replaced, the master stays');
like(healthz(), qr/^Status: 200/, 'and it serves');

# --- logrotate's SIGUSR1 inside the sandbox -------------------------------------------
ok(rename("$host_log/streamvibe.log", "$host_log/streamvibe.log.1"), 'log renamed');
kill 'USR1', $pid;
ok(wait_until(sub { -s "$host_log/streamvibe.log" }, 10), 'SIGUSR1: a new log file in LogsDirectory');
# Once every process has let go of the renamed file (a request served
# before a worker got the signal is rightly logged there).
sub holds_old {
    for my $p ($pid, SV::Test::proc_children($pid)) {
        opendir my $dh, "/proc/$p/fd" or next;
        return 1 if grep { (readlink("/proc/$p/fd/$_") // '') =~ /streamvibe\.log\.1$/ } readdir $dh;
    }
    return 0;
}
ok(wait_until(sub { !holds_old() }, 10), 'master and workers write to the new file');
like(healthz(), qr/^Status: 200/, 'a request after the rotation');
ok(wait_until(sub { (slurp_file("$host_log/streamvibe.log") // '') =~ /event=access/ }, 10),
    'its access line is in the new file, written by a worker');

# --- stop: KillMode=mixed, KillSignal=SIGTERM ----------------------------------------
my $sig = (unit1('KillSignal') // 'SIGTERM') =~ s/^SIG//r;
my @last = SV::Test::proc_children($pid);
kill $sig, $pid;
ok(notified(qr/^STOPPING=1$/m, 10), "SIG$sig: STOPPING=1");
my $exit;
ok(wait_until(sub { my $r = waitpid($pid, POSIX::WNOHANG()); $exit = $? if $r == $pid; $r == $pid }, unit1('TimeoutStopSec')),
    'the master exits within TimeoutStopSec');
is($exit, 0, 'with status 0 (a clean stop, not a failure for Restart=on-failure)');
ok(!grep({ pid_alive($_) } @last), 'no worker outlives it (nothing for KillMode=mixed to kill)');
ok(!-e $sock && !-e "$host_run/streamvibe.pid", 'socket and pid file removed');
unlike(slurp_file($stdout) // '', qr/\S/, 'nothing on stdout/stderr (the journal): everything went to log_file')
    or diag slurp_file($stdout);

done_testing;
