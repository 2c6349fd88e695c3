#!/usr/bin/perl
# GET /healthz through nginx and the pool: status, JSON body, request id
# echoed back and written on the pool's access line.

use strict;
use warnings;
use Test::More;
use SV::Test::Stack;

my $s = SV::Test::Stack->new(workers => 2);
my ($pool, $ngx) = ($s->pool, $s->ngx);

my $rid = 'test-200-' . $$ . '-' . int(rand(1e6));
my $from = $pool->log_offset;
my $res = $ngx->request('GET', '/healthz', headers => { 'X-Request-Id' => $rid });
is($res->code, 200, 'GET /healthz is 200') or diag $res->as_string;
like($res->header('Content-Type') // '', qr{^application/json}, 'JSON content type');
my $doc = $ngx->json($res);
is(ref $doc, 'HASH', 'body is a JSON object') or diag $res->content;
is($doc->{status}, 'ok', 'status ok');
is($doc->{database}, 'ok', 'database ok');
is($res->header('X-Request-Id'), $rid, 'X-Request-Id echoes the client id');

# Without a client id nginx makes one, and the server still echoes it.
my $res2 = $ngx->request('GET', '/healthz');
is($res2->code, 200, 'second GET is 200');
like($res2->header('X-Request-Id') // '', qr/^[0-9a-f]{32}$/, 'nginx-generated request id echoed');

# HEAD is allowed (Allow: GET, HEAD) and has no body.
my $head = $ngx->request('HEAD', '/healthz');
is($head->code, 200, 'HEAD /healthz is 200');
is(length($head->content), 0, 'HEAD has no body');

my $line = $pool->wait_log(qr/^[^\n]*request_id=\Q$rid\E[^\n]*$/m, 5, from => $from);
ok($line, 'pool logged an access line for the request id') or diag $pool->diag_output;
$line //= '';
like($line, qr/\bmethod=GET\b/, 'access line: method=GET');
like($line, qr{\bpath=/healthz\b}, 'access line: path=/healthz');
like($line, qr/\bstatus=200\b/, 'access line: status=200');
like($line, qr/\bduration_ms=\d/, 'access line: duration_ms');
my @lines = grep { /request_id=\Q$rid\E(\s|$)/ && /\bstatus=/ } split /\n/, $pool->log;
is(scalar @lines, 1, 'exactly one access line for the request');

$s->stop;
ok(!-e $pool->socket, 'SIGTERM removed the socket');
ok(!-e $pool->pid_file, 'SIGTERM removed the pid file');

done_testing;
