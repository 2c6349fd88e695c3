#!/usr/bin/perl
# Apache 2.4 as the pool's front through mod_proxy_fcgi, with the shipped
# apache/streamvibe-proxy-fcgi.conf.in: the core checks of every
# deployment (t/lib/SV/Test/Deployment.pm), first through nginx for
# reference, then through Apache on the same pool. Apache's kept
# connections (enablereuse) and a pool reload under it lose nothing.

use strict;
use warnings;
use Test::More;
use SV::Test;
use SV::Test::Pg;
use SV::Test::Stack;
use SV::Test::Pool;
use SV::Test::Nginx;
use SV::Test::Apache;
use SV::Test::Deployment;

if (my $why = SV::Test::Apache::unavailable('proxy_fcgi')) { plan skip_all => $why }
my $pg = SV::Test::Stack->new(pool => 0)->pg;

my $body_limit = 1024;
my $front_limit = 65536;
my $pool = SV::Test::Pool->new(pg => $pg, workers => 2,
    conf => { jwt_secret => 'apache-proxy-secret-' . ('p' x 32), body_limit => $body_limit });
$pool->start;

SKIP: {
    skip 'nginx not installed', 1 unless SV::Test::Nginx::available();
    my $ngx = SV::Test::Nginx->new(pool => $pool, conf => { body_limit => $front_limit });
    $ngx->start;
    SV::Test::Deployment::core_checks($ngx, name => 'nginx (reference)',
        body_limit => $body_limit, front_limit => $front_limit);
    $ngx->stop;
}

my $ap = SV::Test::Apache->new(mode => 'proxy_fcgi', pool => $pool, body_limit => $front_limit);
$ap->start;
SV::Test::Deployment::core_checks($ap, name => 'apache mod_proxy_fcgi',
    body_limit => $body_limit, front_limit => $front_limit);
like($pool->log, qr/event=access method=POST path=\/auth\/v1\/signup status=200/,
    'the pool served and logged the requests Apache passed on');

# A reload of the pool under Apache's kept connections fails nothing.
my (@codes, @bad);
my $get = sub {
    my $res = $ap->request('GET', '/healthz');
    push @codes, $res->code;
    push @bad, $res->status_line . ' ' . ($res->header('Client-Warning') // '') . ' ' . substr($res->content, 0, 200)
        if $res->code != 200;
};
$get->() for 1 .. 10;
$pool->reload;
$get->() for 1 .. 40;
is(scalar(grep { $_ == 200 } @codes), 50, 'through a pool reload: 50 of 50 requests 200')
    or diag "codes: @codes\n", join("\n", @bad), "\n", $ap->error_log, grep({ /status=5|level=(warn|error)/ } split /^/, $pool->log),
        grep({ /" 5\d\d / } split /^/, $ap->access_log);
unlike($ap->error_log, qr/\[proxy(?:_fcgi)?:error\]/, 'no proxy error in Apache\'s log')
    or diag $ap->error_log;

$ap->stop;
is_deeply([$ap->left_behind], [], 'nothing of Apache\'s outlives its stop');
$pool->stop;
done_testing;
