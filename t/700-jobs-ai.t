#!/usr/bin/perl
# enhance-ai end to end through nginx: accepted as a detached job (202),
# followed with ?wait, its suggestion stored from a fake OpenAI-compatible
# endpoint, one audit_log row, the quota spent; a model answer that is not
# the asked-for object fails the job with the reason and refunds the
# quota; applying the suggestion records changed_by = 'ai'; refusals
# (someone else's content, no token, bad bodies) change nothing.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use SV::Test qw(sv_builddir sv_tempdir wait_until);
use SV::Test::Fake;
use SV::Test::Stack;

my $JSON = JSON::PP->new->canonical;
my $answer = $JSON->encode({ title => 'Cooking Pasta: the 10-Minute Recipe',
    description => 'Dinner in ten minutes.', tags => ['pasta', 'dinner', 'recipe'] });
my $ai = SV::Test::Fake->new(name => 'ai', routes => {
    'POST /v1/chat/completions' => sub {
        my ($req) = @_;
        my $user = $req->{json}{messages}[1]{content} // '';
        my $content = $user =~ /broken/ ? 'Sure! Here it is: not json'
                    : $user =~ /toolong/ ? $JSON->encode({ title => 'x' x 101, description => 'd', tags => [] })
                    : $answer;
        return [200, { 'Content-Type' => 'application/json' }, $JSON->encode({
            id => 'chatcmpl-1', object => 'chat.completion', created => time, model => 'fake-model',
            choices => [{ index => 0, message => { role => 'assistant', content => $content },
                          finish_reason => 'stop' }] })];
    },
});

my $secret = 'jobs-ai-secret-' . ('a' x 32);
my $spool = sv_tempdir(prefix => 'svspool');
my $s = SV::Test::Stack->new(workers => 2, conf => {
    jwt_secret => $secret, job_spool_dir => "$spool/jobs",
    job_program => sv_builddir() . '/streamvibe-job',
    ai_base_url => $ai->url('/v1'), ai_api_key => 'sk-test-key', ai_model => 'fake-model' });
my $ngx = $s->ngx;

my $A = $s->user('a@example.com');
my $B = $s->user('b@example.com');
my $hA = $s->handle($A, 'alice');
my $cA = $s->content($hA, 'v1', title => 'pasta', description => 'quick dinner', tags => ['food']);
my $broken = $s->content($hA, 'v2', title => 'broken');
my $toolong = $s->content($hA, 'v3', title => 'toolong');
my $cB = $s->content($s->handle($B, 'bob'), 'b1', title => 'bob video');
my $tokA = $s->jwt(user => $A);
my $tokB = $s->jwt(user => $B);

sub ai_used {
    my ($uid) = @_;
    return scalar $s->su->selectrow_array('SELECT current_ai_count FROM subscription_settings WHERE user_id = ?',
        undef, $uid);
}
sub audit_rows {
    my ($job) = @_;
    return $s->su->selectall_arrayref('SELECT job_status, job_type, user_id, job_error, job_result::text,
        resource_id FROM audit_log WHERE job_id = ?', { Slice => {} }, $job);
}

# --- the happy path -------------------------------------------------------
my ($res, $doc) = $ngx->call('POST', '/functions/v1/enhance-ai', token => $tokA,
    body => { contentId => $cA, userId => $B });
is($res->code, 202, 'enhance-ai is accepted') or diag $res->as_string;
like($doc->{job_id} // '', qr/^[0-9a-f-]{36}$/, 'with a job id');
is($doc->{status}, 'running', 'and status running');
my $job = $doc->{job_id};

($res, $doc) = $ngx->call('GET', "/functions/v1/jobs/$job?wait=20", token => $tokA);
is($res->code, 200, 'status with wait answers') or diag $res->as_string;
is($doc->{status}, 'completed', 'the job completed') or diag explain $doc;
is($doc->{type}, 'ai_enhancement', 'of type ai_enhancement');
my $sid = $doc->{result}{suggestion_id};
like($sid // '', qr/^[0-9a-f-]{36}$/, 'its result names the suggestion');
is($doc->{result}{title}, 'Cooking Pasta: the 10-Minute Recipe', 'and carries the suggested title');

my $rows = audit_rows($job);
is(scalar @$rows, 1, 'exactly one audit_log row');
is($rows->[0]{job_status}, 'completed', 'completed');
is($rows->[0]{user_id}, $A, 'for the caller, not the userId in the body');
is($rows->[0]{resource_id}, $cA, 'about the content');
my $sug = $s->su->selectrow_hashref('SELECT * FROM ai_content_suggestions WHERE id = ?', undef, $sid);
is($sug->{suggested_title}, 'Cooking Pasta: the 10-Minute Recipe', 'the suggestion is stored');
is_deeply($sug->{suggested_tags}, ['pasta', 'dinner', 'recipe'], 'with its tags');
is($sug->{job_id}, $job, 'and the job that made it');
is(ai_used($A), 1, 'one ai quota spent');

my @calls = $ai->requests('POST /v1/chat/completions');
is(scalar @calls, 1, 'the model was asked once');
is($calls[0]{headers}{authorization}, 'Bearer sk-test-key', 'with the configured key');
is($calls[0]{json}{model}, 'fake-model', 'and model');
is($calls[0]{json}{response_format}{type}, 'json_object', 'in JSON mode');
like($calls[0]{json}{messages}[1]{content}, qr/quick dinner/, "with the content's text");

# The user reads the job's row like any of their audit rows.
($res, $doc) = $ngx->call('GET', "/rest/v1/audit_log?job_id=eq.$job&select=job_status", token => $tokA);
is_deeply($doc, [{ job_status => 'completed' }], 'the owner reads the audit row through REST');
($res, $doc) = $ngx->call('GET', "/functions/v1/jobs/$job", token => $tokB);
is($res->code, 404, "another user cannot see the job's status");

# --- applying the suggestion -----------------------------------------------
($res, $doc) = $ngx->call('POST', "/functions/v1/suggestions/$sid/apply", token => $tokB,
    body => { fields => ['title'] });
is($res->code, 404, "another user cannot apply the suggestion") or diag $res->as_string;
($res, $doc) = $ngx->call('POST', "/functions/v1/suggestions/$sid/apply", token => $tokA,
    body => { fields => ['nonsense'] });
is($res->code, 400, 'an unknown field is a 400') or diag $res->as_string;
($res, $doc) = $ngx->call('POST', "/functions/v1/suggestions/$sid/apply", token => $tokA,
    body => { fields => ['title'] });
is($res->code, 200, 'the owner applies the title') or diag $res->as_string;
is($doc->{status}, 'partly_applied', 'the suggestion is partly applied');
is(scalar $s->su->selectrow_array('SELECT title FROM handle_content WHERE id = ?', undef, $cA),
    'Cooking Pasta: the 10-Minute Recipe', 'the content has the new title');
is(scalar $s->su->selectrow_array(q{SELECT changed_by FROM content_edit_history
    WHERE content_id = ? AND field_name = 'title'}, undef, $cA), 'ai', "history says changed_by 'ai'");
($res, $doc) = $ngx->call('POST', "/functions/v1/suggestions/$sid/apply", token => $tokA,
    body => { fields => ['description', 'tags'] });
is($doc->{status}, 'applied', 'applying the rest makes it applied');

# --- an answer that is not the object asked for ----------------------------
for my $case ([$broken, qr/not JSON/, 'prose instead of JSON'], [$toolong, qr/title/, 'a title over 100 characters']) {
    my ($cid, $re, $name) = @$case;
    my $before = ai_used($A);
    ($res, $doc) = $ngx->call('POST', '/functions/v1/enhance-ai?wait=20', token => $tokA, body => { contentId => $cid });
    is($res->code, 500, "$name: accept with wait answers the failure as the document's functions do")
        or diag $res->as_string;
    like($doc->{error} // '', $re, "$name: the error says why");
    my $rows2 = audit_rows($doc->{job_id});
    is(scalar @$rows2, 1, "$name: one audit row");
    is($rows2->[0]{job_status}, 'failed', "$name: failed");
    is(ai_used($A), $before, "$name: the quota was refunded");
}
is(scalar $s->su->selectrow_array('SELECT count(*) FROM ai_content_suggestions WHERE content_id IN (?, ?)',
    undef, $broken, $toolong), 0, 'no suggestion stored for a rejected answer');

# --- refusals ---------------------------------------------------------------
my $calls_before = $ai->count;
($res, $doc) = $ngx->call('POST', '/functions/v1/enhance-ai', token => $tokA, body => { contentId => $cB });
is($res->code, 404, "someone else's content: 404") or diag $res->as_string;
($res, $doc) = $ngx->call('POST', '/functions/v1/enhance-ai', body => { contentId => $cA });
is($res->code, 401, 'no token: 401');
($res, $doc) = $ngx->call('POST', '/functions/v1/enhance-ai', token => $tokA, body => '{"contentId": ');
is($res->code, 400, 'malformed JSON: 400');
is($doc->{code}, 'invalid_json', 'with a code');
($res, $doc) = $ngx->call('POST', '/functions/v1/enhance-ai', token => $tokA, body => { contentId => 'x' });
is($res->code, 400, 'a contentId that is not a uuid: 400');
($res, $doc) = $ngx->call('POST', '/functions/v1/enhance-ai?wait=9999', token => $tokA, body => { contentId => $cA });
is($res->code, 400, 'a wait over job_wait_max: 400');
is($ai->count, $calls_before, 'no refused request reached the model');
is(scalar $s->su->selectrow_array('SELECT count(*) FROM audit_log WHERE job_id IS NOT NULL'), 3,
    'and none left an audit row');

# The service role acts for the user it names.
my $service = $s->jwt(role => 'service_role');
($res, $doc) = $ngx->call('POST', '/functions/v1/enhance-ai?wait=20', token => $service,
    body => { contentId => $cA, userId => $A });
is($res->code, 200, 'the service role runs a job for a user') or diag $res->as_string;
is($doc->{success}, JSON::PP::true, "and gets the document's {success, result}");
($res, $doc) = $ngx->call('POST', '/functions/v1/enhance-ai', token => $service, body => { contentId => $cA });
is($res->code, 400, 'the service role must name the user');

ok(wait_until(sub { !glob("$spool/jobs/*.job") }, 10), 'the spool is empty once every job ended');
$s->stop;
done_testing;
