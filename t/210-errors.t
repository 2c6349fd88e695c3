#!/usr/bin/perl
# Errors are JSON in PostgREST's shape: unknown path 404, wrong method 405
# with Allow, a body over body_limit 413 from the server itself.

use strict;
use warnings;
use Test::More;
use SV::Test::Stack;

# The pool refuses bodies over 1024 bytes; nginx lets up to 1 MB through so
# that it is the server that answers.
my $s = SV::Test::Stack->new(workers => 2, conf => { body_limit => 1024 },
    nginx_conf => { body_limit => '1m' });
my ($pool, $ngx) = ($s->pool, $s->ngx);

sub is_pgrst_error {
    my ($res, $status, $name) = @_;
    is($res->code, $status, "$name: status $status") or diag $res->as_string;
    like($res->header('Content-Type') // '', qr{^application/json}, "$name: JSON content type");
    my $doc = $ngx->json($res);
    is(ref $doc, 'HASH', "$name: body is a JSON object") or return;
    ok(exists $doc->{$_}, "$name: has key $_") for qw(code message details hint);
    ok(defined $doc->{message} && length $doc->{message}, "$name: message is not empty");
    return $doc;
}

my $res = $ngx->request('GET', '/no/such/path');
is_pgrst_error($res, 404, 'unknown path');

$res = $ngx->request('GET', '/healthz/extra');
is_pgrst_error($res, 404, 'path below /healthz');

$res = $ngx->request('POST', '/healthz', body => '{}');
is_pgrst_error($res, 405, 'POST /healthz');
my $allow = $res->header('Allow') // '';
is(join(', ', sort map { s/^\s+|\s+$//gr } split /,/, $allow), 'GET, HEAD', 'Allow: GET, HEAD')
    or diag "Allow: $allow";

$res = $ngx->request('DELETE', '/healthz');
is($res->code, 405, 'DELETE /healthz is 405');

# The size check comes before routing: an oversized body is 413 whatever
# the path or method, and nothing of it is read.
$res = $ngx->request('GET', '/healthz', body => 'x' x 1024);
is($res->code, 200, 'a body of exactly body_limit bytes is accepted') or diag $res->as_string;

$res = $ngx->request('GET', '/healthz', body => 'x' x 4096);
my $doc = is_pgrst_error($res, 413, 'body over body_limit');
unlike($ngx->error_log, qr/client intended to send too large body/,
    'the 413 came from the server, not nginx');
like($pool->log, qr/status=413/, 'the pool logged the 413');
is_pgrst_error($ngx->request('POST', '/healthz', body => 'x' x 4096), 413,
    'oversized POST to a GET-only path is 413, not 405');
is_pgrst_error($ngx->request('POST', '/no/such/path', body => 'x' x 4096), 413,
    'oversized body to an unknown path is 413, not 404');

# An answer sent without reading the body must leave the kept-alive
# connection usable: closing it raced with nginx reusing it, and a POST
# (never retried by nginx) came back 502.
my %codes;
for (1 .. 150) {
    $codes{ $ngx->request('POST', '/healthz', body => 'x' x 4096)->code }++;
    $codes{ $ngx->request('POST', '/no/such/path', body => '{}')->code }++;
}
is_deeply(\%codes, { 413 => 150, 404 => 150 }, 'back-to-back POSTs after unread bodies: no 502')
    or diag explain \%codes;

# The connection the 413 was sent on is still usable / the pool is healthy.
for my $i (1 .. 5) {
    $res = $ngx->request('GET', '/healthz');
    is($res->code, 200, "GET /healthz after the 413 ($i)");
}

# Above nginx's own limit nginx answers; the pool never sees it.
$res = $ngx->request('GET', '/healthz', body => 'x' x (1024 * 1024 + 1));
is($res->code, 413, 'body over client_max_body_size: 413 from nginx');

is(scalar($pool->worker_pids), 2, 'no worker died');
unlike($pool->log, qr/level=(?:error|fatal)[^\n]*(?:crash|signal|abort)/i, 'no crash logged');

done_testing;
