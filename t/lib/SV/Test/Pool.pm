package SV::Test::Pool;

# The streamvibe-fcgi prefork pool for one test:
#
#   my $pool = SV::Test::Pool->new(pg => $pg, workers => 2,
#                                  conf => { request_timeout => 3 });
#   $pool->start;            # waits for the socket and the pid file
#   $pool->worker_pids;      # children of the master, from /proc
#   my $from = $pool->log_offset;
#   $pool->reload;           # SIGHUP
#   $pool->wait_log(qr/event=reload/, 10, from => $from);   # only lines since $from
#   $pool->log;              # the log file so far
#   my ($text, $ended) = $pool->fcgi('/healthz');   # one FastCGI request, no nginx
#   my $sock = $pool->connect;                       # a raw connection (SV::Test::fcgi_ask)
#   $pool->stop;             # SIGTERM, bounded wait, then SIGKILL (also at exit)
#
# The config file, socket, pid file and log live in the pool's temp dir.

use strict;
use warnings;

use Carp qw(croak);
use IO::Socket::UNIX;
use Time::HiRes ();
use SV::Test qw(sv_builddir sv_srcdir sv_tempdir wait_until spawn_process fcgi_ask
    stop_process pid_alive slurp_file write_file proc_children register_cleanup);

sub binary { sv_builddir() . '/streamvibe-fcgi' }

sub new {
    my ($class, %opt) = @_;
    my $dir = sv_tempdir(prefix => 'svpool');
    my $self = bless {
        pg      => $opt{pg},
        dir     => $dir,
        socket  => "$dir/sv.sock",
        pidfile => "$dir/sv.pid",
        logfile => "$dir/sv.log",
        stderr  => "$dir/sv.stderr",
        config  => "$dir/streamvibe.conf",
        workers => $opt{workers} // 2,
        conf    => { %{ $opt{conf} // {} } },
        env     => { %{ $opt{env} // {} } },
        args    => $opt{args} // [],
        pid     => undef,
    }, $class;
    $self->write_config;
    register_cleanup(sub { $self->stop if $self->{pid} });
    return $self;
}

# (Re)write the config file from the defaults and conf overrides; call it
# after changing $pool->conf(...) and before reload.
sub write_config {
    my ($self) = @_;
    my %c = (
        listen      => $self->{socket},
        listen_mode => '0666',
        pid_file    => $self->{pidfile},
        log_file    => $self->{logfile},
        workers     => $self->{workers},
        # Its own job spool (and job launcher socket), not the shared
        # default every other pool on the machine would use.
        job_spool_dir => "$self->{dir}/spool",
        ($self->{pg} ? (database_url => $self->{pg}->conninfo(user => 'authenticator')) : ()),
        %{ $self->{conf} },
    );
    my @first = grep { exists $c{$_} } qw(database_url listen listen_mode pid_file log_file workers);
    my %seen = map { $_ => 1 } @first;
    my $text = "# written by SV::Test::Pool\n";
    for my $k (@first, sort grep { !$seen{$_} } keys %c) {
        next unless defined $c{$k};
        $text .= "$k = $c{$k}\n";
    }
    write_file($self->{config}, $text, 0644);
    return $self->{config};
}

# Get or set one config override: $pool->conf('workers') / ->conf(workers => 3).
sub conf {
    my ($self, $k, @v) = @_;
    if (@v) {
        $self->{conf}{$k} = $v[0];
        $self->{workers} = $v[0] if $k eq 'workers';
        $self->write_config;
    }
    return $self->{conf}{$k} // ($k eq 'workers' ? $self->{workers} : undef);
}

my %field = (dir => 'dir', socket => 'socket', pid_file => 'pidfile', config_file => 'config',
    log_file => 'logfile', workers => 'workers', pid => 'pid');
for my $name (keys %field) {
    no strict 'refs';
    *$name = sub { $_[0]{ $field{$name} } };
}

# Where the log ends now: wait_log and log take it as from => to look only
# at what is written after it, so that a line an earlier action wrote
# cannot answer for a later one.
sub log_offset { -s $_[0]{logfile} // 0 }

# The log once it has settled: a worker writes its access lines after the
# answer has gone out (in batches while it is busy, flushed as soon as it
# is idle), so a test that has just read a response waits until the file
# has stopped growing for 100 ms (at most 2 s) before looking. With
# from => an offset, only what was written after it.
sub log {
    my ($self, %opt) = @_;
    my ($size, $stable, $deadline) = (-1, 0, Time::HiRes::time() + 2);
    while (Time::HiRes::time() < $deadline) {
        my $now = -s $self->{logfile} // 0;
        $stable = $now == $size ? $stable + 1 : 0;
        last if $stable >= 2;
        $size = $now;
        Time::HiRes::sleep(0.05);
    }
    return _from(slurp_file($self->{logfile}) // '', $opt{from});
}

sub _from {
    my ($text, $from) = @_;
    return $text unless $from;
    return length($text) > $from ? substr($text, $from) : '';
}

sub stderr      { slurp_file($_[0]{stderr}) // '' }

# Everything the pool wrote, for diagnostics.
sub diag_output {
    my ($self) = @_;
    return "--- $self->{logfile}\n" . $self->log . "--- $self->{stderr}\n" . $self->stderr;
}

sub start {
    my ($self, %opt) = @_;
    croak "pool already running (pid $self->{pid})" if $self->{pid} && pid_alive($self->{pid});
    my $bin = binary();
    croak "$bin not built" unless -x $bin;
    unlink $self->{pidfile};
    write_file($self->{stderr}, '', 0644) unless -e $self->{stderr};
    my $pid = spawn_process([$bin, '--pool', '--config', $self->{config}, @{ $self->{args} }],
        stdout => $self->{stderr}, stderr => $self->{stderr}, dir => $self->{dir},
        env => $self->{env});
    $self->{pid} = $pid;
    my $ok = wait_until(sub {
        return -1 unless pid_alive($pid);
        return 0 unless -S $self->{socket} && -s $self->{pidfile};
        my $want = $opt{wait_workers} // $self->{workers};
        return 1 unless $want;
        return scalar($self->worker_pids) >= $want;
    }, $opt{timeout} // 20);
    if (!$ok || $ok == -1) {
        my $out = $self->diag_output;
        stop_process($pid, signals => ['TERM', 'KILL'], timeout => 5);
        $self->_kill_orphans;
        $self->{pid} = undef;
        croak "streamvibe-fcgi --pool did not start:\n$out";
    }
    my $filepid = slurp_file($self->{pidfile});
    warn "# pid file says $filepid, forked $pid\n"
        if defined $filepid && $filepid =~ /^(\d+)/ && $1 != $pid;
    return $self;
}

# SIGHUP, or signal => 'USR2' (php-fpm's reload signal).
sub reload {
    my ($self, %opt) = @_;
    croak "pool not running" unless $self->{pid};
    kill $opt{signal} // 'HUP', $self->{pid};
    return $self;
}

sub stop {
    my ($self, %opt) = @_;
    my $pid = $self->{pid} or return $self;
    my @workers = ($self->worker_pids, grep { defined } $self->launcher_pid);
    my $grace = $opt{timeout} // (($self->{conf}{shutdown_timeout} // 10) + 5);
    stop_process($pid, signals => ['TERM', 'KILL'], timeout => $grace);
    $self->{workers_at_stop} = \@workers;
    $self->_kill_orphans(@workers);
    $self->{pid} = undef;
    $self->_check_sanitizers;
    return $self;
}

# In a --enable-sanitizers build, a report from ASan/UBSan/LeakSanitizer on
# the pool's stderr fails the test that ran it.
sub _check_sanitizers {
    my ($self) = @_;
    my $err = $self->stderr;
    my $from = $self->{sanitizer_seen} // 0;
    return if length($err) <= $from;
    my $new = substr($err, $from);
    $self->{sanitizer_seen} = length $err;
    return unless $new =~ /(?:ERROR: (?:Address|Leak|Memory|Thread)Sanitizer|runtime error:|SUMMARY: \w+Sanitizer)/;
    if ($INC{'Test/Builder.pm'}) {
        my $tb = Test::Builder->new;
        $tb->ok(0, 'no sanitizer reports from streamvibe-fcgi');
        $tb->diag($new);
    } else {
        print STDERR "# sanitizer report from streamvibe-fcgi:\n$new";
    }
}

# After the master is gone, make sure none of its workers survived.
sub _kill_orphans {
    my ($self, @pids) = @_;
    for my $w (@pids) {
        next unless pid_alive($w);
        # Only if it is still a streamvibe process (pid not reused).
        my $cmd = slurp_file("/proc/$w/cmdline") // '';
        next unless $cmd =~ /streamvibe/;
        stop_process($w, signals => ['TERM', 'KILL'], timeout => 3);
    }
}

# The master's workers: its children but the job reconciler and the
# realtime daemon it also runs (other programs: their own command line).
sub worker_pids {
    my ($self) = @_;
    return () unless $self->{pid};
    # The programs it spawns take a session of their own first thing,
    # before exec gives them their own command line: a worker shares the
    # master's session.
    my $sid = sub { ((slurp_file("/proc/$_[0]/stat") // '') =~ /\)\s+\S+\s+\d+\s+\d+\s+(\d+)/)[0] // -1 };
    my $master_sid = $sid->($self->{pid});
    my @p = grep { (slurp_file("/proc/$_/cmdline") // '') !~ /streamvibe-(?:job|realtime)/
                   && $sid->($_) == $master_sid } proc_children($self->{pid});
    return @p;    # in scalar context: how many
}

# The job launcher the master runs (streamvibe-job --launcher), or undef.
sub launcher_pid {
    my ($self) = @_;
    return undef unless $self->{pid};
    my ($p) = grep { (slurp_file("/proc/$_/cmdline") // '') =~ /streamvibe-job\0(?:.*\0)?--launcher/ }
        proc_children($self->{pid});
    return $p;
}

# Wait until the master has exactly $n workers (default: workers); returns
# the pids, or an empty list on timeout.
sub wait_workers {
    my ($self, $n, $timeout) = @_;
    $n //= $self->{workers};
    my @p;
    wait_until(sub { @p = $self->worker_pids; @p == $n }, $timeout // 10) or return ();
    return @p;
}

# Wait until the log matches $re, within $timeout seconds (default 10);
# with from => an offset from log_offset, only in what was written after
# it. Returns the match (or false).
sub wait_log {
    my ($self, $re, $timeout, %opt) = @_;
    my $m;
    wait_until(sub {
        my $l = _from(slurp_file($self->{logfile}) // '', $opt{from});
        ($m) = $l =~ /($re)/;
        defined $m;
    }, $timeout // 10);
    return $m;
}

# A new FastCGI connection to the pool's socket, as nginx opens them.
sub connect {
    my ($self) = @_;
    my $sock = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $self->{socket})
        or croak "connect $self->{socket}: $!";
    return $sock;
}

# One request on a connection of its own: SV::Test::fcgi_ask.
sub fcgi {
    my ($self, $uri, %opt) = @_;
    return fcgi_ask($self->connect, $uri, %opt);
}

1;
