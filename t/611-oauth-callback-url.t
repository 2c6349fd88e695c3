#!/usr/bin/perl
# The OAuth callback URL without api_external_url: built from the
# request, http://<Host as the client sent it><base_path>/functions/v1/
# oauth/<platform>/callback, through nginx at the host's root and with
# base_path = /api. The provider gets it as redirect_uri at /authorize
# and again with the code exchange, and the browser comes back to it. A
# Host header that is more than a host[:port] ("app@evil", '?', '#')
# would make the URL point elsewhere than it reads: 400 invalid_host,
# nothing recorded.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use URI;
use URI::Escape qw(uri_escape);
use FindBin;
use lib "$FindBin::Bin/fake";
use FakeOAuth;
use SV::Test qw(:DEFAULT vault_key);
use SV::Test::Stack;

my ($vault_key) = vault_key();
my $fake = FakeOAuth->new(client_id => 'cb-client', client_secret => 'cb-client-secret');
my %conf = (jwt_secret => 'oauth-callback-url-' . ('u' x 32), vault_key_file => $vault_key,
    oauth_http_timeout => 3, site_url => 'https://app.example.com/home', $fake->conf(qw(youtube)));
my $s = SV::Test::Stack->new(workers => 2, conf => { %conf });
my ($ngx, $su) = ($s->ngx, $s->su);
my $port = $ngx->port;

my $A = $s->user('a@example.com');
my %A = %{ $s->auth($A) };
sub q_of { my %q = URI->new($_[0])->query_form; \%q }
sub flows { scalar $su->selectrow_array(q{SELECT count(*) FROM auth.platform_oauth_flows}) }
sub creds { scalar $su->selectrow_array(q{SELECT count(*) FROM platform_credentials}) }

# The whole flow from $path on $srv: the redirect_uri at /authorize, at
# the code exchange, and where the browser ends.
sub flow {
    my ($srv, $path, $name, $want) = @_;
    $su->do(q{DELETE FROM platform_credentials});
    my $before = () = $fake->exchange_redirect_uris;
    my ($final, $hops) = FakeOAuth::browse($srv, $path, \%A);
    is($final, 'https://app.example.com/home?connected=youtube', "$name: the flow ends on the app, connected")
        or diag explain [map { [$_->[0], $_->[1]] } @$hops];
    is(q_of($hops->[0][2]->header('Location') // '')->{redirect_uri}, $want, "$name: redirect_uri at /authorize");
    is($hops->[2][1] =~ s/\?.*//r, $want, "$name: the provider sends the browser back to it");
    my @ex = $fake->exchange_redirect_uris;
    is_deeply([@ex[$before .. $#ex]], [$want], "$name: the same redirect_uri with the code exchange");
    is(creds(), 1, "$name: the credential is stored");
}

# What /start puts in the authorize URL for a request with Host: $host.
sub redirect_uri_for_host {
    my ($srv, $path, $host) = @_;
    my $res = $srv->request('GET', "$path?skip_http_redirect=true", headers => { %A, Host => $host });
    return ($res, $res->code == 200 ? q_of(decode_json($res->content)->{url})->{redirect_uri} : undef);
}

# --- at the host's root --------------------------------------------------------------
flow($ngx, '/functions/v1/oauth/youtube/start', 'no base_path',
     "http://127.0.0.1:$port/functions/v1/oauth/youtube/callback");
for my $case (["localhost:$port", "http://localhost:$port"], ['api.example.test', 'http://api.example.test'],
              ['API.Example.test:8443', 'http://API.Example.test:8443'], ["[::1]:$port", "http://[::1]:$port"]) {
    my ($host, $base) = @$case;
    my ($res, $uri) = redirect_uri_for_host($ngx, '/functions/v1/oauth/youtube/start', $host);
    is($uri, "$base/functions/v1/oauth/youtube/callback", "Host: $host: the host and port as the client sent them")
        or diag $res->as_string;
}
my ($res, $uri) = $ngx->request('GET', '/functions/v1/oauth/youtube/start?skip_http_redirect=true',
    headers => { %A, 'X-Forwarded-Host' => 'evil.example', 'Forwarded' => 'host=evil.example' });
is(q_of(decode_json($res->content)->{url})->{redirect_uri}, "http://127.0.0.1:$port/functions/v1/oauth/youtube/callback",
   'X-Forwarded-Host and Forwarded are not read');

# A Host that is not just host[:port] (nginx passes these on).
$su->do(q{DELETE FROM auth.platform_oauth_flows});
for my $host ('app.example.com@evil.example', "app.example.com\@evil.example:$port", 'evil.example?x=',
              'evil.example#', 'evil.example\\', 'evil.example:', 'evil.example:123456', 'evil.example:65536', 'evil.example:80x',
              '[::1', '[evil.example]', 'a,b') {
    my ($r) = redirect_uri_for_host($ngx, '/functions/v1/oauth/youtube/start', $host);
    my $code = $r->code == 400 && eval { decode_json($r->content)->{code} };
    is($code, 'invalid_host', "Host: $host: 400 invalid_host") or diag $r->as_string;
}
is(flows(), 0, 'no flow recorded for any of them');

# --- below base_path, through nginx ---------------------------------------------------
# nginx's "location /" passes /api/... on as it is (REQUEST_URI), and the
# pool takes base_path off.
my $b = SV::Test::Stack->new(pg => $s->pg, workers => 1, conf => { %conf, base_path => '/api' });
my $bport = $b->ngx->port;
($res) = $b->ngx->request('GET', '/functions/v1/oauth/youtube/start', headers => \%A);
is($res->code, 404, 'base_path /api: the path without it is 404');
flow($b->ngx, '/api/functions/v1/oauth/youtube/start', 'base_path /api',
     "http://127.0.0.1:$bport/api/functions/v1/oauth/youtube/callback");
($res, $uri) = redirect_uri_for_host($b->ngx, '/api/functions/v1/oauth/youtube/start', 'api.example.test');
is($uri, 'http://api.example.test/api/functions/v1/oauth/youtube/callback', 'base_path /api: with the Host sent');

$b->stop;
$s->stop;
done_testing;
