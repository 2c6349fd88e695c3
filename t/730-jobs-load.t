#!/usr/bin/perl
# Under load: 200 accepts at once across all workers keep the per-user and
# the per-host caps exactly; 200 clients waiting on jobs (?wait) hold no
# worker, so /healthz and REST reads go on answering meanwhile, and every
# waiter gets its job's end; no zombie, no descriptor leaked.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use LWP::UserAgent;
use SV::Test qw(sv_builddir sv_tempdir wait_until slurp_file run_parallel);
use SV::Test::Fake;
use SV::Test::Stack;

my $JSON = JSON::PP->new->canonical;
my $hold = sv_tempdir(prefix => 'svhold') . '/release';
# The model answers once the test creates the file $hold (at most 300 s).
my $ai = SV::Test::Fake->new(name => 'ai', routes => {
    'POST /v1/chat/completions' => sub {
        for (1 .. 3000) { last if -e $hold; select(undef, undef, undef, 0.1) }
        my $content = $JSON->encode({ title => 'T', description => 'D', tags => ['t'] });
        return [200, { 'Content-Type' => 'application/json' }, $JSON->encode({
            choices => [{ index => 0, message => { role => 'assistant', content => $content },
                          finish_reason => 'stop' }] })];
    },
});

my $spool = sv_tempdir(prefix => 'svspool') . '/jobs';
# Waits long enough for 200 clients to arrive on a slow machine (the
# nginx read timeout follows).
my $s = SV::Test::Stack->new(workers => 4, nginx_conf => { read_timeout => '330s' }, conf => {
    jwt_secret => 'jobs-load-secret-' . ('l' x 32), job_spool_dir => $spool, job_wait_max => 300,
    job_program => sv_builddir() . '/streamvibe-job', job_max_running_per_user => 3,
    job_max_running_per_host => 1000, ai_base_url => $ai->url('/v1'),
    # The jobs wait for the model as long as the test may take to park
    # its 200 waiters (not http_timeout's 30 s nor the AI jobs' 120 s).
    http_timeout => 330, job_time_limit_ai => 330 });
my ($ngx, $pool) = ($s->ngx, $s->pool);

my (@users, %content, %token);
for my $i (1 .. 10) {
    my $u = $s->user("u$i\@example.com");
    $s->su->do('UPDATE subscription_settings SET max_ai_per_month = 1000 WHERE user_id = ?', undef, $u);
    my $h = $s->handle($u, "user$i");
    $content{$u} = [map { $s->content($h, "c$_", title => "video $_") } 1 .. 3];
    $token{$u} = $s->jwt(user => $u);
    push @users, $u;
}
my $reader = $users[0];

# Descriptors of the workers that point into the spool: a job's
# descriptor must not stay open in the worker that accepted it.
sub spool_fds_of_workers {
    my $n = 0;
    for my $w ($pool->worker_pids) {
        $n += grep { (readlink($_) // '') =~ /^\Q$spool\E/ } glob("/proc/$w/fd/*");
    }
    return $n;
}
sub burst {
    # 200 accepts: each of 40 processes sends 5, for users in turn.
    my @codes = run_parallel(40, sub {
        my ($i) = @_;
        my $ua = LWP::UserAgent->new(timeout => 30, keep_alive => 1);
        my @got;
        for my $k (0 .. 4) {
            my $u = $users[($i * 5 + $k) % @users];
            my $res = $ngx->call('POST', '/functions/v1/enhance-ai', token => $token{$u}, ua => $ua,
                body => { contentId => $content{$u}[$k % 3] });
            push @got, $res->code . ':' . $u;
        }
        return join ',', @got;
    });
    my (%accepted, %other);
    for (map { split /,/ } @codes) {
        my ($code, $u) = split /:/;
        if ($code == 202) { $accepted{$u}++ } else { $other{$code}++ }
    }
    return (\%accepted, \%other);
}
sub running_jobs { scalar $s->su->selectrow_array(q{SELECT count(*) FROM quota_usage_history h WHERE h.job_id IS NOT NULL
    AND h.amount > 0 AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.job_id = h.job_id)}) }
sub release_and_drain {
    SV::Test::write_file($hold, 'go');
    ok(wait_until(sub { running_jobs() == 0 && !(my @d = glob("$spool/*.job")) }, 60), 'every job ended');
    unlink $hold;
}

# --- the per-user cap ------------------------------------------------------------
my ($accepted, $other) = burst();
is(scalar(keys %$accepted), 10, 'every user got jobs accepted');
is(scalar(grep { $_ != 3 } values %$accepted), 0, 'each user exactly 3 (job_max_running_per_user)')
    or diag explain $accepted, $s->su->selectall_arrayref(
        'SELECT job_status, job_error FROM audit_log WHERE job_id IS NOT NULL');
is_deeply([keys %$other], ['429'], 'the rest were 429') or diag explain $other;
is(running_jobs(), 30, '30 jobs running');
is(scalar(my @d = glob("$spool/*.job")), 30, '30 descriptors in the spool');

# --- waiting clients hold no worker ---------------------------------------------------
my @jobs = @{ $s->su->selectall_arrayref(q{SELECT job_id, user_id FROM quota_usage_history h
    WHERE job_id IS NOT NULL AND amount > 0
      AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.job_id = h.job_id)}) };
my $waiters = fork // die;
if ($waiters == 0) {
    my @answers = run_parallel(200, sub {
        my ($i) = @_;
        my ($job, $owner) = @{ $jobs[$i % @jobs] };
        my ($res, $doc) = $ngx->call('GET', "/functions/v1/jobs/$job?wait=300", token => $token{$owner},
            ua => LWP::UserAgent->new(timeout => 400));
        return $res->code . ':' . ($doc->{status} // '-');
    });
    SV::Test::write_file("$hold.answers", join("\n", @answers));
    POSIX::_exit(0);
}
# The status page counts the requests parked on a job, held by no worker.
my $status_path = '/status';
sub pool_status { $ngx->json($ngx->call('GET', $status_path)) // {} }
ok(wait_until(sub { (pool_status()->{parked_requests} // 0) == 200 }, 250),
    'all 200 waiting requests are parked') or diag explain pool_status();
my ($ok_health, $ok_rest) = (0, 0);
for (1 .. 20) {
    $ok_health++ if $ngx->call('GET', '/healthz')->code == 200;
    my ($res, $doc) = $ngx->call('GET', '/rest/v1/handle_content?select=id&limit=1', token => $token{$reader});
    $ok_rest++ if $res->code == 200 && ref $doc eq 'ARRAY';
}
is($ok_health, 20, '/healthz answers while 200 clients wait on jobs');
is($ok_rest, 20, 'and so do REST reads');
my $st = pool_status();
is($st->{parked_requests}, 200, 'they stay parked meanwhile');
is($st->{active_processes}, 1, 'and no worker is busy but the one answering this');

release_and_drain();
waitpid $waiters, 0;
my @answers = split /\n/, slurp_file("$hold.answers") // '';
is(scalar @answers, 200, 'every waiter got an answer');
is(scalar(grep { $_ eq '200:completed' } @answers), 200, "each with its job's end") or diag explain \@answers;

# --- the per-host cap -----------------------------------------------------------------
my $off = $pool->log_offset;
$pool->conf(job_max_running_per_host => 20);
$pool->reload;
ok($pool->wait_log(qr/event=reload generation=2/, 10, from => $off), 'reloaded with a host cap of 20');
sleep 1;
($accepted, $other) = burst();
my $total = 0;
$total += $_ for values %$accepted;
is($total, 20, 'exactly 20 accepted on the host (job_max_running_per_host)') or diag explain $accepted;
is(scalar(grep { $_ > 3 } values %$accepted), 0, 'and no user over 3');
release_and_drain();

# --- nothing left behind -----------------------------------------------------------------
my @workers = $pool->worker_pids;
my @zombies = grep { my $st2 = slurp_file("/proc/$_/stat") // ''; $st2 =~ /\)\s+Z\s+(\d+)/ && grep { $_ == $1 } @workers }
    map { s{^/proc/}{}r } glob('/proc/[0-9]*');
is(scalar @zombies, 0, 'no zombie');
is(spool_fds_of_workers(), 0, 'no worker kept a descriptor of the spool open');
is(scalar $s->su->selectrow_array('SELECT count(*) FROM audit_log WHERE job_id IS NOT NULL'), 50,
    'one audit row per accepted job (30 + 20)');

$s->stop;
done_testing;
