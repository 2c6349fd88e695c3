#!/usr/bin/perl
# The OAuth authorization-code flow end to end: a browser-like client
# calls /functions/v1/oauth/<platform>/start with the app's headers and
# follows the redirects (the fake provider approves at once and sends it
# back to /callback, which exchanges the code with PKCE and sends it to
# the app with ?connected=<platform>). A replayed, expired, foreign or
# forged state is refused; redirect_to must be on the allow-list; a
# denial, a refused code, a failing or slow token endpoint each bring
# the browser back to the app with ?error=<reason> and store nothing.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use URI;
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64url decode_base64url);
use Time::HiRes qw(time);
use FindBin;
use lib "$FindBin::Bin/fake";
use FakeOAuth;
use SV::Test qw(:DEFAULT run_command vault_key);
use SV::Test::Stack;

my ($vault_key) = vault_key();
my $fake = FakeOAuth->new(client_id => 'flow-client', client_secret => 'flow-client-secret');
my $secret = 'oauth-flow-secret-' . ('o' x 32);
my $port = free_tcp_port();
my $s = SV::Test::Stack->new(workers => 2, nginx_port => $port, conf => { jwt_secret => $secret,
    vault_key_file => $vault_key, oauth_http_timeout => 2, api_external_url => "http://127.0.0.1:$port",
    site_url => 'https://app.example.com/home', redirect_allow_list => 'https://app.example.com/welcome, http://localhost:3000',
    $fake->conf(qw(youtube tiktok)) });
my ($pg, $pool, $ngx, $su) = ($s->pg, $s->pool, $s->ngx, $s->su);
my $JSON = JSON::PP->new->canonical;

my $anon = $s->jwt(role => 'anon');
my $A = $s->user('a@example.com');
my $B = $s->user('b@example.com');
my %A = %{ $s->auth($A) };
my %B = %{ $s->auth($B) };
sub q_of { my %q = URI->new($_[0])->query_form; \%q }
sub creds { scalar $su->selectrow_array(q{SELECT count(*) FROM platform_credentials}) }
sub flows { scalar $su->selectrow_array(q{SELECT count(*) FROM auth.platform_oauth_flows}) }
sub start { my ($p, $rt, %h) = @_; $ngx->request('GET', "/functions/v1/oauth/$p/start" . (defined $rt ? '?redirect_to=' . URI::Escape::uri_escape($rt) : ''), headers => { %A, %h }) }
require URI::Escape;

# --- the whole flow ---------------------------------------------------------------
my ($final, $hops) = FakeOAuth::browse($ngx, '/functions/v1/oauth/youtube/start?redirect_to=' .
    URI::Escape::uri_escape('https://app.example.com/welcome'), \%A);
is($final, 'https://app.example.com/welcome?connected=youtube', 'the browser lands on the app with ?connected=youtube')
    or diag explain [map { [$_->[0], $_->[1]] } @$hops];
is(scalar @$hops, 3, 'start -> provider -> callback');
is($hops->[0][0], 302, 'start answers 302');
my $authz = $hops->[0][2]->header('Location');
like($authz, qr/^\Q@{[$fake->url('\/authorize')]}\E\?/, "to the provider's authorize URL");
my $q = q_of($authz);
is($q->{response_type}, 'code', 'response_type=code');
is($q->{client_id}, 'flow-client', 'client_id');
is($q->{redirect_uri}, $ngx->url('/functions/v1/oauth/youtube/callback'), 'redirect_uri is our callback (api_external_url)');
is($q->{scope}, 'https://www.googleapis.com/auth/youtube.readonly', "scope: YouTube's read-only scope by default");
is($q->{code_challenge_method}, 'S256', 'PKCE S256');
like($q->{code_challenge}, qr/^[A-Za-z0-9_-]{43}$/, 'a code challenge');
is($q->{access_type}, 'offline', "Google's offline access (a refresh token)");
like($q->{state}, qr/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'a signed state');
is($hops->[2][0], 302, 'the callback redirects');
is_deeply([$fake->calls('authorization_code')], ['ok'], 'the code was exchanged once, PKCE verified by the provider');
like(join(' ', $fake->requests), qr{POST /token ua=streamvibe/}, 'with our User-Agent');

my ($res) = $ngx->request('GET', '/functions/v1/credentials', headers => \%A);
my $list = decode_json($res->content);
is($list->[0]{platform}, 'youtube', 'A is connected to YouTube');
ok($list->[0]{has_refresh_token} && $list->[0]{is_active}, 'with a refresh token, active');
ok($list->[0]{last_verified_at}, 'verified now');
is_deeply($list->[0]{scopes}, ['https://www.googleapis.com/auth/youtube.readonly'], 'scopes granted');
my @issued = $fake->tokens;
is(scalar @issued, 2, 'the provider issued an access and a refresh token');
my ($row) = $su->selectrow_array(q{SELECT encrypted_access_token || encrypted_refresh_token FROM platform_credentials WHERE user_id = ?}, undef, $A);
unlike($row, qr/\Q$_\E/, 'the row does not hold the token in clear') for @issued;
is(flows(), 0, 'the flow row is consumed');
my ($vsealed) = 1;

# --- replay ---------------------------------------------------------------------------
my $callback = $hops->[2][1];
my $calls = () = $fake->calls;
$res = $ngx->request('GET', substr($callback, length $ngx->url('')));
is($res->code, 400, 'the same callback again (replay): 400');
is(decode_json($res->content)->{code}, 'invalid_state', 'invalid_state');
is(scalar(() = $fake->calls), $calls, 'no second code exchange');

# --- skip_http_redirect, tiktok, site_url as default ------------------------------------------
$res = $ngx->request('GET', '/functions/v1/oauth/tiktok/start?skip_http_redirect=true', headers => \%A);
is($res->code, 200, 'skip_http_redirect=true: 200');
my $url = decode_json($res->content)->{url};
$q = q_of($url);
is($q->{client_key}, 'flow-client', "TikTok's client_key");
ok(!exists $q->{client_id}, 'no client_id');
ok(!exists $q->{code_challenge}, 'no PKCE for TikTok web (off by default)');
is($q->{scope}, 'user.info.basic,video.list', "TikTok's comma separated scopes");
my $ua = LWP::UserAgent->new(max_redirect => 0);
$res = $ua->get($url);
my $back = $res->header('Location');
$res = $ua->get($back);
is($res->header('Location'), 'https://app.example.com/home?connected=tiktok', 'no redirect_to: back to site_url');
is(creds(), 2, 'A has two credentials');

# --- expired state --------------------------------------------------------------------------------
$res = start('youtube', 'https://app.example.com/welcome');
my $loc = $res->header('Location');
$su->do(q{UPDATE auth.platform_oauth_flows SET expires_at = now() - interval '1 second'});
$res = $ua->get($loc);
$calls = () = $fake->calls;
$res = $ua->get($res->header('Location'));
is($res->code, 302, 'an expired state goes back to the app');
is($res->header('Location'), 'https://app.example.com/welcome?error=expired_state', 'with error=expired_state');
is(scalar(() = $fake->calls), $calls, 'without exchanging the code');

# --- foreign and forged states ------------------------------------------------------------------
$res = start('tiktok', 'https://app.example.com/welcome');
my $tq = q_of($ua->get($res->header('Location'))->header('Location'));
$res = $ngx->request('GET', "/functions/v1/oauth/youtube/callback?code=$tq->{code}&state=$tq->{state}");
is($res->code, 400, "a TikTok flow's state at YouTube's callback: 400");
is(decode_json($res->content)->{code}, 'invalid_state', 'invalid_state');
$res = $ngx->request('GET', "/functions/v1/oauth/tiktok/callback?code=$tq->{code}&state=$tq->{state}");
is($res->header('Location'), 'https://app.example.com/welcome?connected=tiktok', 'the same state still works where it belongs (it was not consumed)');
my ($p64, $m64) = split /\./, $tq->{state};
my $payload = decode_base64url($p64);
my $forged = encode_base64url($payload) . '.' . encode_base64url(hmac_sha256($payload, 'another server'));
$res = $ngx->request('GET', "/functions/v1/oauth/tiktok/callback?code=x&state=$forged");
is($res->code, 400, "a state signed by another server's key: 400");
substr($payload, 0, 1) = chr(ord(substr($payload, 0, 1)) ^ 1);
$res = $ngx->request('GET', '/functions/v1/oauth/tiktok/callback?code=x&state=' . encode_base64url($payload) . ".$m64");
is($res->code, 400, 'a tampered state: 400');
for my $bad ('', 'x', 'a.b', ('A' x 600) . '.B', '..', "$p64.") {
    $res = $ngx->request('GET', '/functions/v1/oauth/tiktok/callback?code=x&state=' . URI::Escape::uri_escape($bad));
    is($res->code, 400, "state '" . substr($bad, 0, 12) . "': 400");
}
$res = $ngx->request('GET', '/functions/v1/oauth/tiktok/callback?code=x');
is($res->code, 400, 'no state: 400');

# A flow started by B is B's, whoever's browser finishes it.
($final) = FakeOAuth::browse($ngx, '/functions/v1/oauth/youtube/start', \%B);
is($final, 'https://app.example.com/home?connected=youtube', 'B connects');
is($su->selectrow_array(q{SELECT count(*) FROM platform_credentials WHERE user_id = ?}, undef, $B), 1,
    "the credential is B's (the state names the user who started)");

# --- redirect_to ---------------------------------------------------------------------------------------
my $before = flows();
for my $bad ('https://evil.example.com/', 'https://app.example.com.evil.com/welcome', 'https://app.example.com@evil.com/welcome',
             '//evil.com/welcome', 'javascript:alert(1)', 'https://app.example.com/welcomeX', 'http://app.example.com/welcome',
             'https://app.example.com:8443/welcome', "https://app.example.com/welcome\r\nSet-Cookie: x=1",
             'https://app.example.com\\@evil.com/welcome', 'https://evil.com/https://app.example.com/welcome', 'data:text/html,hi',
             'https://app.example.com/welcome/../../evil') {
    $res = start('youtube', $bad);
    my $ok = $res->code == 400 && decode_json($res->content)->{code} eq 'invalid_redirect';
    if ($bad =~ m{/welcome/\.\./}) {
        # A path below /welcome as the browser would send it; whatever the app
        # does with dots is the app's: it stays on app.example.com.
        ok($res->code == 302 || $ok, "redirect_to $bad: on the app's host or refused");
        next;
    }
    ok($ok, "redirect_to $bad: 400 invalid_redirect") or diag $res->content;
}
is(flows(), $before + 1, 'no flow recorded for a refused redirect_to');
$su->do(q{DELETE FROM auth.platform_oauth_flows});
($final) = FakeOAuth::browse($ngx, '/functions/v1/oauth/youtube/start?redirect_to=' .
    URI::Escape::uri_escape('https://app.example.com/welcome/done?tab=2#top'), \%A);
is($final, 'https://app.example.com/welcome/done?tab=2&connected=youtube#top', 'a path below an entry, query and fragment kept');
($final) = FakeOAuth::browse($ngx, '/functions/v1/oauth/youtube/start?redirect_to=' .
    URI::Escape::uri_escape('http://localhost:3000/settings'), \%A);
is($final, 'http://localhost:3000/settings?connected=youtube', 'another allow-list entry (a dev server)');

# --- what the provider says ------------------------------------------------------------------------------
my $creds = creds();
for my $case ([{ authorize => 'deny' }, 'access_denied', 'the user denies'],
              [{ token => 'invalid_grant' }, 'invalid_grant', 'the provider refuses the code'],
              [{ token => '500' }, 'temporarily_unavailable', 'the token endpoint fails'],
              [{ delay => 4 }, 'temporarily_unavailable', 'the token endpoint is slower than oauth_http_timeout (2 s)']) {
    my ($mode, $err, $name) = @$case;
    $fake->mode(%$mode);
    my $t0 = time;
    ($final) = FakeOAuth::browse($ngx, '/functions/v1/oauth/youtube/start?redirect_to=https://app.example.com/welcome', \%A);
    my $took = time - $t0;
    is($final, "https://app.example.com/welcome?error=$err", "$name: back to the app with error=$err");
    ok($took < 3.9, sprintf('%s: answered in %.1f s', $name, $took)) if $mode->{delay};
}
$fake->mode();
is(creds(), $creds, 'none of them stored anything');
$res = $ngx->request('GET', '/functions/v1/oauth/youtube/callback?error=access_denied&state=x');
is($res->code, 400, 'an error with a bad state is still a 400');

# --- who may start -----------------------------------------------------------------------------------------
$res = $ngx->request('GET', '/functions/v1/oauth/youtube/start', headers => { apikey => $anon });
is($res->code, 401, 'start without a user token: 401');
$res = start('instagram', 'https://app.example.com/welcome');
is($res->code, 503, 'instagram without a client id: 503');
is(decode_json($res->content)->{code}, 'oauth_not_configured', 'oauth_not_configured');
$res = start('myspace', 'https://app.example.com/welcome');
is($res->code, 404, 'an unknown platform: 404');
$res = $ngx->request('POST', '/functions/v1/oauth/youtube/start', headers => \%A);
is($res->code, 405, 'POST start: 405');

unlike($pool->log, qr/code-[0-9a-f]{24}|fake-[ar]t-/, 'no code or token in the pool log');
$ngx->stop;
$pool->stop;
done_testing;
