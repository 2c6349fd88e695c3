#!/usr/bin/perl
# Shared hosting: Apache 2.4 with mod_cgi and the shipped
# apache/htaccess.in as the document root's .htaccess, next to a copy of
# streamvibe-fcgi renamed streamvibe.cgi; the configuration is a file
# outside the document root named by SetEnv STREAMVIBE_CONFIG, and the
# Authorization header reaches the program through CGIPassAuth. The
# core checks of every deployment (t/lib/SV/Test/Deployment.pm) pass, a
# job accepted by a CGI process outlives it and ends with its row,
# each request is its own process, and neither the .htaccess nor the
# program file can be fetched.

use strict;
use warnings;
use Test::More;
use JSON::PP ();
use SV::Test qw(:DEFAULT write_file slurp_file);
use SV::Test::Pg;
use SV::Test::Stack;
use SV::Test::Apache;
use SV::Test::Deployment;
use SV::Test::Fake;

if (my $why = SV::Test::Apache::unavailable('cgi')) { plan skip_all => $why }
my $pg = SV::Test::Stack->new(pool => 0)->pg;

# The customer's home directory: the configuration and the log, outside
# the document root, the user's own (Apache runs CGI programs as it).
my $body_limit = 1024;
my $front_limit = 65536;
# A job accepted by a CGI process: a fake model that takes its time over
# a "slow" title, so the job is seen running after its CGI process ended.
my $ai = SV::Test::Fake->new(name => 'ai', routes => {
    'POST /v1/chat/completions' => sub {
        my ($req) = @_;
        my $slow = ($req->{json}{messages}[1]{content} // '') =~ /slow/;
        my $content = JSON::PP->new->encode({ title => 'T', description => 'D', tags => ['t'] });
        return [200, { 'Content-Type' => 'application/json' }, JSON::PP->new->encode({
            choices => [{ index => 0, message => { role => 'assistant', content => $content },
                          finish_reason => 'stop' }] }), $slow ? 3 : 0];
    },
});
my (undef, $conf, $log) = SV::Test::Apache::app_config(pg => $pg, prefix => 'svcgihome', dirs => ['jobs'],
    secret => 'apache-cgi-secret-' . 'c' x 32, settings => {
        body_limit => $body_limit, job_program => sv_builddir() . '/streamvibe-job',
        job_spool_dir => sub { "$_[0]/jobs" }, ai_base_url => $ai->url('/v1') });

# A bystander: a process of Apache's user in this test's process group,
# as another test's nginx worker (user nobody) is when make check or
# prove -j runs the suite. Apache's prefork MPM signals its whole
# process group when it stops; that must not reach beyond Apache.
my $bystander = SV::Test::spawn_process(['sleep', '300'],
    (SV::Test::Apache::run_user() ? (user => SV::Test::Apache::run_user()) : ()));
SV::Test::register_cleanup(sub { SV::Test::stop_process($bystander, signals => ['KILL'], timeout => 5) });

my $ap = SV::Test::Apache->new(mode => 'cgi', config => $conf, body_limit => $front_limit);
$ap->start;
SV::Test::Deployment::core_checks($ap, name => 'apache mod_cgi + .htaccess', cgi => 1, job => 1,
    body_limit => $body_limit, front_limit => $front_limit);

# Plain CGI: a process per request, gone once it has answered.
my $text = slurp_file($log) // '';
my %pids;
$pids{$1}++ while $text =~ /pid=(\d+) event=access /g;
my $requests = 0;
$requests += $_ for values %pids;
cmp_ok($requests, '>=', 15, "$requests requests logged");
is(scalar keys %pids, $requests, 'each by a process of its own');
is_deeply([$ap->app_pids], [], 'none of them is still running');

# The files of the document root are never served: the program's own
# name is just a path it does not know, and .htaccess and *.conf are
# refused by Apache before anything runs.
my $res = $ap->request('GET', '/streamvibe.cgi');
is($res->code, 404, 'GET /streamvibe.cgi: 404');
ok(($ap->json($res) // {})->{code}, 'from the program (JSON)');
unlike($res->content, qr/ELF/, 'not the binary');
for my $path ('/.htaccess', '/streamvibe.conf') {
    $res = $ap->request('GET', $path);
    is($res->code, 403, "GET $path: 403");
    unlike($res->content, qr/CGIPassAuth|jwt_secret/, 'nothing of the file');
}

$ap->stop;
is_deeply([$ap->left_behind], [], 'nothing of Apache\'s outlives its stop');
is(getpgrp($bystander), getpgrp(), 'the bystander shares our process group');
ok(SV::Test::pid_alive($bystander),
    'and is still running: stopping Apache signals no process of its user outside Apache');
done_testing;
