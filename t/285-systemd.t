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
# unit's CapabilityBoundingSet and UMask, and its ReadWritePaths (the
# job spool, in its place the test's). Type=notify: READY=1 after the
# start, RELOADING=1 and READY=1 around ExecReload, STOPPING=1 on
# KillSignal.
#
# KillMode=process: on stop systemd signals the master alone and kills
# nothing else, so the pool must leave nothing behind but its jobs, which
# must run on. The test stops the unit as systemd would (SIGTERM to the
# main process, later SIGKILL to it alone) with jobs running, then starts
# the unit's command lines again, and checks that the master left no
# worker, launcher, reconciler or daemon (every process left in the
# unit's mount namespace, the test's stand-in for its cgroup, is a job's),
# that a running job ends after the restarts with one completed audit_log
# row and its quota spent once, and that a job killed while the unit was
# down is ended by the next start's reconciliation (interrupted,
# refunded). What it cannot show without systemd as PID 1: that systemd
# itself signals only the main process (its documented KillMode=process
# behaviour; the test asserts the unit says so), what it logs about the
# processes left over, and cgroup membership as such.

use strict;
use warnings;
use Test::More;
use IO::Socket::UNIX;
use IO::Select;
use POSIX ();
use SV::Test qw(:DEFAULT run_command spawn_process stop_process pid_alive slurp_file
    write_file find_program register_cleanup fcgi_request_bytes fcgi_read_answer fcgi_ask);
use SV::Test::Pg;
use SV::Test::Fake;
use JSON::PP;

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
is(unit1('KillMode'), 'process', 'KillMode=process: the master alone is signalled; jobs run on');
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
# The job spool: the sample's job_spool_dir, made by an ExecStartPre with
# full privileges and writable under ProtectSystem=strict.
my ($spooldir) = $sample =~ /^job_spool_dir = (\S+)$/m;
ok($spooldir, "the sample's job_spool_dir is $spooldir");
ok((grep { $_ eq "-$spooldir" } map { split ' ' } @{ $unit{'Service.ReadWritePaths'} // [] }),
    'ReadWritePaths lets the pool write there');
ok((grep { /^\+\S*mkdir -p -m 0700 \Q$spooldir\E$/ } @{ $unit{'Service.ExecStartPre'} // [] }),
    'an ExecStartPre makes it, with full privileges (+)');
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
# The spool: the unit's ExecStartPre makes it; in the sandbox the test's
# takes the place of the host's.
my $host_spool = "$T/spool";
my $svc_spool = $sandbox ? $spooldir : $host_spool;
my $spoolparent = $spooldir =~ s{/[^/]+$}{}r;

# The model the jobs ask (enhance-ai): it answers a content whose title
# says "held" once the test says so.
my $release = "$T/release";
my $ai = SV::Test::Fake->held_model(release => $release, seconds => 300);
my $jwt_secret = 'systemd-jobs-secret-' . ('s' x 32);

mkdir "$T/etc";
mkdir "$T/etc/streamvibe";
my $user = $> == 0 ? $pg->{os_user} : undef;
my $conf = $sample;
$conf =~ s{^listen = \Q$rundir\E}{listen = $svc_run}m;
$conf =~ s{^pid_file = \Q$rundir\E}{pid_file = $svc_run}m;
$conf =~ s{^job_spool_dir = \Q$spooldir\E$}{job_spool_dir = $svc_spool}m;
$conf .= "\n# the test's\n"
    . 'database_url = ' . $pg->conninfo(user => 'authenticator') . "\n"
    . "workers = 2\n"
    . "listen_mode = 0666\n"
    . "log_file = $svc_log/streamvibe.log\n"
    . "jwt_secret = $jwt_secret\n"
    . 'ai_base_url = ' . $ai->url('/v1') . "\n"
    # A held job outlasts the stops and starts below.
    . "http_timeout = 250\njob_time_limit_ai = 300\n"
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
# ReadWritePaths=-$spooldir ("-": unless it is missing), the test's in
# place of the host's.
if [ -d '$host_spool' ]; then
    mount -t tmpfs -o mode=0755 sv-spool $spoolparent
    mkdir -p $spooldir
    mount --bind '$host_spool' $spooldir
fi
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
        /proc|/proc/*|/dev|/dev/*|/sys|/sys/*|/tmp|$rundir|$logdir|$spooldir) continue ;;
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
# The unit's command lines as systemd runs them: each ExecStartPre in
# turn (a "+" one with full privileges, outside the sandbox, where the
# spool it makes is the test's), then ExecStart in a sandbox of its own.
sub exec_start_pre {
    my @out;
    for my $line (@{ $unit{'Service.ExecStartPre'} }) {
        my ($full, $cmd) = $line =~ /^(\+?)(.*)$/;
        my @cmd = split ' ', $cmd;
        if ($full) { s{^\Q$spooldir\E$}{$host_spool} for @cmd }
        my ($prc, $pout) = run_command($full ? \@cmd : service_cmd(@cmd), env => \%sd_env, merge => 1, dir => '/');
        push @out, [$line, $prc, $pout];
    }
    return @out;
}
my @pre = exec_start_pre();
is(scalar(grep { $_->[1] != 0 } @pre), 0, 'ExecStartPre: every line succeeds') or diag explain \@pre;
like($pre[-1][2] // '', qr/configuration ok/, 'the configuration checks, and says so');
ok(-d $host_spool && ((stat $host_spool)[2] & 07777) == 0700, 'the job spool is made, mode 0700');

my @journal;    # what would go to the journal, a file per start
sub exec_start {
    push @journal, "$T/journal." . (@journal + 1) . '.log';
    my $p = spawn_process(service_cmd(exec_line('ExecStart')), env => \%sd_env, dir => '/',
        stdout => $journal[-1], stderr => $journal[-1]);
    register_cleanup(sub { stop_process($p, signals => ['TERM', 'KILL'], timeout => 40) if pid_alive($p) });
    return $p;
}
my $pid = exec_start();
my $stdout = $journal[-1];

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

# The workers: the master's children in its session (the job launcher and
# the reconciler have sessions of their own).
sub sid_of { ((slurp_file("/proc/$_[0]/stat") // '') =~ /\)\s+\S+\s+\d+\s+\d+\s+(\d+)/)[0] // -1 }
sub workers { my $sid = sid_of($pid); return grep { sid_of($_) == $sid } SV::Test::proc_children($pid) }
my @workers = workers();
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
ok(wait_until(sub { my @w = workers(); @w == 2 && !grep { $old{$_} } @w }, 20),
    'the workers are replaced, the master stays');
like(healthz(), qr/^Status: 200/, 'and it serves');

# --- logrotate's SIGUSR1 inside the sandbox -------------------------------------------
ok(wait_until(sub { grep { (slurp_file("/proc/$_/cmdline") // '') =~ /--launcher/ } SV::Test::proc_children($pid) }, 10),
    'a job launcher runs');
ok(rename("$host_log/streamvibe.log", "$host_log/streamvibe.log.1"), 'log renamed');
kill 'USR1', $pid;
ok(wait_until(sub { -s "$host_log/streamvibe.log" }, 10), 'SIGUSR1: a new log file in LogsDirectory');
# Once every process has let go of the renamed file (a request served
# before a worker got the signal is rightly logged there).
sub holds_old {
    my @kids = SV::Test::proc_children($pid);
    # The job launcher's serving processes too: it passes SIGUSR1 on.
    my @serving = map { SV::Test::proc_children($_) }
        grep { (slurp_file("/proc/$_/cmdline") // '') =~ /--launcher/ } @kids;
    for my $p ($pid, @kids, @serving) {
        opendir my $dh, "/proc/$p/fd" or next;
        return $p if grep { (readlink("/proc/$p/fd/$_") // '') =~ /streamvibe\.log\.1$/ } readdir $dh;
    }
    return 0;
}
ok(wait_until(sub { !holds_old() }, 10), 'master, workers, job launcher and its serving processes write to the new file')
    or diag titles(grep { $_ } holds_old());
like(healthz(), qr/^Status: 200/, 'a request after the rotation');
ok(wait_until(sub { (slurp_file("$host_log/streamvibe.log") // '') =~ /event=access/ }, 10),
    'its access line is in the new file, written by a worker');

# --- jobs across a stop and two starts (KillMode=process) ------------------------
my $su = $pg->dbh(user => 'postgres');
my $uid = $su->selectrow_array(q{INSERT INTO auth.users (email) VALUES ('sd@example.com') RETURNING id});
$su->do(q{UPDATE subscription_settings SET max_ai_per_month = 100 WHERE user_id = ?}, undef, $uid);
my $hid = $su->selectrow_array(q{INSERT INTO account_handles (user_id, platform_id, handle)
    SELECT ?, id, 'sd' FROM platforms WHERE name = 'youtube' RETURNING id}, undef, $uid);
my %content = map { $_ => scalar $su->selectrow_array(q{INSERT INTO handle_content
    (handle_id, platform_content_id, title) VALUES (?, ?, ?) RETURNING id}, undef, $hid, $_, $_) }
    ('held one', 'held two', 'quick one');
my $token = SV::Test::jwt(secret => $jwt_secret, user => $uid);
register_cleanup(sub { write_file($release, 'go') });    # a held job ends, whatever happened
sub used {
    scalar $su->selectrow_array('SELECT current_ai_count FROM subscription_settings WHERE user_id = ?', undef, $uid);
}
sub rows {
    my ($job) = @_;
    return $su->selectall_arrayref('SELECT job_status FROM audit_log WHERE job_id = ?', { Slice => {} }, $job);
}
# POST /functions/v1/enhance-ai through the socket: (status, job_id).
sub accept_job {
    my ($title) = @_;
    my $c = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $sock) or return (0, undef);
    my $text = fcgi_ask($c, '/functions/v1/enhance-ai', method => 'POST', timeout => 20,
        body => JSON::PP->new->encode({ contentId => $content{$title} }),
        headers => { Authorization => "Bearer $token" }) // '';
    my ($status) = $text =~ /^Status: (\d+)/m;
    my ($body) = $text =~ /\r?\n\r?\n(.*)\z/s;
    my $doc = eval { JSON::PP->new->decode($body // '') } // {};
    diag $text unless ($status // 0) == 202;
    return ($status // 0, $doc->{job_id});
}
sub all_pids { grep { /^\d+$/ } map { s{^/proc/}{}r } glob('/proc/[0-9]*') }
# A job's processes: its supervisor and the child doing the work (their
# titles name its descriptor).
sub job_pids {
    my ($job) = @_;
    return grep { (slurp_file("/proc/$_/cmdline") // '') =~ /\Q$job\E\.job/ && pid_alive($_) } all_pids();
}
# The processes in a unit's mount namespace: whatever its ExecStart
# started, the test's stand-in for the unit's cgroup (sandbox only).
sub mntns { readlink("/proc/$_[0]/ns/mnt") // '' }
sub in_unit { my ($ns) = @_; return grep { mntns($_) eq $ns && pid_alive($_) } all_pids() }
sub titles { join "\n", map { "$_: " . ((slurp_file("/proc/$_/cmdline") // '') =~ s/\0+/ /gr) } @_ }
sub log_since { my ($from) = @_; my $l = slurp_file("$host_log/streamvibe.log") // ''; substr($l, $from > length $l ? 0 : $from) }
# Stops the unit as systemd does: KillSignal to the main process alone.
sub stop_unit {
    my ($what) = @_;
    my $sig = (unit1('KillSignal') // 'SIGTERM') =~ s/^SIG//r;
    kill $sig, $pid;
    ok(notified(qr/^STOPPING=1$/m, 10), "$what: SIG$sig, STOPPING=1");
    my $exit;
    ok(wait_until(sub { my $r = waitpid($pid, POSIX::WNOHANG()); $exit = $? if $r == $pid; $r == $pid },
        unit1('TimeoutStopSec')), "$what: the master exits within TimeoutStopSec");
    is($exit, 0, "$what: with status 0 (a clean stop, not a failure for Restart=on-failure)");
}
sub start_unit {
    my ($what) = @_;
    my @p = exec_start_pre();
    is(scalar(grep { $_->[1] != 0 } @p), 0, "$what: ExecStartPre") or diag explain \@p;
    $pid = exec_start();
    ok(notified(qr/^READY=1$/m, 30), "$what: READY=1") or diag slurp_file($journal[-1]);
    like(healthz(), qr/^Status: 200/, "$what: it serves");
}

my $used0 = used();
my $from = -s "$host_log/streamvibe.log";
my ($code1, $j1) = accept_job('held one');
is($code1, 202, 'a job is accepted (enhance-ai)');
my ($code2, $j2) = accept_job('held two');
is($code2, 202, 'and a second');
is(used(), $used0 + 2, 'each spent its quota');
ok(wait_until(sub { $ai->count('POST /v1/chat/completions') >= 2 }, 30),
    'both run: they asked the model, which holds its answer')
    or diag log_since($from);
my (@j1, @j2);
ok(wait_until(sub { (@j1 = job_pids($j1)) == 2 && (@j2 = job_pids($j2)) == 2 }, 10),
    'each is a supervisor and its child');
my $ns1 = mntns($pid);
my @pool1 = grep { !{ map { $_ => 1 } @j1, @j2 }->{$_} } $sandbox ? in_unit($ns1) : SV::Test::proc_children($pid);
ok(scalar(grep { (slurp_file("/proc/$_/cmdline") // '') =~ /--launcher/ } @pool1),
    'the pool runs a job launcher') or diag titles(@pool1);

# --- stop (as systemctl stop or the first half of a restart) -----------------------
stop_unit('stop');
ok(!grep({ pid_alive($_) } @pool1), "nothing of the pool outlives the master (workers, launcher, daemons)")
    or diag titles(grep { pid_alive($_) } @pool1);
SKIP: {
    skip 'no sandbox: no namespace to look into', 1 unless $sandbox;
    my %job = map { $_ => 1 } @j1, @j2;
    my @other = grep { !$job{$_} } in_unit($ns1);
    is(titles(@other), '', 'what KillMode=process leaves in the unit is its jobs, nothing else');
}
ok(!grep({ !pid_alive($_) } @j1, @j2), 'the jobs run on');
ok(!-e $sock && !-e "$host_run/streamvibe.pid", 'socket and pid file removed');
is(scalar @{ rows($j1) } + @{ rows($j2) }, 0, 'no audit row yet');

# A job that dies while the unit is down (host trouble): the reconciler's case.
kill 'KILL', @j2;
ok(wait_until(sub { !grep { pid_alive($_) } @j2 }, 10), 'the second job is killed while the unit is down');

# --- start: the running job is left alone, the dead one is reconciled -----------------
$from = -s "$host_log/streamvibe.log";
start_unit('start');
ok(wait_until(sub { log_since($from) =~ /event=job_reconcile .*finished=1/ }, 30),
    "the start's reconciliation has gone through the spool") or diag log_since($from);
is_deeply(rows($j2), [{ job_status => 'interrupted' }], 'the dead job: one row, interrupted');
is_deeply(rows($j1), [], 'the running one: none');
ok(!grep({ !pid_alive($_) } @j1), 'and it still runs');
is(used(), $used0 + 1, "the dead job's quota is refunded");

# --- SIGKILL to the master alone (TimeoutStopSec ran out; or a crash) ---------------
my $ns2 = mntns($pid);
my @pool2 = $sandbox ? in_unit($ns2) : SV::Test::proc_children($pid);
kill 'KILL', $pid;
waitpid($pid, 0);
ok(wait_until(sub { !grep { pid_alive($_) } @pool2 }, 15),
    'SIGKILL to the master: its workers and launcher leave by themselves')
    or diag titles(grep { pid_alive($_) } @pool2);
ok(!grep({ !pid_alive($_) } @j1), 'the job runs on');

# --- start again; the job ends ------------------------------------------------------
start_unit('start after SIGKILL');
write_file($release, 'go');
ok(wait_until(sub { @{ rows($j1) } }, 60), 'the job ends') or diag log_since($from);
is_deeply(rows($j1), [{ job_status => 'completed' }], 'one audit row, completed');
is(scalar $su->selectrow_array('SELECT count(*) FROM ai_content_suggestions WHERE job_id = ?', undef, $j1), 1,
    'its suggestion is stored, once');
is(used(), $used0 + 1, 'the quota: the completed job spent once, the interrupted one refunded');
ok(wait_until(sub { !grep { pid_alive($_) } @j1 }, 10), 'its processes are gone');

# --- a job a worker starts itself (no launcher) -------------------------------------
# The configuration file is root's (0640) and the workers run as `user`:
# a job a worker execs gets the worker's configuration through a pipe
# (--config-fd), since it could not read the file.
SKIP: {
    skip 'not root: the workers run as ourselves and can read the file', 4 unless defined $user;
    my $conf_file = "$T/etc/streamvibe/streamvibe.conf";
    write_file($conf_file, (slurp_file($conf_file) // '') . "job_launcher = off\n", 0640);
    my @reload_now = exec_line('ExecReload');
    s/\$MAINPID/$pid/ for @reload_now;
    my ($rrc, $rout) = run_command(\@reload_now, env => \%sd_env, merge => 1);
    is($rrc, 0, 'job_launcher = off, reloaded') or diag $rout;
    ok(wait_until(sub { !grep { (slurp_file("/proc/$_/cmdline") // '') =~ /--launcher/ } SV::Test::proc_children($pid) }, 15),
        'no launcher');
    my ($code3, $j3) = accept_job('quick one');
    is($code3, 202, "a job is accepted and exec'd by a worker");
    ok(wait_until(sub { @{ rows($j3) } && rows($j3)->[0]{job_status} eq 'completed' }, 30),
        'it reads its configuration from the worker and completes') or diag explain rows($j3), log_since($from);
}

# --- stop with no job running ----------------------------------------------------------
my $ns3 = mntns($pid);
my @last = $sandbox ? in_unit($ns3) : SV::Test::proc_children($pid);
stop_unit('last stop');
ok(!grep({ pid_alive($_) } @last), 'nothing outlives the master')
    or diag titles(grep { pid_alive($_) } @last);
SKIP: {
    skip 'no sandbox: no namespace to look into', 1 unless $sandbox;
    is(titles(in_unit($ns3)), '', 'the unit is empty');
}
ok(!-e $sock && !-e "$host_run/streamvibe.pid", 'socket and pid file removed');
for my $j (@journal) {
    unlike(slurp_file($j) // '', qr/\S/, "nothing on stdout/stderr (the journal, $j): everything went to log_file")
        or diag slurp_file($j);
}

done_testing;
