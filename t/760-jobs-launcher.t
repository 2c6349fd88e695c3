#!/usr/bin/perl
# The job launcher (streamvibe-job --launcher) the pool master runs, here
# with one serving process (job_launcher_processes = 1; t/762 runs
# several): the workers hand it accepted jobs and it forks them (its
# serving process is their parent;
# their title names the descriptor; they hold no descriptor of its own and
# have a session of their own), and it runs their statements on its own
# connection, so an AI job opens no PostgreSQL connection. Killed, it is
# started again, and jobs are accepted meanwhile; the jobs it forked
# outlive it; it goes with the
# master, even a SIGKILLed one; a reload replaces it; with job_launcher
# off workers start jobs themselves, which then connect on their own;
# nonsense on its socket is refused and changes nothing.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use Socket qw(AF_UNIX SOCK_SEQPACKET pack_sockaddr_un);
use SV::Test qw(sv_tempdir wait_until slurp_file pid_alive proc_children);
use SV::Test::Fake;
use SV::Test::Stack;

my $spool = sv_tempdir(prefix => 'svspool');
my $release = "$spool/release";
my $ai = SV::Test::Fake->held_model(release => $release);

my $s = SV::Test::Stack->ai_jobs(ai => $ai, ai_quota => undef,
    titles => [qw(quick1 quick2 quick3 held1 held2 held3)], conf => {
    jwt_secret => 'jobs-launcher-secret-' . ('l' x 32), job_spool_dir => "$spool/jobs", job_launcher_processes => 1,
    # A held job must outlast the slowest run of this test.
    http_timeout => 150, job_time_limit_ai => 300 });
my ($ngx, $pool) = ($s->ngx, $s->pool);
my $socket = "$spool/jobs/.launcher.sock";

sub rows { $s->job_rows(@_) }
sub ppid_of { my ($p) = @_; ((slurp_file("/proc/$p/stat") // '') =~ /\)\s+\S+\s+(\d+)/)[0] }
# The job's supervisor: the process whose title names its descriptor and
# whose parent does not.
sub supervisor_of {
    my ($job) = @_;
    my $sup;
    wait_until(sub {
        my %t;
        for my $p (grep { /^\d+$/ } map { s{^/proc/}{}r } glob('/proc/[0-9]*')) {
            my $cmd = slurp_file("/proc/$p/cmdline") // next;
            $t{$p} = 1 if $cmd =~ /\Q$job\E\.job/;
        }
        ($sup) = grep { !$t{ ppid_of($_) // 0 } } keys %t;
        return $sup;
    }, 10);
    return $sup;
}
sub job_connections {
    return scalar $s->su->selectrow_array(
        q{SELECT count(*) FROM pg_stat_activity WHERE application_name = 'streamvibe-job'});
}
# Someone accepts connections on the launcher's socket.
sub listening {
    socket(my $c, AF_UNIX, SOCK_SEQPACKET, 0) or return 0;
    my $ok = connect($c, pack_sockaddr_un($socket));
    close $c;
    return $ok;
}
sub uid_of { my ($p) = @_; ((slurp_file("/proc/$p/status") // '') =~ /^Uid:\s+(\d+)/m)[0] }

# --- the launcher runs ----------------------------------------------------------
my $L;
ok(wait_until(sub { $L = $pool->launcher_pid }, 10), 'the pool master runs a job launcher') or BAIL_OUT('no launcher');
ok(wait_until(sub { -S $socket && listening() }, 10), 'its socket is in the spool');
my ($worker) = $pool->worker_pids;
is(uid_of($L), uid_of($worker), 'it runs as the workers do');
is(((stat $socket)[2] // 0) & 0077, 0, 'only its user may connect');

# --- a job through it -------------------------------------------------------------
my ($res, $doc) = $s->enhance_ai('held1');
is($res->code, 202, 'a job is accepted') or diag $res->as_string;
my $held = $doc->{job_id};
my $sup = supervisor_of($held);
ok($sup, 'its supervisor runs');
my $S = ppid_of($sup);
is(ppid_of($S), $L, "forked by the launcher's serving process");
like((slurp_file("/proc/$S/cmdline") // '') =~ s/\0+/ /gr, qr/--launcher/, 'which has its title');
is(uid_of($S), uid_of($worker), 'and runs as the workers do');
my $cmd = (slurp_file("/proc/$sup/cmdline") // '') =~ s/\0+/ /gr;
like($cmd, qr{^streamvibe-job --lock-fd 3 \Q$spool\E/jobs/\Q$held\E\.job\s*$}, 'its title is the command line it would have had');
my ($sid) = (slurp_file("/proc/$sup/stat") // '') =~ /\)\s+\S+\s+\d+\s+\d+\s+(\d+)/;
is($sid, $sup, 'in a session of its own');
my @fds = sort { $a <=> $b } map { m{/(\d+)$} } glob("/proc/$sup/fd/*");
my %target = map { $_ => readlink("/proc/$sup/fd/$_") // '' } @fds;
is($target{3}, "$spool/jobs/$held.job", 'descriptor 3 is its lock on the job file');
my @sockets = grep { $target{$_} =~ /^socket:/ } @fds;
is(scalar @sockets, 0, "no socket of the launcher's (its listener, its database connection)")
    or diag explain \%target;
ok(wait_until(sub { grep { ($_->{json}{messages}[1]{content} // '') =~ /held1/ }
    $ai->requests('POST /v1/chat/completions') }, 30), 'the job read its content and asks the model');
ok(wait_until(sub { $s->su->selectrow_array(q{SELECT count(*) FROM pg_stat_activity
    WHERE application_name = 'streamvibe-job-launcher'}) == 1 }, 10), 'the launcher holds one database connection');
is(job_connections(), 0, 'the job holds none: it read its content through the launcher');

# --- the launcher dies: its jobs go on, jobs are still accepted, it comes back ---
kill 'KILL', $L;
ok(wait_until(sub { !pid_alive($L) || (slurp_file("/proc/$L/stat") // '') =~ /\)\s+Z/ }, 5), 'the launcher is killed');
ok(wait_until(sub { !pid_alive($S) }, 10), 'and its serving process leaves with it');
($res, $doc) = $s->enhance_ai('quick1', '?wait=60');
is($res->code, 200, 'a job accepted meanwhile runs and ends') or diag $res->as_string;
is_deeply(rows($doc->{job_id}), [{ job_status => 'completed', job_error => undef }], 'completed, one audit row');
my $L2;
ok(wait_until(sub { ($L2 = $pool->launcher_pid) && $L2 != $L && listening() }, 20), 'the master starts a new launcher');
ok(pid_alive($sup), 'the job forked by the dead launcher still runs');

# --- without a launcher (job_launcher = off): the old way --------------------------
$pool->conf(job_launcher => 'off');
$pool->reload;
ok(wait_until(sub { !pid_alive($L2) && !$pool->launcher_pid }, 15), 'job_launcher = off: no launcher after a reload');
ok(wait_until(sub { !-e $socket }, 5), 'nor its socket');
($res, $doc) = $s->enhance_ai('held2');
is($res->code, 202, 'a job is accepted') or diag $res->as_string;
my $spawned = $doc->{job_id};
my $ssup = supervisor_of($spawned);
ok($ssup, 'it runs');
# Exec'd by a worker (which may have exited since, after a reload): its
# command line is the program's, with the --config the worker passes.
like((slurp_file("/proc/$ssup/cmdline") // '') =~ s/\0+/ /gr, qr{^\S*streamvibe-job --config \S+ --config-fd 5 --lock-fd 3 },
    'exec\'d by a worker, not forked by a launcher');
ok(wait_until(sub { job_connections() >= 1 }, 20), 'and it connects to the database itself');
$pool->conf(job_launcher => 'on');
$pool->reload;
ok(wait_until(sub { ($L2 = $pool->launcher_pid) && listening() }, 20), 'on again: a launcher after a reload');

SV::Test::write_file($release, 'go');
for my $job ($held, $spawned) {
    ok(wait_until(sub { @{ rows($job) } }, 30), "job $job ended");
    is_deeply(rows($job), [{ job_status => 'completed', job_error => undef }], 'completed, one audit row');
}
unlink $release;

# --- through the new launcher, and ?wait ------------------------------------------
($res, $doc) = $s->enhance_ai('quick2', '?wait=60');
is($res->code, 200, 'a job accepted with ?wait answers when it ends') or diag $res->as_string;
is($doc->{success}, JSON::PP::true, 'successfully');
is_deeply(rows($doc->{job_id}), [{ job_status => 'completed', job_error => undef }], 'one audit row');
is($s->job_suggestions($doc->{job_id}), 1, 'its suggestion was stored through the launcher');

# --- nonsense on the socket ---------------------------------------------------------
# Sends $msg, answers "go" to "ready" (unless $no_go: then it hangs up
# there), and returns the answer.
my $greeting;
sub ask {
    my ($msg, $no_go) = @_;
    socket(my $c, AF_UNIX, SOCK_SEQPACKET, 0) or die "socket: $!";
    connect($c, pack_sockaddr_un($socket)) or die "connect: $!";
    send($c, $msg, 0);
    my $answer = '';
    my $rin = '';
    vec($rin, fileno($c), 1) = 1;
    # "launcher <pid>" first: the serving process that took it.
    recv($c, $answer, 65536, 0) if select(my $rout = $rin, undef, undef, 5);
    $greeting = $answer;
    # "ready": the statement runs once this end says "go"; the answer follows.
    for (1 .. 2) {
        $answer = '';
        recv($c, $answer, 65536, 0) if select(my $rout = $rin, undef, undef, 5);
        last if $answer ne 'ready' || $no_go;
        send($c, 'go', 0);
    }
    close $c;
    return $answer;
}
like(ask('spawn /etc/passwd'), qr/^error/, 'a spawn without a lock, outside the spool: refused');
like(ask("spawn $spool/jobs/../../x.job"), qr/^error/, 'a path leaving the spool, and no lock: refused');
like(ask('sql {"sql": 1'), qr/^error/, 'a statement it cannot read: refused');
like(ask('sql {"sql":"SELECT nope FROM nowhere","params":[]}'), qr/^error database error 42P01/,
    "PostgreSQL's refusal is passed on");
like(ask('dance'), qr/^error/, 'an unknown request: refused');
my ($S2) = SV::Test::proc_children($L2);
is($greeting, "launcher $S2", 'a connection is greeted with the pid of the serving process that took it');
like(ask('sql {"sql":"SELECT $1::int + 1 AS n","params":["41"]}'), qr/^ok \{"fields":\["n"\],"rows":\[\["42"\]\]\}$/,
    'a statement of its own user runs');
# A statement whose sender hangs up at "ready" is not run; told "go", it is.
my $note = 'INSERT INTO public.audit_log (action) VALUES ($1)';
my $from = $pool->log_offset;
is(ask(qq{sql {"sql":"$note","params":["nogo"]}}, 1), 'ready', 'a statement is answered "ready"');
ok($pool->wait_log(qr/the job did not confirm: the statement was not run/, 10, from => $from),
    'hung up on, the launcher does not run it');
like(ask(qq{sql {"sql":"$note","params":["go"]}}), qr/^ok /, 'told "go", it runs it');
is($s->su->selectrow_array(q{SELECT string_agg(action, ',') FROM audit_log WHERE action IN ('nogo', 'go')}),
    'go', 'only the statement told "go" ran');
is($pool->launcher_pid, $L2, 'the launcher is still the same process');

# --- a reload replaces it; a stop ends it; a dead master too ----------------------
$pool->reload;
my $L3;
# Watched without a pause, so that the rotation's SIGUSR1 below reaches
# the new launcher while it is still starting (before its main()).
my $until = time + 15;
1 until (($L3 = $pool->launcher_pid) && $L3 != $L2) || time > $until;
ok($L3 && $L3 != $L2, 'a reload starts a new launcher');
kill 'USR1', $pool->pid;
sleep 1;
ok(pid_alive($L3) && ($pool->launcher_pid // 0) == $L3,
    'a log rotation (SIGUSR1) as it starts does not end it');
ok(wait_until(sub { !pid_alive($L2) }, 10), 'and the old one ends');
($res, $doc) = $s->enhance_ai('quick3', '?wait=60');
is($res->code, 200, 'jobs run after the reload') or diag $res->as_string;

ok(wait_until(sub { listening() }, 10), 'its socket is back');
kill 'KILL', $pool->pid;
ok(wait_until(sub { !pid_alive($L3) }, 10), 'a SIGKILLed master takes its launcher with it');
ok(wait_until(sub { !-e $socket }, 5), 'and its socket');
$pool->stop;

done_testing;
