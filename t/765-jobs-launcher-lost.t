#!/usr/bin/perl
# The job launcher killed at the worst instants, where an answer it owed
# is lost. The test hook job_launcher_test_hook makes the launcher stop
# itself (SIGSTOP) once, at a named point of its protocol; the test then
# kills it (SIGKILL) there, or lets it go on (SIGCONT). "The launcher"
# here is the serving process that took the request (it runs two,
# job_launcher_processes = 2); its parent starts another in place of one
# that is killed.
#
# Spawning ("spawn <path>" with the descriptor's lock): the worker that
# got no "ok <pid>" opens the descriptor again and tries its lock.
#  - killed after taking the lock, before forking: the lock comes free,
#    the worker starts the job itself; it runs once.
#  - killed after forking, before answering: the job holds the lock, the
#    worker does not start a second one; it runs once.
#  - stopped past the worker's wait, then continued: the worker leaves the
#    job to the launcher, which forks it; it runs once.
#  - stopped past the worker's wait, then killed: nobody ran it; the
#    reconciler ends it as interrupted and refunds it.
# Statements ("sql {...}", answered "ready"; the job says "go"; then the
# result): until it said "go" a job that gives up waiting runs the
# statement itself on its own connection (the launcher will not); after
# "go", a lost answer is never sent again through the launcher, and only
# an idempotent statement (a read, the suggestion's store, sv_job_finish)
# is sent again, on the job's own connection.
#  - the suggestion's store, killed before it ran / after it ran: the job
#    completes with exactly one suggestion, its own, the quota spent once.
#  - stopped (SIGSTOP, not killed) before "ready" / after "go": the job
#    does not wait the launcher out; it completes, with one suggestion,
#    while the launcher is still stopped. Continued, the launcher does not
#    run the statement the job took back, and storing late adds nothing.
#  - sv_job_finish, killed before it ran / after it ran, or stopped after
#    it ran: the job sends it again; one completed row, the quota spent
#    once.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use POSIX ();
use Socket qw(AF_UNIX SOCK_SEQPACKET pack_sockaddr_un);
use SV::Test qw(sv_tempdir wait_until slurp_file write_file proc_state proc_ppid
    job_supervisors job_pids);
use SV::Test::Fake;
use SV::Test::Stack;

my $tmp = sv_tempdir(prefix => 'svlost');
my $release = "$tmp/release";
my $ai = SV::Test::Fake->held_model(release => $release);

my $hook = "$tmp/hook";
my $s = SV::Test::Stack->ai_jobs(ai => $ai, titles => [qw(quick held)], conf => {
    jwt_secret => 'jobs-lost-secret-' . ('l' x 32), job_reconcile_interval => 1,
    job_launcher_test_hook => $hook, job_launcher_processes => 2 });
my ($ngx, $pool, $A) = ($s->ngx, $s->pool, $s->jobs_user);
my $socket = $pool->conf('job_spool_dir') // $pool->dir . '/spool';
$socket .= '/.launcher.sock';

sub used { $s->quota_used($A, 'ai') }
sub rows { $s->job_rows(@_) }
sub suggestions { $s->job_suggestions(@_) }
# The stored suggestion's id, and the one the job's result names.
sub suggestion_ids {
    my ($job) = @_;
    return $s->su->selectrow_array(q{SELECT (SELECT id::text FROM ai_content_suggestions WHERE job_id = $1),
        (SELECT job_result->>'suggestion_id' FROM audit_log WHERE job_id = $1)}, undef, $job);
}
# The job's supervisors, with their titles.
sub supervisors {
    my ($job) = @_;
    return map { [$_, (slurp_file("/proc/$_/cmdline") // '') =~ s/\0+/ /gr] } job_supervisors($job);
}
sub listening {
    socket(my $c, AF_UNIX, SOCK_SEQPACKET, 0) or return 0;
    my $ok = connect($c, pack_sockaddr_un($socket));
    close $c;
    return $ok;
}
# A launcher answers on the socket. After one was killed, a reload starts
# a new launcher at once (else the back-off, since the test kills them
# young); it is the new one that must answer, not the one it replaces,
# which may still be listening until it has seen its SIGTERM.
my $killed = 0;
sub launcher {
    my $old = $killed ? $pool->launcher_pid : undef;
    $pool->reload if $killed;
    $killed = 0;
    return wait_until(sub {
        my $L = $pool->launcher_pid;
        return $L && (!defined $old || $L != $old) && listening();
    }, 20);
}
# The launcher process that stopped on the hook: whichever serving
# process of whichever of the master's launchers served the request (one
# a reload is replacing may still).
sub stopped_launcher {
    my $L;
    wait_until(sub {
        ($L) = grep { (slurp_file("/proc/$_/cmdline") // '') =~ /--launcher/ && proc_state($_) eq 'T' }
            map { SV::Test::proc_children($_) } SV::Test::proc_children($pool->pid);
        return $L;
    }, 30);
    return $L;
}
# Arms the hook for the launcher $L: it stops at $point (on a request
# containing $text).
sub arm {
    my ($point, $text) = @_;
    write_file($hook, $point . (defined $text ? " $text" : '') . "\n", 0644);
}
# Accepts a job in a child process (the answer may take the worker's
# whole wait for the launcher); returns a sub giving (code, job_id)
# once it came.
sub accept_async {
    my ($title) = @_;
    my $out = "$tmp/answer-" . int(rand(1e9));
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my ($res, $doc) = eval { $s->enhance_ai($title) };
        write_file($out, join("\n", $res ? $res->code : 0, $doc && ref $doc eq 'HASH' ? $doc->{job_id} // '' : ''));
        POSIX::_exit(0);
    }
    return sub {
        waitpid($pid, 0);
        return split /\n/, slurp_file($out) // "0\n";
    };
}
sub ends {
    my ($job, $want, $name) = @_;
    ok(wait_until(sub { @{ rows($job) } }, 60), "$name: the job ended");
    my $r = rows($job);
    is(scalar @$r, 1, "$name: one audit row");
    is($r->[0]{job_status}, $want, "$name: $want") or diag explain $r;
    return $r->[0];
}
sub released { write_file($release, 'go') }
sub hold { unlink $release }

my $L;
ok(launcher(), 'the pool runs a job launcher') or BAIL_OUT('no launcher');

# --- spawn: killed after taking the lock, before forking ---------------------------
{
    my $used = used();
    arm('spawn_received');
    my $answer = accept_async('quick');
    ok($L = stopped_launcher(), 'spawn_received: the launcher stopped holding the lock')
        or diag $pool->log;
    ok(!-e $hook, 'the hook fired once');
    kill 'KILL', $L if $L;
    $killed = 1;
    my ($code, $job) = $answer->();
    is($code, 202, 'the job is accepted all the same');
    my $row = ends($job, 'completed', 'spawn_received');
    is(suggestions($job), 1, 'spawn_received: one suggestion');
    is(used(), $used + 1, 'spawn_received: the quota spent once');
    unlike($pool->log, qr/no answer; the job holds its lock.*\Q$job\E/,
        'the worker found the lock free and started the job itself');
}

# --- spawn: killed after forking, before answering -----------------------------------
{
    ok(launcher(), 'a new launcher');
    my $used = used();
    hold();
    arm('spawn_forked');
    my $answer = accept_async('held');
    ok($L = stopped_launcher(), 'spawn_forked: the launcher stopped after the fork');
    kill 'KILL', $L if $L;
    $killed = 1;
    my ($code, $job) = $answer->();
    is($code, 202, 'the job is accepted');
    my @sup;
    ok(wait_until(sub { @sup = supervisors($job) }, 20), 'its supervisor runs');
    # Whatever the worker did, it had its answer before this point.
    is(scalar(supervisors($job)), 1, 'one supervisor: the worker did not start the job a second time')
        or diag explain [supervisors($job)];
    unlike($sup[0][1], qr/--config/, "it is the one the launcher forked (title: $sup[0][1])");
    like($pool->log, qr/no answer; the job holds its lock.*\Q$job\E/, 'the worker found the job holding its lock');
    released();
    ends($job, 'completed', 'spawn_forked');
    is(suggestions($job), 1, 'spawn_forked: one suggestion');
    is(used(), $used + 1, 'spawn_forked: the quota spent once');
}

# --- spawn: killed after forking a job that ends at once ----------------------------
# The worker tries the lock for a while; the job may end meanwhile (its
# descriptor removed, its lock let go): that is not a job to start.
{
    launcher();
    my $used = used();
    my $from = $pool->log_offset;
    arm('spawn_forked');
    my $answer = accept_async('quick');
    ok($L = stopped_launcher(), 'spawn_forked (quick job): the launcher stopped after the fork');
    kill 'KILL', $L if $L;
    $killed = 1;
    my ($code, $job) = $answer->();
    is($code, 202, 'the job is accepted');
    ends($job, 'completed', 'spawn_forked, quick');
    my $log = $pool->log(from => $from);
    like($log, qr/no answer; the job (?:holds its lock|has ended already).*\Q$job\E/,
        'the worker left the job to the one the launcher forked');
    unlike($log, qr/unreadable descriptor.*\Q$job\E/, 'and started no second one on its removed descriptor');
    is(scalar(() = $log =~ /event=job_start .*job_id=\Q$job\E/g), 1, 'the job started once');
    is(suggestions($job), 1, 'one suggestion');
    is(used(), $used + 1, 'the quota spent once');
}

# --- spawn: stopped past the worker's wait, then continued --------------------------
{
    launcher();
    my $used = used();
    hold();
    arm('spawn_received');
    my $answer = accept_async('held');
    ok($L = stopped_launcher(), 'stopped before forking');
    my ($code, $job) = $answer->();    # the worker's wait runs out meanwhile
    is($code, 202, 'the worker gave up waiting and answered');
    like($pool->log, qr/no answer; the job holds its lock.*\Q$job\E/, 'leaving the job to the lock\'s holder');
    is(scalar(supervisors($job)), 0, 'which has not forked it yet');
    kill 'CONT', $L if $L;
    my @sup;
    ok(wait_until(sub { @sup = supervisors($job) }, 20), 'continued, the launcher forks it');
    is(proc_ppid($sup[0][0]), $L, 'the launcher is its parent');
    released();
    ends($job, 'completed', 'continued');
    is(used(), $used + 1, 'continued: the quota spent once');
}

# --- spawn: stopped past the worker's wait, then killed ------------------------------
{
    launcher();
    my $used = used();
    arm('spawn_received');
    my $answer = accept_async('quick');
    ok($L = stopped_launcher(), 'stopped before forking');
    my ($code, $job) = $answer->();
    is($code, 202, 'the worker gave up waiting and answered');
    kill 'KILL', $L if $L;
    $killed = 1;
    my $row = ends($job, 'interrupted', 'killed after the wait');
    like($row->{job_error} // '', qr/ended before it finished/, 'the reconciler ended it: nobody ran it');
    is(suggestions($job), 0, 'no suggestion');
    is(used(), $used, 'the quota refunded');
}

# --- statements: the launcher killed or stopped at each point ----------------
# Each case: where the launcher stops (the point, on the statement holding
# the text), whether it had run the statement there, and what is done to
# it: killed, or left stopped until the job has ended, then continued.
my @cases = (
    [qw(sql_received suggestion 0 KILL)],
    [qw(sql_run suggestion 0 KILL)],
    [qw(sql_done suggestion 1 KILL)],
    [qw(sql_received suggestion 0 STOP)],
    [qw(sql_run suggestion 0 STOP)],
    [qw(sql_run sv_job_finish 0 KILL)],
    [qw(sql_done sv_job_finish 1 KILL)],
    [qw(sql_done sv_job_finish 1 STOP)],
);
for my $case (@cases) {
    my ($point, $text, $ran, $what) = @$case;
    my $name = "$point on $text, " . ($what eq 'KILL' ? 'killed' : 'stopped');
    launcher();
    my $used = used();
    my $from = $pool->log_offset;
    arm($point, $text);
    my $answer = accept_async('quick');
    ok($L = stopped_launcher(), "$name: the launcher stopped there");
    my ($code, $job) = $answer->();
    is($code, 202, "$name: accepted");
    if ($text eq 'suggestion') {
        is(suggestions($job), $ran, "$name: " . ($ran ? 'the store ran (committed) before the stop' : 'the store has not run'));
    } else {
        is(scalar @{ rows($job) }, $ran, "$name: " . ($ran ? 'the row was written before the stop' : 'no row yet'));
    }
    if ($what eq 'KILL') {
        kill 'KILL', $L if $L;
        $killed = 1;
    }
    ends($job, 'completed', $name);
    is($L && proc_state($L), 'T', "$name: the launcher is still stopped: the job did not wait for it")
        if $what eq 'STOP';
    ok(wait_until(sub { $pool->log =~ /event=job_end .*job_id=\Q$job\E.*recorded=yes/ }, 10),
        "$name: the job counts its end recorded");
    if ($what eq 'STOP') {
        kill 'CONT', $L if $L;
        # What the continued launcher makes of the statement it held.
        my $says = $point eq 'sql_received' ? qr/the job did not confirm: the statement was not run/
                                            : qr/the job is gone: the statement ran, its answer is lost/;
        ok($pool->wait_log($says, 20, from => $from), "$name: continued, the launcher says: $says");
    }
    is(suggestions($job), 1, "$name: exactly one suggestion");
    my ($stored, $named) = suggestion_ids($job);
    is($named, $stored, "$name: the job's result names the stored suggestion");
    is(used(), $used + 1, "$name: the quota spent once, not refunded");
    my $log = $pool->log(from => $from);
    if ($text eq 'suggestion' && $point ne 'sql_received') {
        like($log, qr/event=job_relay_lost .*launcher did not answer/, "$name: the job sent the store again itself");
    } elsif ($text eq 'suggestion') {
        unlike($log, qr/event=job_relay_lost/, "$name: nothing was lost: the job ran the store itself, once");
    }
}

# --- the job's child killed just after its store ran ----------------------------
# Not the launcher's doing, but the same question: a job that fails after
# its suggestion was stored keeps none (sv_job_finish removes it).
{
    launcher();
    my $used = used();
    arm('sql_done', 'suggestion');
    my $answer = accept_async('quick');
    ok($L = stopped_launcher(), 'child killed: the launcher stopped after the store ran');
    my ($code, $job) = $answer->();
    is(suggestions($job), 1, 'child killed: the suggestion is stored');
    my ($sup, $child) = job_pids($job);
    ok($child && kill('KILL', $child), "child killed: the job's child is killed");
    my $row = ends($job, 'failed', 'child killed after the store');
    like($row->{job_error} // '', qr/signal 9/, 'child killed: with the reason');
    is(suggestions($job), 0, 'child killed: the failed job keeps no suggestion');
    is(used(), $used, 'child killed: the quota refunded');
    kill 'CONT', $L if $L;
    ok($pool->wait_log(qr/the job is gone: the statement ran/, 20), 'continued, the launcher finds the job gone');
}

ok(launcher(), 'a launcher runs at the end');
ok(!-e $hook, 'every hook fired');
$s->stop;

done_testing;
