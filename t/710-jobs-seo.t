#!/usr/bin/perl
# submit-seo end to end: only public content on a public, active handle is
# accepted (422 listing the others), one indexing quota per URL, the public
# URLs POSTed to a fake IndexNow that fetches the key file from the server
# under test (which serves it), the engine's answer per URL in the job's
# result; a refused submission fails the job and refunds; a 429 with
# Retry-After is retried.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use LWP::UserAgent;
use SV::Test qw(sv_builddir sv_tempdir free_tcp_port);
use SV::Test::Fake;
use SV::Test::Stack;

my $key = 'a1b2c3d4e5f6a7b8c9d0-streamvibe';
my $ngx_port = free_tcp_port();
my $site = "http://127.0.0.1:$ngx_port";
my $mode = 'ok';    # what the engine answers, switched by the test through a file
my $spool = sv_tempdir(prefix => 'svspool');
my $mode_file = "$spool/engine-mode";
SV::Test::write_file($mode_file, 'ok');

my $engine = SV::Test::Fake->new(name => 'indexnow', routes => {
    'POST /indexnow' => sub {
        my ($req) = @_;
        my $m = SV::Test::slurp_file($mode_file);
        return [429, { 'Retry-After' => 1 }, ''] if $m eq 'busy' && $req->{n} % 2 == 0;
        my $j = $req->{json} or return [400, {}, ''];
        return [400, {}, ''] unless ref $j->{urlList} eq 'ARRAY' && @{ $j->{urlList} };
        for my $u (@{ $j->{urlList} }) {
            return [422, {}, ''] unless $u =~ m{^https?://\Q$j->{host}\E[:/]};
        }
        # The engine checks the key against the file the site serves.
        my $got = LWP::UserAgent->new(timeout => 5, max_redirect => 0)->get($j->{keyLocation});
        return [403, { 'Content-Type' => 'application/json' },
            '{"errorCode":"UserForbiddedToAccessSite","message":"key not valid"}']
            unless $got->code == 200 && $got->decoded_content eq $j->{key}
                && ($got->header('Content-Type') // '') =~ m{^text/plain};
        return [$m eq 'refuse' ? 403 : 202, {}, ''];
    },
});

my $s = SV::Test::Stack->new(workers => 2, nginx_port => $ngx_port, conf => {
    jwt_secret => 'jobs-seo-secret-' . ('s' x 32), job_spool_dir => "$spool/jobs",
    job_program => sv_builddir() . '/streamvibe-job', job_reconcile_interval => 1,
    indexnow_url => $engine->url('/indexnow'), indexnow_key => $key,
    indexnow_key_location => "$site/$key.txt",
    indexnow_url_template => "$site/content/{id}" });
my $ngx = $s->ngx;
is($ngx->port, $ngx_port, 'nginx on the port the URLs name');

my $A = $s->user('a@example.com');
my $pub = $s->handle($A, 'alice');
my $hidden = $s->handle($A, 'alice_private', visibility => 'private');
my @public = map { $s->content($pub, "p$_", title => "public $_") } 1 .. 3;
my $private = $s->content($pub, 'x1', title => 'private', visibility => 'private');
my $on_hidden = $s->content($hidden, 'x2', title => 'on a private handle');
my $tok = $s->jwt(user => $A);
sub used { scalar $s->su->selectrow_array('SELECT current_indexing_count FROM subscription_settings WHERE user_id = ?', undef, $A) }

# The key file, as the engines read it.
my $res = $ngx->request('GET', "/$key.txt");
is($res->code, 200, 'the key file is served');
is($res->decoded_content, $key, 'it holds exactly the key');
like($res->header('Content-Type'), qr{^text/plain}, 'as text/plain');
is($ngx->request('GET', '/wrong-key-123.txt')->code, 404, 'another name is not the key file');

# Not public: refused before anything is spent.
my $doc;
($res, $doc) = $ngx->call('POST', '/functions/v1/submit-seo', token => $tok,
    body => { contentIds => [$public[0], $private, $on_hidden] });
is($res->code, 422, 'content that is not public: 422') or diag $res->as_string;
is_deeply([sort @{ $doc->{ids} // [] }], [sort $private, $on_hidden], 'listing exactly the offending ids');
is(used(), 0, 'nothing spent');

# Public: submitted, one quota per URL, the answer per URL.
($res, $doc) = $ngx->call('POST', '/functions/v1/submit-seo?wait=20', token => $tok,
    body => { contentIds => [@public, $public[0]] });
is($res->code, 200, 'public content is submitted') or diag $res->as_string;
is($doc->{success}, JSON::PP::true, 'successfully');
is(used(), 3, 'three indexing quota spent (duplicates count once)');
my @urls = sort map { $_->{url} } @{ $doc->{result}{urls} };
is_deeply(\@urls, [sort map { "$site/content/$_" } @public], 'the public URLs, from the template');
is_deeply([map { $_->{outcome} } @{ $doc->{result}{urls} }], [('accepted') x 3], "the engine's answer per URL");
my ($call) = $engine->requests('POST /indexnow');
is($call->{json}{host}, '127.0.0.1', 'host');
is($call->{json}{key}, $key, 'key');
is($call->{json}{keyLocation}, "$site/$key.txt", 'keyLocation');
like($call->{headers}{'content-type'}, qr{^application/json}, 'sent as JSON');

# The engine refuses the key: the job fails, the quota comes back.
SV::Test::write_file($mode_file, 'refuse');
($res, $doc) = $ngx->call('POST', '/functions/v1/submit-seo?wait=20', token => $tok,
    body => { contentIds => [$public[1]] });
is($res->code, 500, 'a refused submission fails the job') or diag $res->as_string;
like($doc->{error} // '', qr/403/, 'saying what the engine answered');
is(used(), 3, 'and the quota is refunded');

# The engine is busy once (429, Retry-After: 1): retried, then taken.
SV::Test::write_file($mode_file, 'busy');
my $before = $engine->count('POST /indexnow');
($res, $doc) = $ngx->call('POST', '/functions/v1/submit-seo?wait=30', token => $tok,
    body => { contentIds => [$public[2]] });
is($res->code, 200, 'a busy engine is retried') or diag $res->as_string;
is($engine->count('POST /indexnow') - $before, 2, 'once');

# Over quota: 429 naming the quota, its limit and reset.
SV::Test::write_file($mode_file, 'ok');
my @many = map { $s->content($pub, "m$_", title => "many $_") } 1 .. 8;
($res, $doc) = $ngx->call('POST', '/functions/v1/submit-seo', token => $tok, body => { contentIds => \@many });
is($res->code, 429, 'over the indexing quota: 429') or diag $res->as_string;
is($doc->{code}, 'quota_exceeded', 'quota_exceeded');
is($doc->{quota}, 'indexing', 'naming the quota');
is($doc->{limit}, 10, 'its limit');
ok($doc->{resets_at}, 'and when it resets');
is(used(), 4, 'nothing more spent');

$s->stop;
done_testing;
