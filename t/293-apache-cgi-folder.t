#!/usr/bin/perl
# Shared hosting with the API in a folder of the customer's site
# (http://host/api/...) instead of a domain of its own: the shipped
# apache/htaccess.in and the program in DOCROOT/api, base_path = /api in
# the configuration. The core checks of every deployment pass below
# /api; the site's own pages stay Apache's; the program answers only
# below its base path (a request that reaches it from elsewhere gets a
# JSON 404), the OpenAPI document names the full base, and the access
# log the full path.

use strict;
use warnings;
use Test::More;
use SV::Test qw(:DEFAULT write_file slurp_file);
use SV::Test::Pg;
use SV::Test::Stack;
use SV::Test::Apache;
use SV::Test::Deployment;

if (my $why = SV::Test::Apache::unavailable('cgi')) { plan skip_all => $why }
my $pg = SV::Test::Stack->new(pool => 0)->pg;

my $body_limit = 1024;
my $front_limit = 65536;
my (undef, $conf, $log) = SV::Test::Apache::app_config(pg => $pg, prefix => 'svcgihome',
    secret => 'apache-cgi-folder-' . 'f' x 32, settings => { body_limit => $body_limit, base_path => '/api' });

my $ap = SV::Test::Apache->new(mode => 'cgi', subdir => 'api', config => $conf, body_limit => $front_limit);
$ap->start;
SV::Test::Deployment::core_checks($ap, name => 'apache mod_cgi + .htaccess in /api', prefix => '/api',
    body_limit => $body_limit, front_limit => $front_limit);

my $res = $ap->request('GET', '/index.html');
is($res->code, 200, "the site's own page: 200");
like($res->content, qr/the site's own page/, 'from the document root, not the program');
my $logged = () = (slurp_file($log) // '') =~ /event=access /g;
$res = $ap->request('GET', '/rest/v1/platforms');
is($res->code, 404, 'the API outside its folder: 404');
is(scalar(() = (slurp_file($log) // '') =~ /event=access /g), $logged, 'from Apache: the program did not run');

$res = $ap->request('GET', '/api/rest/v1/');
is($res->code, 200, 'GET /api/rest/v1/: the OpenAPI document');
is(($ap->json($res) // {})->{basePath}, '/api/rest/v1', 'its basePath includes the folder');

# A request that reaches the program with a path outside base_path (a
# rewrite elsewhere on the site pointing at it) is refused by the
# program itself, as a JSON 404, not served as if it were below /api.
my ($rc, $out) = SV::Test::run_command([sv_builddir() . '/streamvibe-fcgi'], merge => 1, env => {
    STREAMVIBE_CONFIG => $conf, GATEWAY_INTERFACE => 'CGI/1.1', REQUEST_METHOD => 'GET',
    REQUEST_URI => '/rest/v1/platforms?select=id', QUERY_STRING => 'select=id', REMOTE_ADDR => '127.0.0.1' });
like($out, qr/^Status: 404 /m, 'CGI with a path outside base_path: 404');
like($out, qr/"code":"PGRST125"/, 'a JSON error');
($rc, $out) = SV::Test::run_command([sv_builddir() . '/streamvibe-fcgi'], merge => 1, env => {
    STREAMVIBE_CONFIG => $conf, GATEWAY_INTERFACE => 'CGI/1.1', REQUEST_METHOD => 'GET',
    REQUEST_URI => '/api/rest/v1/platforms?select=name&name=eq.youtube', QUERY_STRING => 'select=name&name=eq.youtube',
    REMOTE_ADDR => '127.0.0.1' });
like($out, qr/^Status: 200 /m, 'the same request below base_path: 200');
like($out, qr/"name":"youtube"/, 'with the row');
my @paths = (slurp_file($log) // '') =~ /event=access .*?path=(\S+)/g;
is($paths[-1], '/api/rest/v1/platforms', 'the access log shows the path as sent, the folder included, as Apache\'s does');

$ap->stop;
is_deeply([$ap->left_behind], [], 'nothing of Apache\'s outlives its stop');
done_testing;
