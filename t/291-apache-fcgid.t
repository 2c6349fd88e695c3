#!/usr/bin/perl
# Apache 2.4 + mod_fcgid with the shipped
# apache/streamvibe-fcgid.conf.in: Apache starts streamvibe-fcgi itself
# as a FastCGI application (the listening socket on descriptor 0, the
# configuration named by FcgidInitialEnv). The core checks of every
# deployment (t/lib/SV/Test/Deployment.pm) pass, the requests are served
# by a few long-lived processes (FastCGI, not a process per request),
# and none outlives Apache.

use strict;
use warnings;
use Test::More;
use SV::Test qw(:DEFAULT write_file slurp_file pid_alive);
use SV::Test::Pg;
use SV::Test::Stack;
use SV::Test::Apache;
use SV::Test::Deployment;

if (my $why = SV::Test::Apache::unavailable('fcgid')) { plan skip_all => $why }
my $pg = SV::Test::Stack->new(pool => 0)->pg;

# The configuration, readable (and its log writable) by the user Apache
# runs the application as.
my $body_limit = 1024;
my $front_limit = 65536;
my (undef, $conf, $log) = SV::Test::Apache::app_config(pg => $pg, prefix => 'svfcgid',
    secret => 'apache-fcgid-secret-' . 'f' x 32, settings => { body_limit => $body_limit });

my $ap = SV::Test::Apache->new(mode => 'fcgid', config => $conf, body_limit => $front_limit,
    max_processes => 2);
$ap->start;
SV::Test::Deployment::core_checks($ap, name => 'apache mod_fcgid',
    body_limit => $body_limit, front_limit => $front_limit);

# FastCGI: a few processes, each serving many requests.
my @apps = $ap->app_pids;
cmp_ok(scalar @apps, '>=', 1, 'mod_fcgid runs the application: ' . scalar(@apps) . ' process(es)');
cmp_ok(scalar @apps, '<=', 2, 'no more than FcgidMaxProcessesPerClass');
my %served;
my $text = slurp_file($log) // '';
$served{$1}++ while $text =~ /pid=(\d+) event=access /g;
my $requests = 0;
$requests += $_ for values %served;
cmp_ok($requests, '>=', 15, "$requests requests logged");
cmp_ok(scalar keys %served, '<=', 2, 'by at most two processes (' . join(', ', map { "$_: $served{$_}" } sort keys %served) . ')');
unlike($ap->error_log, qr/\[fcgid:(?:error|emerg)\]/, 'no mod_fcgid error') or diag $ap->error_log;

$ap->stop;
ok(!grep({ pid_alive($_) } @apps), 'Apache\'s stop ends the application processes');
is_deeply([$ap->left_behind], [], 'nothing of Apache\'s outlives its stop');
done_testing;
