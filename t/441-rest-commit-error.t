#!/usr/bin/perl
# An error PostgreSQL raises when the transaction ends, after the
# statement's own results, is the request's outcome. Here a deferred
# constraint trigger refuses a row at commit; the same happens to a read
# whose statement timeout fires just as it ends, which the text-search
# fallback met at 2,000,000 rows. The client gets that error, not a 503
# as if the database were gone; nothing is written; the worker's
# connection stays in use.

use strict;
use warnings;
use Test::More;
use JSON::PP qw(encode_json);
use SV::Test;
use SV::Test::Stack;

my $secret = 'commit-error-secret-' . ('c' x 32);
my $s = SV::Test::Stack->new(workers => 1, conf => { jwt_secret => $secret });
my ($pg, $pool, $ngx) = ($s->pg, $s->pool, $s->ngx);
my $A = $s->user('a@example.com');
my $h = $s->handle($A, 'a');
my %A = (Authorization => 'Bearer ' . $s->jwt(user => $A));

my $su = $pg->dbh(user => 'postgres');
$su->do(q{CREATE FUNCTION public.test_refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.title = 'refused at commit' THEN
        RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'P0001';
    END IF;
    RETURN NULL;
END $$});
$su->do(q{CREATE CONSTRAINT TRIGGER test_refuse_at_commit AFTER INSERT ON public.handle_content
          DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.test_refuse_at_commit()});

my ($worker) = $pool->worker_pids;
my $connections = sub {
    scalar $su->selectrow_array(q{SELECT count(*) FROM pg_stat_activity WHERE usename = 'authenticator'
                                   AND pid <> pg_backend_pid() AND application_name = 'streamvibe'});
};
my $res = $ngx->request('POST', '/rest/v1/handle_content',
    headers => { %A, Prefer => 'return=representation' },
    body => encode_json({ handle_id => $h, platform_content_id => 'ok', title => 'accepted' }));
is($res->code, 201, 'a row the trigger lets through is created');
my $before = $connections->();

$res = $ngx->request('POST', '/rest/v1/handle_content',
    headers => { %A, Prefer => 'return=representation' },
    body => encode_json({ handle_id => $h, platform_content_id => 'no', title => 'refused at commit' }));
my $doc = $ngx->json($res);
is($res->code, 400, 'refused at commit: the error is the answer (400), not 503') or diag $res->as_string;
is($doc && $doc->{code}, 'P0001', "with PostgreSQL's code");
like($doc && $doc->{message}, qr/refused at commit/, 'and its message');
is(scalar $su->selectrow_array(q{SELECT count(*) FROM handle_content WHERE platform_content_id = 'no'}), 0,
   'nothing was written');
unlike($pool->log, qr/database_unavailable/, 'the connection was not taken for lost');
is($connections->(), $before, 'nor closed');

$res = $ngx->request('GET', '/rest/v1/handle_content?select=title&platform_content_id=eq.ok', headers => \%A);
is($res->code, 200, 'the next request is served');
is_deeply($ngx->json($res), [{ title => 'accepted' }], 'with the right rows');
is_deeply([$pool->worker_pids], [$worker], 'by the same worker');

$su->disconnect;
$s->stop;
done_testing;
