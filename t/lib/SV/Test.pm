package SV::Test;

# Shared helpers for the StreamVibe test suite: where the source and build
# trees are, throwaway directories, free ports, polling, running commands,
# and a process registry so that every process a test starts is stopped by
# pid at exit -- also when the test dies or is interrupted.
#
# Modelled on PostgreSQL::Test::Utils and nginx-tests' Test::Nginx: a few
# verbs, everything under a temp dir, nothing left behind.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(remove_tree);
use File::Spec;
use File::Temp ();
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);

use Exporter 'import';
our @EXPORT = qw(sv_builddir sv_srcdir free_tcp_port sv_tempdir wait_until);
our @EXPORT_OK = qw(fcgi_request_bytes fcgi_read_answer fcgi_ask peer_closed run_command spawn_process
    stop_process pid_alive slurp_file write_file proc_children proc_cpu_ticks proc_state proc_ppid
    job_supervisors job_pids find_program
    register_cleanup as_unprivileged unprivileged_user jwt run_parallel vault_key throttled_ok);

# The repository root, found from this file: t/lib/SV/Test.pm.
my $repo_root = abs_path(File::Spec->catdir(dirname(__FILE__), '..', '..', '..'));

sub sv_srcdir {
    return $ENV{SV_SRCDIR} if defined $ENV{SV_SRCDIR} && length $ENV{SV_SRCDIR};
    return $repo_root;
}

sub sv_builddir {
    return $ENV{SV_BUILDDIR} if defined $ENV{SV_BUILDDIR} && length $ENV{SV_BUILDDIR};
    return $repo_root;
}

# A TCP port on 127.0.0.1 that was free a moment ago: bind port 0, read the
# port the kernel picked, close.
sub free_tcp_port {
    my $s = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp',
        Listen => 1, ReuseAddr => 1)
        or die "free_tcp_port: cannot bind 127.0.0.1:0: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

# --- cleanup registry ---------------------------------------------------
#
# Each entry is [owner_pid, code]. The END block (and the INT/TERM
# handlers, which exit and so reach the END block) run them in reverse
# order, but only in the process that registered them: a test that forks
# client processes must not have its children stop the servers.

my @cleanups;
my @tempdirs;

sub register_cleanup {
    my ($code) = @_;
    push @cleanups, [$$, $code];
    return scalar @cleanups;
}

sub _test_failed {
    return 0 unless $INC{'Test/Builder.pm'};
    my $tb = Test::Builder->new;
    return !$tb->is_passing || ($tb->has_plan // '') =~ /^\d+$/ && $tb->current_test != $tb->has_plan;
}

sub _run_cleanups {
    my ($status) = @_;
    $status //= 0;
    while (my $c = pop @cleanups) {
        next unless $c->[0] == $$;
        local $@;
        eval { $c->[1]->(); 1 } or warn "cleanup failed: $@";
    }
    # SV_KEEP_TMP=failed keeps them only when the test failed (its logs
    # under load), any other true value always.
    my $keep = $ENV{SV_KEEP_TMP};
    $keep = 0 if ($keep // '') eq 'failed' && $status == 0 && !_test_failed();
    for my $d (reverse @tempdirs) {
        next unless $d->[0] == $$;
        next unless -d $d->[1];
        if ($keep) {
            print STDERR "# SV_KEEP_TMP: kept $d->[1]\n";
            next;
        }
        remove_tree($d->[1], { safe => 0, error => \my $err });
    }
    @tempdirs = grep { $_->[0] != $$ } @tempdirs;
}

END {
    my $status = $?;
    _run_cleanups($status);
    $? = $status;
}

for my $sig (qw(INT TERM HUP QUIT ALRM PIPE USR1 USR2)) {
    $SIG{$sig} = sub { print STDERR "# caught SIG$sig, cleaning up\n"; exit 1 }
        if !defined $SIG{$sig} || $SIG{$sig} eq '' || $SIG{$sig} eq 'DEFAULT';
}

# A fresh directory, mode 0755 so an unprivileged server user (postgres,
# nobody) can traverse it; removed at exit unless SV_KEEP_TMP=1 (or
# SV_KEEP_TMP=failed and the test failed). Lives
# under $TMPDIR (default /tmp) and its name is short, because unix socket
# paths are limited to 107 bytes.
sub sv_tempdir {
    my (%opt) = @_;
    my $dir = File::Temp::tempdir(($opt{prefix} // 'sv') . '-XXXXXX',
        TMPDIR => 1, CLEANUP => 0);
    chmod 0755, $dir or die "chmod $dir: $!";
    push @tempdirs, [$$, $dir];
    return $dir;
}

# Poll $code every 50 ms until it returns true or $timeout seconds (default
# 10) pass. Returns the code's last value (false on timeout).
sub wait_until {
    my ($code, $timeout) = @_;
    $timeout //= 10;
    my $deadline = time + $timeout;
    while (1) {
        my $v = $code->();
        return $v if $v;
        return $v if time >= $deadline;
        sleep 0.05;
    }
}

# --- files ----------------------------------------------------------------

# The bytes of one FastCGI request (as nginx sends it: BEGIN_REQUEST with
# keep_conn, PARAMS, end of PARAMS, STDIN, end of STDIN) for $uri;
# options: method (GET), body (sent as JSON), remote_addr (127.0.0.1),
# headers ({ Authorization => ... }, sent as HTTP_AUTHORIZATION ...).
sub fcgi_request_bytes {
    my ($uri, %opt) = @_;
    my $record = sub { my ($type, $content) = @_; pack('CCnnCC', 1, $type, 1, length $content, 0, 0) . $content };
    # A length over 127 takes four bytes, the high bit set.
    my $len = sub { $_[0] > 127 ? pack('N', $_[0] | 0x80000000) : pack('C', $_[0]) };
    my $pair = sub { my ($n, $v) = @_; $len->(length $n) . $len->(length $v) . $n . $v };
    my ($query) = $uri =~ /\?(.*)\z/s;
    my $body = $opt{body} // '';
    my %h = %{ $opt{headers} // {} };
    my $params = join '', map { $pair->(@$_) } (
        [REQUEST_METHOD => $opt{method} // 'GET'], [REQUEST_URI => $uri], [QUERY_STRING => $query // ''],
        [REMOTE_ADDR => $opt{remote_addr} // '127.0.0.1'], [SERVER_PROTOCOL => 'HTTP/1.1'],
        (map { ['HTTP_' . uc(s/-/_/gr) => $h{$_}] } sort keys %h),
        (length $body ? ([CONTENT_TYPE => 'application/json'], [CONTENT_LENGTH => length $body]) : ()));
    return $record->(1, pack('nCx5', 1, 1)) . $record->(4, $params) . $record->(4, '')
        . (length $body ? $record->(5, $body) : '') . $record->(5, '');
}

# Reads FastCGI records from $sock until FCGI_END_REQUEST (or $timeout
# seconds without data). Returns (the FCGI_STDOUT text, whether the
# request ended).
sub fcgi_read_answer {
    my ($sock, $timeout) = @_;
    require IO::Select;
    my $sel = IO::Select->new($sock);
    my ($raw, $stdout, $ended, $pos) = ('', '', 0, 0);
    while (!$ended && $sel->can_read($timeout // 10)) {
        my $n = sysread($sock, my $buf, 65536);
        last unless $n;
        $raw .= $buf;
        while ($pos + 8 <= length $raw) {
            my (undef, $type, undef, $len, $pad) = unpack('CCnnC', substr($raw, $pos, 8));
            last if $pos + 8 + $len + $pad > length $raw;
            $stdout .= substr($raw, $pos + 8, $len) if $type == 6;
            $ended = 1 if $type == 3;
            $pos += 8 + $len + $pad;
        }
    }
    return ($stdout, $ended);
}

# Sends one FastCGI request for $uri on $sock (options as
# fcgi_request_bytes, plus timeout, default 10 s) and reads its answer. In
# list context (text, whether the request ended); in scalar context the
# text, or undef when no complete answer came in time.
sub fcgi_ask {
    my ($sock, $uri, %opt) = @_;
    my $timeout = delete $opt{timeout};
    $sock->syswrite(fcgi_request_bytes($uri, %opt)) or return wantarray ? ('', 0) : undef;
    my ($text, $ended) = fcgi_read_answer($sock, $timeout // 10);
    return wantarray ? ($text, $ended) : $ended ? $text : undef;
}

# True when the other end has closed $sock: readable at once, and the read
# finds the end of the stream. (A test's own socket, so a byte read here
# is one the test did not want anyway.)
sub peer_closed {
    my ($sock) = @_;
    require IO::Select;
    return IO::Select->new($sock)->can_read(0) && !sysread($sock, my $b, 1);
}

# --- tokens -----------------------------------------------------------------

# An HS256 JWT, as the server and streamvibe-admin keys sign them, or a
# forged one. Claims: claims => {...} (or a string, sent as it is), else
# user => $uid (an authenticated user's: sub, role, aud; email => ... and
# session_id => ... add those) or role => 'anon' / 'service_role' (an API key's: iss streamvibe).
# Both shortcuts expire in an hour (exp => to change). secret => the key
# (required); header => text or {...} instead of {"alg":...,"typ":"JWT"};
# alg => 'HS512' signs with HMAC-SHA512; sig => the signature segment as
# given.
sub jwt {
    my (%o) = @_;
    require JSON::PP;
    require MIME::Base64;
    require Digest::SHA;
    my $json = JSON::PP->new->canonical;
    my $now = int(time);
    my $claims = $o{claims};
    if (!defined $claims) {
        $claims = defined $o{user}
            ? { sub => $o{user}, role => 'authenticated', aud => 'authenticated',
                map { defined $o{$_} ? ($_ => $o{$_}) : () } qw(email session_id) }
            : { role => $o{role} // 'anon', iss => 'streamvibe' };
        $claims->{iat} = $now;
        $claims->{exp} = $o{exp} // $now + 3600;
    }
    my $alg = $o{alg} // 'HS256';
    my $header = $o{header} // { alg => $alg, typ => 'JWT' };
    my $enc = sub { MIME::Base64::encode_base64url(ref $_[0] ? $json->encode($_[0]) : $_[0]) };
    my $signing = $enc->($header) . '.' . $enc->($claims);
    return "$signing.$o{sig}" if exists $o{sig};
    die "jwt: no secret\n" unless defined $o{secret};
    my $mac = $alg eq 'HS512' ? \&Digest::SHA::hmac_sha512 : \&Digest::SHA::hmac_sha256;
    return "$signing." . MIME::Base64::encode_base64url($mac->($signing, $o{secret}));
}

# A vault key written by `streamvibe-admin keygen` to $file (vault.key in
# a new temporary folder unless given). Returns ($file, key_id); key_id is
# undef when keygen failed, and then its output is the third value.
sub vault_key {
    my ($file) = @_;
    $file //= sv_tempdir(prefix => 'svkeys') . '/vault.key';
    my ($rc, $out, $err) = run_command([sv_builddir() . '/streamvibe-admin', 'keygen', $file]);
    my ($id) = $rc == 0 && $out =~ /key_id=(\d+)/ ? ($1) : (undef);
    return ($file, $id, defined $id ? () : "$out$err");
}

# Seven tests on a response of /auth/v1 that refuses a caller over its
# limit, as GoTrue does: status 429 (the test named $name), the body
# {code: 429, error_code: over_request_rate_limit, msg}, Retry-After in
# whole seconds within the minute's window, and no session.
sub throttled_ok {
    my ($srv, $res, $name) = @_;
    require Test::More;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::is($res->code, 429, $name) or Test::More::diag($res->as_string);
    my $doc = $srv->json($res) // {};
    Test::More::is($doc->{code}, 429, 'code 429');
    Test::More::is($doc->{error_code}, 'over_request_rate_limit', 'error_code over_request_rate_limit');
    Test::More::ok(length($doc->{msg} // ''), 'msg');
    my $ra = $res->header('Retry-After') // '';
    Test::More::like($ra, qr/^\d+$/, 'Retry-After in seconds');
    Test::More::ok($ra >= 1 && $ra <= 60, "Retry-After within the window ($ra)");
    Test::More::unlike($res->content, qr/access_token/, 'no session');
}

# Runs $code->($i) for $i = 1 .. $n in $n forked processes at once and
# returns what each returned (a string; '' when it died), in order. The
# children share nothing with the test but what they inherit: a user
# agent of their own is the caller's business.
sub run_parallel {
    my ($n, $code) = @_;
    my @kids;
    for my $i (1 .. $n) {
        pipe(my $r, my $w) or die "pipe: $!";
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            close $r;
            my $v = eval { $code->($i) };
            print {$w} $v // '';
            close $w;
            POSIX::_exit(0);
        }
        close $w;
        push @kids, [$pid, $r];
    }
    my @out;
    for my $k (@kids) {
        my ($pid, $r) = @$k;
        push @out, do { local $/; <$r> } // '';
        close $r;
        waitpid $pid, 0;
    }
    return @out;
}

sub slurp_file {
    my ($path) = @_;
    open my $fh, '<', $path or return undef;
    local $/;
    my $s = <$fh>;
    close $fh;
    return $s // '';
}

sub write_file {
    my ($path, $content, $mode) = @_;
    open my $fh, '>', $path or die "write $path: $!";
    print {$fh} $content;
    close $fh or die "close $path: $!";
    chmod $mode, $path if defined $mode;
    return $path;
}

# --- privileges -------------------------------------------------------------

# PostgreSQL refuses to run as root; when we are root, servers that must not
# run as root run as this user instead.
sub unprivileged_user {
    return undef if $> != 0;
    return 'postgres' if defined getpwnam('postgres');
    return 'nobody';
}

# In a child process that is about to exec: become $user (uid, gid and
# supplementary groups). Dies on failure.
sub as_unprivileged {
    my ($user) = @_;
    my ($uid, $gid) = (getpwnam($user))[2, 3];
    die "no such user $user" unless defined $uid;
    $) = "$gid $gid";
    $( = $gid;
    $< = $> = $uid;
    die "could not become $user" if $> != $uid || $< != $uid;
    $ENV{HOME} = (getpwnam($user))[7] // '/';
    $ENV{USER} = $ENV{LOGNAME} = $user;
    return;
}

sub find_program {
    my ($name, @extra_dirs) = @_;
    return $name if $name =~ m{/} && -x $name;
    for my $d (@extra_dirs, split(/:/, $ENV{PATH} // ''), '/usr/sbin', '/sbin') {
        next unless length $d;
        my $p = "$d/$name";
        return $p if -f $p && -x _;
    }
    return undef;
}

# --- processes --------------------------------------------------------------

sub pid_alive {
    my ($pid) = @_;
    return 0 unless $pid;
    # A zombie child of ours still answers kill 0; reap it first.
    my $r = waitpid($pid, WNOHANG);
    return 0 if $r == $pid;
    return 0 unless kill(0, $pid);
    # Zombie (not our child): treat as dead.
    my $stat = slurp_file("/proc/$pid/stat");
    return 0 if defined $stat && $stat =~ /\)\s+Z\s/;
    return 1;
}

# prctl(PR_SET_PDEATHSIG, sig) for the calling process, Linux only and
# best effort. $parent: exit at once if it is already gone.
my %prctl_nr = (x86_64 => 157, aarch64 => 167, i386 => 172, i686 => 172);
sub set_parent_death_signal {
    my ($signame, $parent) = @_;
    return if !$signame || $^O ne 'linux';
    require Config;
    my ($arch) = ($Config::Config{archname} // '') =~ /^([^-]+)/;
    my $nr = $prctl_nr{ $arch // '' } or return;
    my $signo = POSIX->can("SIG$signame") ? POSIX->can("SIG$signame")->() : return;
    syscall($nr, 1, $signo, 0, 0, 0);    # PR_SET_PDEATHSIG = 1
    POSIX::_exit(1) if defined $parent && getppid() != $parent;
    return;
}

# Start @$cmd in the background. Options: stdout/stderr => file (appended),
# stdin => file (default /dev/null), env => {K => V or undef to delete},
# user => run as this OS user, dir => chdir, umask, parent_death => signal
# name the program gets if this process dies without cleaning up (default
# TERM; '' for none). Returns the pid.
sub spawn_process {
    my ($cmd, %opt) = @_;
    my $parent = $$;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        eval {
            # Back to default dispositions for the program we exec.
            $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP PIPE CHLD);
            POSIX::setpgid(0, 0) if $opt{new_group};
            if (my $e = $opt{env}) {
                for my $k (keys %$e) {
                    if (defined $e->{$k}) { $ENV{$k} = $e->{$k} } else { delete $ENV{$k} }
                }
            }
            open STDIN, '<', $opt{stdin} // '/dev/null' or die "stdin: $!";
            if (defined $opt{stdout}) {
                open STDOUT, '>>', $opt{stdout} or die "stdout $opt{stdout}: $!";
            }
            if (defined $opt{stderr}) {
                if (defined $opt{stdout} && $opt{stderr} eq $opt{stdout}) {
                    open STDERR, '>&', \*STDOUT or die "stderr: $!";
                } else {
                    open STDERR, '>>', $opt{stderr} or die "stderr $opt{stderr}: $!";
                }
            }
            umask $opt{umask} if defined $opt{umask};
            chdir $opt{dir} or die "chdir $opt{dir}: $!" if defined $opt{dir};
            as_unprivileged($opt{user}) if defined $opt{user};
            # After the uid change, which clears it: if the test process
            # dies without running its END block (SIGKILL), the kernel
            # sends this program $opt{parent_death} (default TERM).
            set_parent_death_signal($opt{parent_death} // 'TERM', $parent);
            exec { $cmd->[0] } @$cmd;
            die "exec $cmd->[0]: $!";
        };
        print STDERR "spawn_process: $@";
        POSIX::_exit(127);
    }
    return $pid;
}

# Stop $pid: send each signal of @$signals in turn (default TERM, then
# KILL), waiting up to $timeout seconds after each. Reaps it when it is our
# child. Returns true when the process is gone.
#
# With children => 1 the process's children (as seen just before the first
# signal) are stopped too if they outlive it: for programs such as
# fcgiwrap -c N whose children do not exit with their parent.
sub stop_process {
    my ($pid, %opt) = @_;
    return 1 unless $pid;
    my @signals = @{ $opt{signals} // ['TERM', 'KILL'] };
    my $timeout = $opt{timeout} // 10;
    my @kids = $opt{children} && pid_alive($pid) ? proc_children($pid) : ();
    my $gone = 0;
    for my $sig (@signals) {
        if (!pid_alive($pid)) { $gone = 1; last }
        kill $sig, $pid;
        my $t = $sig eq 'KILL' ? 5 : $timeout;
        if (wait_until(sub { !pid_alive($pid) }, $t)) { $gone = 1; last }
    }
    $gone ||= !pid_alive($pid);
    for my $k (@kids) {
        next unless pid_alive($k);
        kill 'TERM', $k;
        wait_until(sub { !pid_alive($k) }, 3) or kill 'KILL', $k;
    }
    return $gone;
}

# Pids whose parent is $ppid, from /proc/*/stat (the comm field may contain
# spaces and parentheses, so parse after the last ')').
sub proc_children {
    my ($ppid) = @_;
    my @kids;
    opendir my $dh, '/proc' or return ();
    for my $p (grep { /^\d+$/ } readdir $dh) {
        my $stat = slurp_file("/proc/$p/stat") // next;
        next unless $stat =~ /\)\s+(\S)\s+(\d+)/;
        next if $1 eq 'Z' || $1 eq 'X';
        push @kids, $p + 0 if $2 == $ppid;
    }
    closedir $dh;
    my @sorted = sort { $a <=> $b } @kids;
    return @sorted;    # in scalar context: how many
}

# $pid's state letter (R, S, T for stopped, ...) and its parent's pid,
# from /proc/<pid>/stat ('' and undef when it is gone).
sub proc_state { ((slurp_file("/proc/$_[0]/stat") // '') =~ /\)\s+(\S)/)[0] // '' }
sub proc_ppid  { ((slurp_file("/proc/$_[0]/stat") // '') =~ /\)\s+\S+\s+(\d+)/)[0] }

# The processes of streamvibe-job's job $job_id: those whose command line
# names its descriptor (<job_id>.job), as { pid => parent's pid }.
sub _job_processes {
    my ($job) = @_;
    my %ppid;
    opendir my $dh, '/proc' or return {};
    for my $p (grep { /^\d+$/ } readdir $dh) {
        my $cmd = slurp_file("/proc/$p/cmdline") // next;
        next unless $cmd =~ /\Q$job\E\.job/;
        $ppid{$p} = proc_ppid($p) // next;
    }
    closedir $dh;
    return \%ppid;
}

# The job's supervisors (normally one): its processes whose parent is not
# one of them.
sub job_supervisors {
    my ($job) = @_;
    my $ppid = _job_processes($job);
    return sort { $a <=> $b } grep { !exists $ppid->{ $ppid->{$_} } } keys %$ppid;
}

# (supervisor, child) of a running job, once both are there (waiting up
# to $timeout seconds, default 10); undef for one that is not.
sub job_pids {
    my ($job, $timeout) = @_;
    my ($sup, $child);
    wait_until(sub {
        my $ppid = _job_processes($job);
        ($sup) = grep { !exists $ppid->{ $ppid->{$_} } } keys %$ppid;
        ($child) = grep { $ppid->{$_} == ($sup // -1) } keys %$ppid;
        return $sup && $child;
    }, $timeout // 10);
    return ($sup, $child);
}

# utime + stime of $pid in clock ticks (0 when gone). With $waited true,
# also cutime + cstime: the CPU of children it has already reaped (a
# postmaster's exited backends, a pool master's recycled workers).
sub proc_cpu_ticks {
    my ($pid, $waited) = @_;
    my $stat = slurp_file("/proc/$pid/stat") // return 0;
    return 0 unless $stat =~ /\)\s+(.*)$/s;
    my @f = split ' ', $1;
    # After ')': state(3) ppid(4) ... utime(14) stime(15) cutime(16)
    # cstime(17) => index 11 .. 14.
    my $t = ($f[11] // 0) + ($f[12] // 0);
    $t += ($f[13] // 0) + ($f[14] // 0) if $waited;
    return $t;
}

# Run a command to completion. Options as spawn_process plus stdin_data
# (a string fed on stdin) and timeout (seconds, default 120; the command is
# killed past it). Returns (exit_code, stdout, stderr); exit_code is 128+sig
# when killed by a signal, -1 on timeout.
sub run_command {
    my ($cmd, %opt) = @_;
    my $dir = $opt{tmpdir} // File::Temp::tempdir('svrun-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    chmod 0755, $dir;
    my $n = int(rand(1e9));
    my ($out, $err, $in) = map { "$dir/run-$n.$_" } qw(out err in);
    write_file($_, '', 0666) for $out, $err;
    my %sp = (%opt, stdout => $out, stderr => ($opt{merge} ? $out : $err));
    if (defined $opt{stdin_data}) {
        write_file($in, $opt{stdin_data}, 0644);
        $sp{stdin} = $in;
    }
    delete @sp{qw(stdin_data timeout tmpdir merge)};
    my $pid = spawn_process($cmd, %sp);
    my $timeout = $opt{timeout} // 120;
    my $status;
    my $deadline = time + $timeout;
    while (1) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid) { $status = $?; last }
        if (time > $deadline) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            $status = undef;
            last;
        }
        sleep 0.02;
    }
    my $o = slurp_file($out) // '';
    my $e = slurp_file($err) // '';
    unlink $out, $err, $in;
    # File::Temp's CLEANUP runs only at a normal exit; a forked child that
    # leaves with POSIX::_exit, or a test killed by its timeout, would
    # leave one empty directory per command behind in /tmp.
    rmdir $dir unless defined $opt{tmpdir};
    my $code = !defined $status ? -1
        : ($status & 127) ? 128 + ($status & 127)
        : $status >> 8;
    return ($code, $o, $e);
}

1;
