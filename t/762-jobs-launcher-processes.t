#!/usr/bin/perl
# The job launcher's serving processes (job_launcher_processes): one job's
# statement waiting on a row lock holds up only the process running it;
# another job's statements run meanwhile, through another process.
#
# - the launcher runs job_launcher_processes serving processes, each with
#   a database connection of its own; the launcher itself holds none;
# - job 1's suggestion store waits on a row lock a transaction of the
#   test holds (its content row, FOR UPDATE: the store's foreign key
#   check needs it); job 2 (another content item) completes meanwhile,
#   while job 1's statement is still waiting; the lock released, job 1
#   completes; each has one audit row, one suggestion, the quota spent
#   once each;
# - a serving process killed while another holds a waiting statement:
#   the other's job is not lost, jobs are still served, and the launcher
#   starts a new process in its place.

use strict;
use warnings;
use Test::More;
use SV::Test qw(sv_tempdir wait_until slurp_file write_file pid_alive proc_children);
use SV::Test::Fake;
use SV::Test::Stack;

my $N = 3;
my $tmp = sv_tempdir(prefix => 'svlconn');
my $release = "$tmp/release";
my $ai = SV::Test::Fake->held_model(release => $release);

my $s = SV::Test::Stack->ai_jobs(ai => $ai, titles => [qw(held1 quick1 quick2 quick3)],
    conf => { jwt_secret => 'jobs-lconn-secret-' . ('l' x 32), job_launcher_processes => $N });
my ($ngx, $pool, $A, %content) = ($s->ngx, $s->pool, $s->jobs_user, $s->jobs_content);

sub used { $s->quota_used($A, 'ai') }
sub rows { $s->job_rows(@_) }
sub suggestions { $s->job_suggestions(@_) }
sub completed_once {
    my ($job, $name) = @_;
    ok(wait_until(sub { @{ rows($job) } }, 60), "$name: the job ended");
    is_deeply(rows($job), [{ job_status => 'completed', job_error => undef }], "$name: completed, one audit row");
    is(suggestions($job), 1, "$name: one suggestion");
}
sub launcher_connections {
    return scalar $s->su->selectrow_array(
        q{SELECT count(*) FROM pg_stat_activity WHERE application_name = 'streamvibe-job-launcher'});
}
# The launcher's serving processes.
sub serving {
    my $L = $pool->launcher_pid or return ();
    return grep { (slurp_file("/proc/$_/cmdline") // '') =~ /--launcher/ } proc_children($L);
}
sub sockets_of {
    my ($p) = @_;
    return scalar grep { (readlink($_) // '') =~ /^socket:/ } glob("/proc/$p/fd/*");
}
# The backend of a launcher's connection whose statement waits on a lock.
sub waiting_backend {
    my ($text) = @_;
    return $s->su->selectrow_array(q{SELECT pid FROM pg_stat_activity
        WHERE application_name = 'streamvibe-job-launcher' AND wait_event_type = 'Lock' AND query LIKE ?},
        undef, "%$text%");
}

# --- the processes and their connections ----------------------------------------
my $L;
ok(wait_until(sub { $L = $pool->launcher_pid }, 10), 'the pool master runs a job launcher') or BAIL_OUT('no launcher');
my @S;
ok(wait_until(sub { (@S = serving()) == $N }, 10), "it runs job_launcher_processes = $N serving processes")
    or diag explain [serving()];
ok(wait_until(sub { launcher_connections() == $N }, 10), 'each with a database connection of its own')
    or diag launcher_connections();
is(sockets_of($L), 1, 'the launcher itself holds its listening socket only, no connection');
is(sockets_of($_), 2, "serving process $_: the listening socket and its connection") for @S;

# --- a statement waiting on a lock holds up nobody else -----------------------------
my $used = used();
unlink $release;
my $job1 = $s->accept_ai_job('held1');
ok(wait_until(sub { grep { ($_->{json}{messages}[1]{content} // '') =~ /held1/ }
    $ai->requests('POST /v1/chat/completions') }, 30), 'job 1 read its content and asks the model');
# A transaction that holds job 1's content row, as an edit in progress would.
my $lk = $s->pg->dbh(user => 'postgres', attr => { AutoCommit => 0 });
$lk->selectrow_array('SELECT id FROM public.handle_content WHERE id = ? FOR UPDATE', undef, $content{held1});
write_file($release, 'go');
my $backend;
ok(wait_until(sub { $backend = waiting_backend('sv_job_store_suggestion') }, 30),
    "job 1's suggestion store waits on the row lock, on a launcher's connection");
is_deeply(rows($job1), [], 'job 1 has not ended');

my $job2 = $s->accept_ai_job('quick1');
completed_once($job2, 'job 2, while job 1 waits');
is(waiting_backend('sv_job_store_suggestion'), $backend, "job 1's statement is still waiting meanwhile");
is_deeply(rows($job1), [], 'and job 1 has not ended');

$lk->rollback;
completed_once($job1, 'job 1, the lock released');
is(used(), $used + 2, 'the quota spent once for each');

# --- a serving process killed: the others' jobs go on -----------------------------
$used = used();
$lk->selectrow_array('SELECT id FROM public.handle_content WHERE id = ? FOR UPDATE', undef, $content{quick2});
my $job3 = $s->accept_ai_job('quick2');
ok(wait_until(sub { $backend = waiting_backend('sv_job_store_suggestion') }, 30),
    "job 3's suggestion store waits on the row lock");
# The busy one holds the job's connection besides its two.
my ($busy, @idle);
ok(wait_until(sub {
    @S = serving();
    ($busy) = grep { sockets_of($_) == 3 } @S;
    @idle = grep { sockets_of($_) == 2 } @S;
    return $busy && @idle;
}, 10), 'one serving process runs it, the others are idle') or diag explain { map { $_ => sockets_of($_) } @S };
my $victim = $idle[0];
kill 'KILL', $victim;
ok(wait_until(sub { !pid_alive($victim) }, 10), "an idle serving process is killed ($victim)");
my $job4 = $s->accept_ai_job('quick3');
completed_once($job4, 'job 4, accepted after the kill');
is(waiting_backend('sv_job_store_suggestion'), $backend, "job 3's statement still waits, on the same connection");
ok(pid_alive($busy), 'in the same serving process');
ok(wait_until(sub { my @now = serving(); @now == $N && !grep { $_ == $victim } @now }, 20),
    'the launcher started another serving process in its place');
ok(wait_until(sub { launcher_connections() == $N }, 10), 'which has its connection');
is($pool->launcher_pid, $L, 'the launcher itself is the same process');
$lk->rollback;
completed_once($job3, 'job 3, the lock released');
is(used(), $used + 2, 'the quota spent once for each');
$lk->disconnect;

# --- the launcher stopped with the pool: its serving processes with it -------------
@S = serving();
$s->stop;
ok(!grep({ pid_alive($_) } $L, @S), 'a stopped pool leaves no launcher process behind');

done_testing;
