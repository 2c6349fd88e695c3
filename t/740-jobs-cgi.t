#!/usr/bin/perl
# The accept path outside the pool. Run as a plain CGI program (one
# request, then exit; configuration from STREAMVIBE_* variables), the
# binary accepts a job whose process outlives it and ends with its audit
# row; a CGI request with ?wait waits in the CGI process itself; the
# reconciler runs by hand (streamvibe-job --reconcile) where no pool
# master does. Under spawn-fcgi (a FastCGI server on an inherited socket,
# no pool) the same accept and wait work behind nginx.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use Time::HiRes ();
use SV::Test qw(sv_builddir sv_tempdir run_command wait_until pid_alive slurp_file spawn_process
    stop_process register_cleanup find_program);
use SV::Test::Nginx;
use SV::Test::Fake;
use SV::Test::Stack;

my $JSON = JSON::PP->new->canonical;
my $release = sv_tempdir(prefix => 'svrelease') . '/release';
my $ai = SV::Test::Fake->new(name => 'ai', routes => {
    'POST /v1/chat/completions' => sub {
        my ($req) = @_;
        my $text = $req->{json}{messages}[1]{content} // '';
        my $slow = $text =~ /slow/;
        # "held": answered only once the test has done with the job (it
        # is killed before then), so it cannot end on its own first.
        if ($text =~ /held/) { for (1 .. 600) { last if -e $release; Time::HiRes::sleep(0.1) } }
        my $content = $JSON->encode({ title => 'T', description => 'D', tags => ['t'] });
        return [200, { 'Content-Type' => 'application/json' }, $JSON->encode({
            choices => [{ index => 0, message => { role => 'assistant', content => $content },
                          finish_reason => 'stop' }] }), $slow ? 3 : 0];
    },
});

my $s = SV::Test::Stack->new(pool => 0);
my $pg = $s->pg;
my $secret = 'jobs-cgi-secret-' . ('c' x 32);
my $spool = sv_tempdir(prefix => 'svspool') . '/jobs';
my $log = sv_tempdir(prefix => 'svcgi') . '/cgi.log';
my %conf = (
    STREAMVIBE_DATABASE_URL => $pg->conninfo(user => 'authenticator'),
    STREAMVIBE_JWT_SECRET => $secret,
    STREAMVIBE_JOB_SPOOL_DIR => $spool,
    STREAMVIBE_JOB_PROGRAM => sv_builddir() . '/streamvibe-job',
    STREAMVIBE_AI_BASE_URL => $ai->url('/v1'),
    STREAMVIBE_LOG_FILE => $log,
    STREAMVIBE_CONFIG => undef,
);

my $A = $s->user('a@example.com');
my $h = $s->handle($A, 'alice');
my $fast = $s->content($h, 'c1', title => 'fast');
my $slow = $s->content($h, 'c2', title => 'slow');
my $held = $s->content($h, 'c3', title => 'held');
my $tok = SV::Test::jwt(secret => $secret, user => $A);

sub cgi_post {
    my ($uri, $body) = @_;
    my ($path, $query) = split /\?/, $uri, 2;
    my %env = (%conf, GATEWAY_INTERFACE => 'CGI/1.1', SERVER_PROTOCOL => 'HTTP/1.1',
        REQUEST_METHOD => 'POST', REQUEST_URI => $uri, PATH_INFO => $path, QUERY_STRING => $query // '',
        REMOTE_ADDR => '127.0.0.1', CONTENT_TYPE => 'application/json', CONTENT_LENGTH => length $body,
        HTTP_AUTHORIZATION => "Bearer $tok");
    my ($code, $out, $err) = run_command([sv_builddir() . '/streamvibe-fcgi'], env => \%env,
        stdin_data => $body, timeout => 60);
    my ($head, $json) = split /\r?\n\r?\n/, $out, 2;
    my ($status) = ($head // '') =~ /^Status: (\d+)/;
    return ($code, $status // 0, eval { $JSON->decode($json // '') }, $err);
}
sub job_rows {
    my ($job) = @_;
    return $s->su->selectall_arrayref('SELECT job_status FROM audit_log WHERE job_id = ?', undef, $job);
}

# The CGI process exits at once; its job lives on and ends on its own.
my ($code, $status, $doc, $err) = cgi_post('/functions/v1/enhance-ai', $JSON->encode({ contentId => $slow }));
is($code, 0, 'the CGI run exits 0') or diag $err;
is($status, 202, 'and answers 202') or diag explain $doc;
my $job = $doc->{job_id};
my @running = grep { (slurp_file("/proc/$_/cmdline") // '') =~ /\Q$job\E/ } map { s{^/proc/}{}r } glob('/proc/[0-9]*');
ok(@running, 'the job runs after the CGI process has exited');
ok(wait_until(sub { @{ job_rows($job) } }, 20), 'and ends');
is_deeply(job_rows($job), [['completed']], 'with one completed row');

# ?wait in a CGI process: it waits itself and answers the end.
($code, $status, $doc, $err) = cgi_post('/functions/v1/enhance-ai?wait=20', $JSON->encode({ contentId => $fast }));
is($status, 200, 'a CGI accept with wait answers once the job ended') or diag explain $doc, $err;
is($doc->{success}, JSON::PP::true, "with the document's {success, result}");

# Where no pool master reconciles, an operator runs the reconciler.
($code, $status, $doc) = cgi_post('/functions/v1/enhance-ai', $JSON->encode({ contentId => $held }));
$job = $doc->{job_id};
my ($sup) = grep { my $c = slurp_file("/proc/$_/cmdline") // ''; $c =~ /\Q$job\E/ && $c =~ /--lock-fd/ }
    map { s{^/proc/}{}r } glob('/proc/[0-9]*');
ok($sup, 'a job runs');
kill 'KILL', -$sup;
ok(wait_until(sub { !pid_alive($sup) }, 5), 'its process group is killed');
is_deeply(job_rows($job), [], 'nothing ended it yet');
my ($rc, $out, $e2) = run_command([sv_builddir() . '/streamvibe-job', '--reconcile'], env => \%conf, timeout => 30);
is($rc, 0, 'streamvibe-job --reconcile runs') or diag $e2;
is_deeply(job_rows($job), [['interrupted']], 'and finishes the job as interrupted');
ok(!-e "$spool/$job.job", 'removing its descriptor');
($rc) = run_command([sv_builddir() . '/streamvibe-job', '--reconcile'], env => \%conf, timeout => 30);
is_deeply(job_rows($job), [['interrupted']], 'a second run changes nothing');
SV::Test::write_file($release, '');

# --- spawn-fcgi ------------------------------------------------------------------
SKIP: {
    my $spawn = find_program('spawn-fcgi') or skip 'spawn-fcgi not installed', 3;
    my $dir = sv_tempdir();
    my $sock = "$dir/sv.sock";
    my $pid = spawn_process([$spawn, '-n', '-s', $sock, '-M', '0666', '--', sv_builddir() . '/streamvibe-fcgi'],
        stdout => "$dir/spawn.log", stderr => "$dir/spawn.log", env => \%conf);
    register_cleanup(sub { stop_process($pid, signals => ['TERM', 'KILL'], timeout => 5, children => 1) });
    ok(wait_until(sub { -S $sock }, 10), 'spawn-fcgi socket is up');
    my $ngx = SV::Test::Nginx->new(conf => { socket => $sock });
    $ngx->start;
    my ($res, $d) = $ngx->call('POST', '/functions/v1/enhance-ai?wait=20', token => $tok, body => { contentId => $fast });
    is($res->code, 200, 'under spawn-fcgi an accept with wait answers the end') or diag $res->as_string;
    is_deeply(job_rows($d->{job_id}), [['completed']], 'and the job has its row');
    $ngx->stop;
    stop_process($pid, signals => ['TERM', 'KILL'], timeout => 10);
}

done_testing;
