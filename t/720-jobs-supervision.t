#!/usr/bin/perl
# Every accepted job ends with exactly one audit_log row and a correct
# quota, whatever happens to its processes: the child killed or crashing,
# the supervisor killed, the whole process group killed, a timeout, the
# pool master killed mid-job, a pool stop and start under a running job,
# and the supervisor racing the reconciler. A job inherits none of the
# worker's descriptors and leaves no zombie.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use SV::Test qw(sv_tempdir wait_until slurp_file pid_alive job_pids proc_children);
use SV::Test::Fake;
use SV::Test::Stack;

my $JSON = JSON::PP->new->canonical;
# The model answers after as many seconds as the content's title says
# ("sleep 30"), else at once.
my $ai = SV::Test::Fake->new(name => 'ai', routes => {
    'POST /v1/chat/completions' => sub {
        my ($req) = @_;
        my ($secs) = ($req->{json}{messages}[1]{content} // '') =~ /sleep (\d+)/;
        my $content = $JSON->encode({ title => 'T', description => 'D', tags => ['t'] });
        return [200, { 'Content-Type' => 'application/json' }, $JSON->encode({
            choices => [{ index => 0, message => { role => 'assistant', content => $content },
                          finish_reason => 'stop' }] }), $secs // 0];
    },
});

# A job's child is sent SIGSEGV on purpose: under AddressSanitizer the
# signal must still kill it (and be reported as signal 11), not become
# ASan's own report and exit status 1.
$ENV{ASAN_OPTIONS} = join ':', grep { length } $ENV{ASAN_OPTIONS} // '', 'handle_segv=0';
my $spool = sv_tempdir(prefix => 'svspool') . '/jobs';
my $s = SV::Test::Stack->ai_jobs(ai => $ai, titles => ['sleep 30', 'sleep 12', 'sleep 4', 'fast'], pcid => sub { "c-$_[0]" },
    conf => { jwt_secret => 'jobs-sup-secret-' . ('j' x 32), job_spool_dir => $spool, job_reconcile_interval => 1 });
my ($ngx, $pool, $A, $tok, %content) = ($s->ngx, $s->pool, $s->jobs_user, $s->jobs_token, $s->jobs_content);

sub used { $s->quota_used($A, 'ai') }
sub rows { $s->job_rows(@_) }
sub ends_with {
    my ($job, $status, $error_re, $name) = @_;
    ok(wait_until(sub { @{ rows($job) } }, 20), "$name: the job ended") or return;
    my $r = rows($job);
    is(scalar @$r, 1, "$name: exactly one audit row");
    is($r->[0]{job_status}, $status, "$name: $status");
    like($r->[0]{job_error} // '', $error_re, "$name: with the reason") if $error_re;
    ok(wait_until(sub { !-e "$spool/$job.job" }, 10), "$name: its descriptor is gone");
}

my $base = used();

# --- what a job inherits ------------------------------------------------------
my $job = $s->accept_ai_job('sleep 30');
my ($sup, $child) = job_pids($job);
ok($sup && $child, 'the supervisor and its child run') or BAIL_OUT('no job processes');
my %worker_inode;
for my $w ($pool->worker_pids) {
    for my $fd (glob("/proc/$w/fd/*")) {
        my $t = readlink($fd) // next;
        $worker_inode{$t} = 1 if $t =~ /^socket:/;
    }
}
cmp_ok(scalar keys %worker_inode, '>=', 3, "the workers' sockets are known");
for my $p ([$sup, 'supervisor'], [$child, 'child']) {
    my @shared = grep { $worker_inode{ readlink($_) // '' } } glob("/proc/$p->[0]/fd/*");
    is(scalar @shared, 0, "the $p->[1] holds none of the workers' sockets (nginx's, libpq's, the listening one)");
}
like(readlink("/proc/$sup/fd/3") // '', qr/\Q$job\E\.job$/, "the supervisor's fd 3 is its locked descriptor");
is(readlink("/proc/$sup/fd/0"), '/dev/null', 'its stdin is /dev/null');
my ($sid) = (slurp_file("/proc/$sup/stat") =~ /\)\s+\S+\s+\d+\s+\d+\s+(\d+)/);
is($sid, $sup, 'it leads a session of its own');
is(used(), $base + 1, 'one quota spent while it runs');
my ($res, $doc) = $ngx->call('GET', "/functions/v1/jobs/$job", token => $tok);
is($doc->{status}, 'running', 'its status is running');
($res, $doc) = $ngx->call('GET', '/functions/v1/jobs?status=running', token => $tok);
is_deeply([map { $_->{job_id} } @$doc], [$job], 'and it is listed as running');

# --- the child killed ----------------------------------------------------------
kill 'KILL', $child;
ends_with($job, 'failed', qr/signal 9/, 'child SIGKILL');
is(used(), $base, 'child SIGKILL: the quota is refunded');

# --- the child crashing -----------------------------------------------------------
$job = $s->accept_ai_job('sleep 30');
($sup, $child) = job_pids($job);
kill 'SEGV', $child;
ends_with($job, 'failed', qr/signal 11/, 'child SIGSEGV');
is(used(), $base, 'child SIGSEGV: refunded');

# --- the supervisor killed: the reconciler finishes the job ---------------------
$job = $s->accept_ai_job('sleep 30');
($sup, $child) = job_pids($job);
kill 'KILL', $sup;
ends_with($job, 'interrupted', qr/ended before it finished/, 'supervisor SIGKILL');
ok(wait_until(sub { !pid_alive($child) }, 5), 'supervisor SIGKILL: its child went with it');
is(used(), $base, 'supervisor SIGKILL: refunded');

# --- the whole process group killed ----------------------------------------------
$job = $s->accept_ai_job('sleep 30');
($sup, $child) = job_pids($job);
kill 'KILL', -$sup;
ends_with($job, 'interrupted', undef, 'group SIGKILL');
is(used(), $base, 'group SIGKILL: refunded');

# --- the wall-clock limit -----------------------------------------------------------
my $off = $pool->log_offset;
$pool->conf(job_time_limit_ai => 2);
$pool->reload;
ok($pool->wait_log(qr/event=reload generation=2/, 10, from => $off), 'reloaded with a 2 s limit');
sleep 1;
$job = $s->accept_ai_job('sleep 30');
ends_with($job, 'failed', qr/timed out after 2 s/, 'timeout');
is(used(), $base, 'timeout: refunded');
$pool->conf(job_time_limit_ai => 120);
$off = $pool->log_offset;
$pool->reload;
$pool->wait_log(qr/event=reload generation=3/, 10, from => $off);
sleep 1;

# --- the pool master killed mid-job ----------------------------------------------------
$job = $s->accept_ai_job('sleep 4');
($sup, $child) = job_pids($job);
kill 'KILL', $pool->pid;
ends_with($job, 'completed', undef, 'master SIGKILL');
is(used(), $base + 1, 'master SIGKILL: the completed job keeps its quota');
$pool->stop;    # what is left of it (its workers leave on their own)
$pool->start;

# --- a job outliving a pool stop and start ------------------------------------------
# Long enough to be still running when a slow stop returns (a 4 s job
# had ended on its own by then under AddressSanitizer).
$job = $s->accept_ai_job('sleep 12');
($sup, $child) = job_pids($job);
$pool->stop;
ok(pid_alive($sup), 'the job outlives the pool stop');
$pool->start;
ends_with($job, 'completed', undef, 'pool stop/start');
is(used(), $base + 2, 'pool stop/start: one more quota spent');

# --- the supervisor and the reconciler racing on one job ------------------------------
my $race = '5b0f8c2e-7c5c-4d1e-9a3b-000000000001';
my $svc = $s->pg->dbh(user => 'postgres');
$svc->do(q{SELECT public.sv_job_accept(?, ?, 'ai_enhancement', ARRAY[?]::uuid[], 20, 60)},
    undef, $race, $A, $content{fast});
is(used(), $base + 3, 'a job accepted straight in SQL spends');
my @won = SV::Test::run_parallel(8, sub {
    my $dbh = $s->pg->dbh(user => 'postgres');
    my ($w) = $dbh->selectrow_array(q{SELECT public.sv_job_finish(?, ?, 'ai_enhancement', ?, '{}', NULL,
        'racing', now(), now())}, undef, $race, $A, $_[0] % 2 ? 'failed' : 'interrupted');
    return $w ? 1 : 0;
});
is(scalar(grep { $_ } @won), 1, 'eight finishers: exactly one writes the row');
is(scalar @{ rows($race) }, 1, 'one audit row');
is(used(), $base + 2, 'and the quota is refunded once');

# --- an ai job's suggestion: stored once, kept only by a job that completes ----
# (t/765 runs these through the processes, killing or stopping the launcher.)
my $sj = '5b0f8c2e-7c5c-4d1e-9a3b-000000000002';
$svc->do(q{SELECT public.sv_job_accept(?, ?, 'ai_enhancement', ARRAY[?]::uuid[], 20, 60)},
    undef, $sj, $A, $content{fast});
my $store = q{SELECT public.sv_job_store_suggestion(?, ?, ?, 'T', 'D', '["t"]', 'm', 'v1')};
my $count = q{SELECT count(*) FROM ai_content_suggestions WHERE job_id = ?};
my ($first) = $svc->selectrow_array($store, undef, $sj, $content{fast}, $A);
my ($again) = $svc->selectrow_array($store, undef, $sj, $content{fast}, $A);
ok($first, 'a job stores its suggestion');
is($again, $first, 'stored again (an answer lost), it is the same suggestion');
is(scalar $svc->selectrow_array($count, undef, $sj), 1, 'one suggestion for the job');
$svc->do(q{SELECT public.sv_job_finish(?, ?, 'ai_enhancement', 'failed', '{}', NULL, 'x', now(), now())},
    undef, $sj, $A);
is(scalar $svc->selectrow_array($count, undef, $sj), 0, 'the job failed: its suggestion is removed');
is(used(), $base + 2, 'and its quota refunded');
ok(!eval { $svc->selectrow_array($store, undef, $sj, $content{fast}, $A); 1 }, 'a store after the job ended fails');
like($@, qr/has ended/, 'saying so');
is(scalar $svc->selectrow_array($count, undef, $sj), 0, 'and stores nothing');

# --- the pool's reload signals reaching the jobs ------------------------------------------
# `systemctl kill -s HUP|USR2 streamvibe` signals every process of the
# unit's cgroup: the master (SIGHUP and SIGUSR2 are its reload), its
# workers, the launcher and its serving processes, and each job's
# supervisor and child, whatever their session. `kill -HUP -<pgid>`
# reaches a job's supervisor and child together. A reload must not end
# a running job: with the launcher (the default) and without it (a job
# a worker spawned), the job runs on and completes.
sub descendants { map { ($_, descendants($_)) } proc_children($_[0]) }
sub reload_everything {
    my ($job, $name) = @_;
    my ($sup, $child) = job_pids($job);
    ok($sup && $child, "$name: the job runs") or return;
    my $off = $pool->log_offset;
    for my $sig (qw(HUP USR2)) {
        kill $sig, -$sup;
        kill $sig, $pool->pid, descendants($pool->pid), $sup, $child;
        select(undef, undef, undef, 0.3);
    }
    ok($pool->wait_log(qr/event=reload generation=\d+/, 10, from => $off), "$name: the master took them as a reload");
    ok(pid_alive($sup) && pid_alive($child), "$name: the supervisor and its child run on");
    ends_with($job, 'completed', undef, $name);
}
my $done = used();
reload_everything($s->accept_ai_job('sleep 12'), 'SIGHUP and SIGUSR2 to every process (launcher)');
is(used(), $done + 1, 'the completed job keeps its quota');
$off = $pool->log_offset;
$pool->conf(job_launcher => 'off');
$pool->reload;
ok($pool->wait_log(qr/event=reload generation=\d+/, 10, from => $off), 'reloaded without the launcher');
ok(wait_until(sub { !$pool->launcher_pid }, 15), 'no launcher');
reload_everything($s->accept_ai_job('sleep 12'), 'SIGHUP and SIGUSR2 to every process (spawned by a worker)');
is(used(), $done + 2, 'the completed job keeps its quota');

# SIGTERM still ends a job as it did: the supervisor goes, the child
# with it, and the reconciler records the job as interrupted.
$job = $s->accept_ai_job('sleep 30');
($sup, $child) = job_pids($job);
kill 'TERM', -$sup;
ends_with($job, 'interrupted', qr/ended before it finished/, 'group SIGTERM');
is(used(), $done + 2, 'group SIGTERM: refunded');

# --- no zombies ------------------------------------------------------------------------
my @workers = $pool->worker_pids;
my @zombies = grep {
    my $st = slurp_file("/proc/$_/stat") // '';
    $st =~ /\)\s+Z\s+(\d+)/ && grep { $_ == $1 } @workers
} map { s{^/proc/}{}r } glob('/proc/[0-9]*');
is(scalar @zombies, 0, "no zombie among the workers' children");

$s->stop;
done_testing;
