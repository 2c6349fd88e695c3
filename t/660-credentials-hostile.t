#!/usr/bin/perl
# Hostile input to /functions/v1/credentials and the OAuth routes: each
# gets a clear JSON error ({"error","code"}, 4xx), changes nothing, and
# leaves the workers serving. A user id in the body never makes a
# credential someone else's.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use SV::Test qw(:DEFAULT run_command vault_key);
use SV::Test::Stack;

my ($vault_key) = vault_key();
my $secret = 'hostile-secret-' . ('h' x 32);
my $s = SV::Test::Stack->new(workers => 2, conf => {
    jwt_secret => $secret, vault_key_file => $vault_key, rate_limit_functions => 'off',
    redirect_allow_list => 'https://app.example.com', oauth_youtube_client_id => 'cid',
    oauth_youtube_client_secret => 'csecret' });
my ($pg, $pool, $ngx, $su) = ($s->pg, $s->pool, $s->ngx, $s->su);

my $A = $s->user('a@example.com');
my $B = $s->user('b@example.com');
my %A = %{ $s->auth($A) };

sub rows { scalar $su->selectrow_array(q{SELECT count(*) FROM platform_credentials}) }
sub hostile {
    my ($method, $path, $body, $name, $want) = @_;
    my $before = rows();
    my $res = $ngx->request($method, $path, headers => \%A, defined $body ? (body => $body) : ());
    my $code = $res->code;
    if ($want) {
        is($code, $want, "$name: $want");
    } else {
        ok($code >= 400 && $code < 500, "$name: 4xx ($code)") or diag substr($res->as_string, 0, 400);
    }
    my $doc = eval { decode_json($res->content) };
    if (($res->header('Content-Type') // '') !~ /json/) {
        ok($code == 400 || $code == 413 || $code == 414, "$name: refused by nginx ($code)");
    } elsif ($path !~ m{^/functions/v1/(credentials|oauth/[^/]+/(start|callback))}) {
        ok(ref $doc eq 'HASH' && defined $doc->{message}, "$name: a JSON error (transport errors speak PostgREST's dialect)");
    } else {
        ok(ref $doc eq 'HASH' && defined $doc->{error} && defined $doc->{code}, "$name: {error, code}")
            or diag substr($res->content, 0, 300);
    }
    is(rows(), $before, "$name: nothing stored");
    return $doc;
}
my $C = '/functions/v1/credentials';
my $tok = 'ya29.hostile-' . ('t' x 20);

hostile(POST => $C, '', 'empty body', 400);
hostile(POST => $C, '{"platform": "youtube", "access_token": ', 'truncated JSON', 400);
hostile(POST => $C, '[1, 2]', 'an array', 400);
hostile(POST => $C, '"youtube"', 'a string', 400);
hostile(POST => $C, ('[' x 5000) . (']' x 5000), 'deeply nested JSON', 400);
hostile(POST => $C, "{\"platform\": \"youtube\", \"access_token\": \"a\\u0000b\"}", 'a NUL in the token', 400);
hostile(POST => $C, "{\"platform\": \"youtube\", \"access_token\": \"\xff\xfe\"}", 'invalid UTF-8', 400);
hostile(POST => $C, encode_json({ access_token => $tok }), 'no platform', 400);
hostile(POST => $C, encode_json({ platform => 'myspace', access_token => $tok }), 'unknown platform', 400);
hostile(POST => $C, encode_json({ platform => 'YouTube', access_token => $tok }), 'platform in capitals', 400);
hostile(POST => $C, encode_json({ platform => "youtube'; drop table platforms; --", access_token => $tok }), 'SQL as platform', 400);
hostile(POST => $C, encode_json({ platform => ['youtube'], access_token => $tok }), 'platform not a string', 400);
hostile(POST => $C, encode_json({ platform => 'youtube' }), 'no access_token', 400);
hostile(POST => $C, encode_json({ platform => 'youtube', access_token => '' }), 'empty access_token', 400);
hostile(POST => $C, encode_json({ platform => 'youtube', access_token => 12345 }), 'access_token a number', 400);
hostile(POST => $C, encode_json({ platform => 'youtube', access_token => 'has space' }), 'a space in the token', 400);
hostile(POST => $C, encode_json({ platform => 'youtube', access_token => "line\nbreak" }), 'a newline in the token', 400);
hostile(POST => $C, encode_json({ platform => 'youtube', access_token => $tok, refresh_token => {} }), 'refresh_token an object', 400);
hostile(POST => $C, encode_json({ platform => 'youtube', access_token => 'x' x 8193 }), 'a token over 8 KiB', 400);
my $mb = hostile(POST => $C, encode_json({ platform => 'youtube', access_token => 'x' x 1_000_000 }), 'a 1 MB token', 400);
like($mb->{error} // '', qr/longer than/, '1 MB token: says it is too long');
hostile(POST => $C, encode_json({ platform => 'youtube', access_token => 'x' x 1_100_000 }), 'a body over body_limit', 413);
hostile(POST => $C, encode_json({ platform => 'youtube', access_token => $tok, expires_at => 'soon' }), 'expires_at not a time', 400);
hostile(POST => $C, encode_json({ platform => 'youtube', access_token => $tok, expires_at => -5 }), 'negative expires_at', 400);
hostile(POST => $C, encode_json({ platform => 'youtube', access_token => $tok, expires_at => [] }), 'expires_at an array', 400);
hostile(POST => $C, encode_json({ platform => 'youtube', access_token => $tok, expires_in => 'x' }), 'expires_in a string', 400);
hostile(POST => $C, encode_json({ platform => 'youtube', access_token => $tok, scopes => 5 }), 'scopes a number', 400);
hostile(POST => $C, encode_json({ platform => 'youtube', access_token => $tok, scopes => [1] }), 'scopes of numbers', 400);
hostile(POST => $C, encode_json({ platform => 'youtube', access_token => $tok, scopes => ['a' x 300] }), 'a 300-byte scope', 400);
hostile(POST => $C, encode_json({ platform => 'youtube', access_token => $tok, scopes => [map { "s$_" } 1 .. 100] }), '100 scopes', 400);
hostile(POST => $C, encode_json({ platform => 'youtube', access_token => $tok, platform_user_id => 'u' x 300 }), 'long platform_user_id', 400);
hostile(DELETE => "$C/..%2F..%2Fetc", undef, 'path tricks in DELETE', 404);
hostile(DELETE => "$C/" . ('y' x 40), undef, 'a 40-character platform', 404);
hostile(DELETE => "$C/you%00tube", undef, 'a NUL in the path');
hostile(GET => '/functions/v1/oauth/myspace/start?redirect_to=https://app.example.com/', undef, 'OAuth for an unknown platform', 404);
hostile(GET => '/functions/v1/oauth/YouTube/start?redirect_to=https://app.example.com/', undef, 'OAuth platform in capitals', 404);
hostile(GET => '/functions/v1/oauth/youtube/start?redirect_to=' . 'https://app.example.com/' . ('a' x 2100), undef, 'a 2100-byte redirect_to', 400);
hostile(GET => '/functions/v1/oauth/youtube/callback?state=' . ('A' x 3000) . '&code=x', undef, 'a 3000-byte state', 400);
hostile(GET => '/functions/v1/oauth/youtube/callback?state=%ff%fe.%00&code=%ff', undef, 'binary state and code', 400);
hostile(GET => '/functions/v1/nothing', undef, 'an unknown function', 404);

# A user id in the body is ignored: the caller is the JWT's sub.
my $res = $ngx->request('POST', $C, headers => \%A,
    body => encode_json({ platform => 'youtube', access_token => $tok, user_id => $B, userId => $B }));
is($res->code, 201, 'a valid POST naming another user');
is($su->selectrow_array(q{SELECT user_id FROM platform_credentials}), $A, 'stored for the caller');
is($su->selectrow_array(q{SELECT count(*) FROM platform_credentials WHERE user_id = ?}, undef, $B), 0, 'nothing for B');

# Every worker is still alive and serving.
my @pids = $pool->worker_pids;
is(scalar @pids, 2, 'both workers alive');
unlike($pool->log, qr/signal=(?:11|6)\b/, 'no worker crashed');
for (1 .. 4) {
    $res = $ngx->request('GET', $C, headers => \%A);
    is($res->code, 200, "still serving ($_)");
}

$ngx->stop;
$pool->stop;
done_testing;
