#!/usr/bin/perl
# /rest/v1 writes through nginx: POST (object, bulk, columns=, return=
# minimal/representation, .single()), upsert (merge/ignore duplicates) as
# PostgREST does it (every column sent is updated, the conflict columns
# too, so "get or create" returns the existing row and needs UPDATE on
# them; 200 when nothing was inserted), PATCH recording
# content_edit_history as 'user', DELETE as soft delete for content, 409
# for a handle that has content, the handle quota (429), and PostgREST's
# Content-Range on writes (*/* for POST and DELETE, 0-(N-1)/* for PATCH).

use strict;
use warnings;
use Test::More;
use JSON::PP;
use SV::Test;
use SV::Test::Stack;

my $secret = 'rest-write-secret-' . ('w' x 32);
my $s = SV::Test::Stack->new(workers => 2, conf => { jwt_secret => $secret });
my $ngx = $s->ngx;
my $su = $s->su;

my $A = $s->user('a@example.com');
my $yt = $s->platform('youtube');
my %A = (Authorization => 'Bearer ' . $s->jwt(user => $A, email => "$A\@example.com"));
my %S = (Authorization => 'Bearer ' . $s->jwt(role => 'service_role'));
sub call { my ($method, $path, $body, %h) = @_; $ngx->call($method, $path, headers => { %A, %h }, body => $body) }
sub one { scalar $su->selectrow_array(@_) }
my @rep = (Prefer => "return=representation");

# --- insert ------------------------------------------------------------------------
my ($res, $doc) = call('POST', '/rest/v1/account_handles',
    { platform_id => $yt, handle => '@Alice', display_name => 'Alice' }, @rep);
is($res->code, 201, 'insert handle: 201') or diag $res->as_string;
is($res->header('Content-Range'), '*/*', "insert: Content-Range */* (PostgREST's, not 0-0/*)");
is(ref $doc, 'ARRAY', 'representation is an array');
is($doc->[0]{handle}, 'alice', 'trigger-normalised handle returned');
is($doc->[0]{user_id}, $A, 'user_id defaulted to the caller');
my $h1 = $doc->[0]{id};

($res, $doc) = call('POST', '/rest/v1/account_handles', { platform_id => $yt, handle => 'second' });
is($res->code, 201, 'return=minimal (default): 201');
is($res->content, '', 'minimal: no body');
is($res->header('Content-Range'), '*/*', 'minimal insert: Content-Range */*');

($res, $doc) = call('POST', '/rest/v1/account_handles?select=handle',
    { platform_id => $yt, handle => 'third' }, @rep, Accept => 'application/vnd.pgrst.object+json');
is($res->code, 201, 'insert .single(): 201');
is_deeply($doc, { handle => 'third' }, 'insert .select().single() returns the object');
my $h3 = one(q{SELECT id FROM account_handles WHERE handle = 'third'});

($res, $doc) = call('POST', '/rest/v1/account_handles', { platform_id => $yt, handle => 'fourth' });
is($res->code, 429, 'handle quota: 429') or diag $res->content;
is($doc->{code}, 'PT429', 'quota error code');

# bulk insert with the columns= list postgrest-js sends, missing keys → NULL
($res, $doc) = call('POST', '/rest/v1/handle_content?columns=%22handle_id%22,%22platform_content_id%22,%22title%22,%22tags%22&select=platform_content_id,title,tags,user_id,platform_id',
    [ { handle_id => $h1, platform_content_id => 'c1', title => 'First', tags => ['a', 'b'] },
      { handle_id => $h1, platform_content_id => 'c2', title => 'Second', tags => [] },
      { handle_id => $h1, platform_content_id => 'c3', title => 'Third', tags => [] } ], @rep);
is($res->code, 201, 'bulk insert: 201') or diag $res->content;
is($res->header('Content-Range'), '*/*', 'bulk insert: Content-Range */*');
is(scalar @{ $doc // [] }, 3, 'three rows back');
is_deeply($doc->[0]{tags}, ['a', 'b'], 'array column from a JSON array');
is($doc->[0]{user_id}, $A, 'content user_id defaulted');
is($doc->[0]{platform_id}, $yt, 'content platform_id filled from the handle');
my $c1 = one(q{SELECT id FROM handle_content WHERE platform_content_id = 'c1'});
my $c2 = one(q{SELECT id FROM handle_content WHERE platform_content_id = 'c2'});

($res, $doc) = call('POST', '/rest/v1/handle_content?select=platform_content_id,tags,content_type',
    [ { handle_id => $h1, platform_content_id => 'm1', tags => ['t'], content_type => 'short' },
      { handle_id => $h1, platform_content_id => 'm2' } ], @rep);
is($res->code, 400, 'bulk insert with a missing NOT NULL key: NULL, as PostgREST does') or diag $res->content;
($res, $doc) = call('POST', '/rest/v1/handle_content?select=platform_content_id,tags,content_type',
    [ { handle_id => $h1, platform_content_id => 'm1', tags => ['t'], content_type => 'short' },
      { handle_id => $h1, platform_content_id => 'm2' } ], Prefer => 'return=representation,missing=default');
is($res->code, 201, 'Prefer: missing=default') or diag $res->content;
is_deeply($doc, [ { platform_content_id => 'm1', tags => ['t'], content_type => 'short' },
                  { platform_content_id => 'm2', tags => [], content_type => 'video' } ], 'absent keys took the column defaults');
$su->do(q{DELETE FROM handle_content WHERE platform_content_id IN ('m1', 'm2')});

($res, $doc) = call('POST', '/rest/v1/handle_content', { handle_id => $h1, platform_content_id => 'x', bogus => 1 });
is($res->code, 400, 'unknown body column: 400');
is($doc->{code}, 'PGRST204', 'PGRST204');
($res, $doc) = call('POST', '/rest/v1/handle_content', '{"handle_id": ');
is($res->code, 400, 'invalid JSON: 400');
is($doc->{code}, 'PGRST102', 'PGRST102');
($res, $doc) = call('POST', '/rest/v1/handle_content', { handle_id => $h1, platform_content_id => 'dup', title => 'x' });
($res, $doc) = call('POST', '/rest/v1/handle_content', { handle_id => $h1, platform_content_id => 'dup', title => 'x' });
is($res->code, 409, 'unique violation: 409');
is($doc->{code}, '23505', 'code 23505');
($res, $doc) = call('POST', '/rest/v1/handle_content', { handle_id => $h1, platform_content_id => 'cnt', view_count => 99 });
is($res->code, 403, 'column without INSERT grant: 403');
is((ref $doc eq 'HASH' ? $doc : {})->{code}, '42501', 'code 42501');

# --- upsert ----------------------------------------------------------------------------
# A user may not update handle_id or platform_content_id, and PostgREST
# sets every column sent: so a merge upsert on them is refused, as on
# Supabase, whether or not a row conflicts.
my $c1_title = one(q{SELECT title FROM handle_content WHERE id = ?}, undef, $c1);
($res, $doc) = call('POST', '/rest/v1/handle_content?on_conflict=handle_id,platform_content_id&select=platform_content_id,title',
    [ { handle_id => $h1, platform_content_id => 'c1', title => 'First (edited)' },
      { handle_id => $h1, platform_content_id => 'c9', title => 'Ninth' } ],
    Prefer => 'return=representation,resolution=merge-duplicates');
is($res->code, 403, 'merge upsert by a user who may not update the conflict columns: 403') or diag $res->content;
is((ref $doc eq 'HASH' ? $doc : {})->{code}, '42501', '42501, as on Supabase');
is(one(q{SELECT title FROM handle_content WHERE id = ?}, undef, $c1), $c1_title, 'nothing changed');
is(one(q{SELECT count(*) FROM handle_content WHERE platform_content_id = 'c9'}), 0, 'nothing inserted');

# The service role may update every column: an upsert that inserts is 201,
# one that only updates is 200 (PostgREST counts the inserted rows).
my @svc = (Prefer => 'return=representation,resolution=merge-duplicates');
($res, $doc) = call('POST', '/rest/v1/handle_content?on_conflict=handle_id,platform_content_id&select=platform_content_id,title',
    [ { handle_id => $h1, platform_content_id => 'c1', title => 'First (edited)' },
      { handle_id => $h1, platform_content_id => 'c9', title => 'Ninth' } ], @svc, %S);
is($res->code, 201, 'upsert that inserts a row: 201') or diag $res->content;
is($res->header('Content-Range'), '*/*', 'upsert: Content-Range */*');
is_deeply([sort map { "$_->{platform_content_id}=$_->{title}" } @{ $doc // [] }],
    ['c1=First (edited)', 'c9=Ninth'], 'upsert updated one row and inserted one');
is(one(q{SELECT count(*) FROM handle_content WHERE handle_id = ?}, undef, $h1), 5, 'no duplicate rows');
($res, $doc) = call('POST', '/rest/v1/handle_content?on_conflict=handle_id,platform_content_id&select=title',
    { handle_id => $h1, platform_content_id => 'c9', title => 'Ninth (edited)' }, @svc, %S);
is($res->code, 200, 'upsert that only updates: 200') or diag $res->content;
is_deeply($doc, [{ title => 'Ninth (edited)' }], 'the updated row');
($res, $doc) = call('POST', '/rest/v1/handle_content?on_conflict=handle_id,platform_content_id',
    { handle_id => $h1, platform_content_id => 'c9', title => 'Ninth (again)' },
    Prefer => 'resolution=merge-duplicates', %S);
is($res->code, 200, 'the same with return=minimal: 200') or diag $res->content;
is($res->content, '', 'no body');
is(one(q{SELECT title FROM handle_content WHERE platform_content_id = 'c9'}), 'Ninth (again)', 'updated');
($res, $doc) = call('POST', '/rest/v1/handle_content?on_conflict=handle_id,platform_content_id',
    { handle_id => $h1, platform_content_id => 'c10', title => 'Tenth' },
    Prefer => 'resolution=merge-duplicates', %S);
is($res->code, 201, 'minimal upsert that inserts: 201') or diag $res->content;
$su->do(q{DELETE FROM handle_content WHERE platform_content_id = 'c10'});

# "Get or create": only the conflict columns sent. PostgREST still writes
# DO UPDATE (of those columns), so the existing row comes back.
my $get_or_create = "/rest/v1/account_handles?on_conflict=user_id,platform_id,handle&select=id";
my @goc = (Prefer => 'resolution=merge-duplicates, return=representation', Accept => 'application/vnd.pgrst.object+json');
($res, $doc) = call('POST', $get_or_create, { user_id => $A, platform_id => $yt, handle => 'alice' }, @goc, %S);
is($res->code, 200, 'get-or-create of an existing handle: 200 (nothing inserted)') or diag $res->content;
is_deeply($doc, { id => $h1 }, '.upsert().select().single() returns the existing row');
($res, $doc) = call('POST', $get_or_create, { user_id => $A, platform_id => $yt, handle => 'alice' }, @goc);
is($res->code, 403, 'the same by the user: 403 (user_id and platform_id are not updatable), as on Supabase')
    or diag $res->content;
is((ref $doc eq 'HASH' ? $doc : {})->{code}, '42501', 'code 42501');

($res, $doc) = call('POST', '/rest/v1/handle_content?on_conflict=handle_id,platform_content_id',
    { handle_id => $h1, platform_content_id => 'c2', title => 'ignored' },
    Prefer => 'return=representation, resolution=ignore-duplicates');
is($res->code, 201, 'ignore-duplicates: 201');
is_deeply($doc, [], 'ignore-duplicates: nothing returned');
is(one(q{SELECT title FROM handle_content WHERE id = ?}, undef, $c2), 'Second', 'row untouched');

# --- PATCH ---------------------------------------------------------------------------------
($res, $doc) = call('PATCH', "/rest/v1/handle_content?id=eq.$c2&select=title,description,tags",
    { title => 'Second!', description => 'now described', tags => ['x'] }, @rep);
is($res->code, 200, 'PATCH with representation: 200') or diag $res->content;
is($res->header('Content-Range'), '0-0/*', 'PATCH: Content-Range 0-(N-1)/*');
is_deeply($doc, [{ title => 'Second!', description => 'now described', tags => ['x'] }], 'updated row');
my $hist = $su->selectall_arrayref(q{SELECT field_name, old_value, new_value, changed_by FROM content_edit_history
    WHERE content_id = ? ORDER BY field_name}, { Slice => {} }, $c2);
is_deeply($hist, [
    { field_name => 'description', old_value => undef, new_value => 'now described', changed_by => 'user' },
    { field_name => 'tags', old_value => '[]', new_value => '["x"]', changed_by => 'user' },
    { field_name => 'title', old_value => 'Second', new_value => 'Second!', changed_by => 'user' },
], 'PATCH recorded content_edit_history with changed_by=user');
($res, $doc) = call('GET', "/rest/v1/content_edit_history?select=field_name,changed_by&content_id=eq.$c2&order=field_name");
is_deeply([map { "$_->{field_name}:$_->{changed_by}" } @{ $doc // [] }],
    ['description:user', 'tags:user', 'title:user'], 'history readable through the API');

($res, $doc) = call('PATCH', "/rest/v1/handle_content?handle_id=eq.$h1", { visibility => 'unlisted' });
is($res->code, 204, 'PATCH minimal: 204');
is($res->header('Content-Range'), '0-4/*', 'PATCH minimal: Content-Range 0-(N-1)/* too');
($res, $doc) = call('PATCH', "/rest/v1/handle_content?handle_id=eq.$h1", { visibility => 'unlisted' }, Prefer => 'count=exact');
is($res->header('Content-Range'), '0-4/5', 'PATCH with count=exact: 0-(N-1)/N');
is(one(q{SELECT count(*) FROM handle_content WHERE handle_id = ? AND visibility = 'unlisted'}, undef, $h1), 5, 'all filtered rows updated');

($res, $doc) = call('PATCH', "/rest/v1/handle_content?handle_id=eq.$h1", { visibility => 'private' },
    @rep, Accept => 'application/vnd.pgrst.object+json');
is($res->code, 406, 'PATCH .single() touching 5 rows: 406') or diag $res->content;
is($doc->{code}, 'PGRST116', 'PGRST116');
is($doc->{details}, 'The result contains 5 rows', 'details');
is(one(q{SELECT count(*) FROM handle_content WHERE visibility = 'private'}), 0, 'and it was rolled back');

($res, $doc) = call('PATCH', "/rest/v1/handle_content?id=eq.$c1", { view_count => 5 });
is($res->code, 403, 'PATCH of a column without UPDATE grant: 403');
($res, $doc) = call('PATCH', "/rest/v1/handle_content?id=eq.$c1", { nope => 5 });
is($res->code, 400, 'PATCH unknown column: 400');
($res, $doc) = call('PATCH', "/rest/v1/handle_content?id=eq.$c1", [ { title => 'x' } ]);
is($res->code, 400, 'PATCH with an array body: 400');

# --- DELETE -----------------------------------------------------------------------------------
($res, $doc) = call('DELETE', "/rest/v1/handle_content?id=eq.$c2&select=id,deleted_at", undef, @rep);
is($res->code, 200, 'DELETE content with representation: 200') or diag $res->content;
is($res->header('Content-Range'), '*/*', 'DELETE: Content-Range */*');
is($doc->[0]{id}, $c2, 'deleted row returned');
ok(defined $doc->[0]{deleted_at}, 'deleted_at set');
is(one(q{SELECT count(*) FROM handle_content WHERE id = ?}, undef, $c2), 1, 'soft delete: the row still exists');
ok(one(q{SELECT count(*) FROM content_edit_history WHERE content_id = ?}, undef, $c2) >= 3, 'history survives');
($res, $doc) = call('GET', "/rest/v1/handle_content?id=eq.$c2");
is_deeply($doc, [], 'soft-deleted content hidden from a plain read');
($res, $doc) = call('DELETE', "/rest/v1/handle_content?id=eq.$c2", undef, Prefer => 'count=exact');
is($res->code, 204, 'second DELETE: 204');
is($res->header('Content-Range'), '*/0', 'touches nothing the second time');
($res, $doc) = call('PATCH', "/rest/v1/handle_content?id=eq.$c2&deleted_at=not.is.null", { deleted_at => undef }, @rep);
is($res->code, 200, 'restore by PATCH deleted_at=null');
ok(!defined $doc->[0]{deleted_at}, 'restored');

($res, $doc) = call('DELETE', "/rest/v1/account_handles?id=eq.$h1");
is($res->code, 409, 'DELETE handle with content: 409') or diag $res->content;
is($doc->{code}, '23503', 'code 23503');
like($doc->{message}, qr/visibility = 'unlisted'/, 'message says to unlist instead');
is(one(q{SELECT count(*) FROM handle_content WHERE handle_id = ?}, undef, $h1), 5, 'content untouched');
is(one(q{SELECT count(*) FROM account_handles WHERE id = ?}, undef, $h1), 1, 'handle still there');

($res, $doc) = call('DELETE', "/rest/v1/account_handles?id=eq.$h3", undef, Prefer => 'count=exact');
is($res->code, 204, 'DELETE handle without content: 204');
is($res->header('Content-Range'), '*/1', 'one row deleted: */1, as PostgREST says it');
is(one(q{SELECT count(*) FROM account_handles WHERE id = ?}, undef, $h3), 0, 'gone');
($res, $doc) = call('POST', '/rest/v1/account_handles', { platform_id => $yt, handle => 'fourth' });
is($res->code, 201, 'quota freed by the delete');

($res, $doc) = call('DELETE', '/rest/v1/platforms?name=eq.youtube');
is($res->code, 403, 'DELETE on a read-only table: 403');
($res, $doc) = call('POST', '/rest/v1/audit_log', { action => 'x' });
is($res->code, 403, 'insert into audit_log: 403');
($res, $doc) = call('DELETE', '/rest/v1/handle_content?limit=1');
is($res->code, 400, 'limit on DELETE: 400');

# --- unfiltered PATCH and DELETE --------------------------------------------------------------
# Hosted Supabase runs pg-safeupdate for the API's role: an UPDATE or
# DELETE with no row filter is refused (400, 21000) for every role, so a
# forgotten .eq() cannot rewrite every row the caller may touch.
sub snapshot { $su->selectall_arrayref(q{SELECT id, title, visibility, deleted_at FROM handle_content ORDER BY id}) }
sub handles { $su->selectall_arrayref(q{SELECT id, display_name FROM account_handles ORDER BY id}) }
my ($before, $hbefore) = (snapshot(), handles());
ok(@$before >= 5, 'rows to protect: ' . scalar @$before);
my $JSON = JSON::PP->new;
my %safe = (UPDATE => '{"code":"21000","details":null,"hint":null,"message":"UPDATE requires a WHERE clause"}',
            DELETE => '{"code":"21000","details":null,"hint":null,"message":"DELETE requires a WHERE clause"}');
for my $who (['user', {}], ['service_role', \%S]) {
    my ($name, $h) = @$who;
    for my $path ('/rest/v1/handle_content', '/rest/v1/handle_content?select=id,title', '/rest/v1/handle_content?columns=title') {
        ($res, $doc) = call('PATCH', $path, { title => 'z' }, @rep, %$h);
        is($res->code, 400, "$name: unfiltered PATCH $path: 400") or diag $res->content;
        is_deeply($doc, $JSON->decode($safe{UPDATE}), "$name: pg-safeupdate's error, as on Supabase");
    }
    ($res, $doc) = call('DELETE', '/rest/v1/handle_content', undef, %$h);
    is($res->code, 400, "$name: unfiltered (soft) DELETE of content: 400") or diag $res->content;
    is_deeply($doc, $JSON->decode($safe{DELETE}), "$name: DELETE requires a WHERE clause");
    ($res, $doc) = call('DELETE', '/rest/v1/account_handles?select=id', undef, @rep, %$h);
    is($res->code, 400, "$name: unfiltered DELETE of handles: 400") or diag $res->content;
    is_deeply($doc, $JSON->decode($safe{DELETE}), "$name: DELETE requires a WHERE clause");
    ($res, $doc) = call('PATCH', '/rest/v1/account_handles', { display_name => 'z' }, %$h);
    is($res->code, 400, "$name: unfiltered PATCH of handles: 400");
    is_deeply(snapshot(), $before, "$name: no content row changed");
    is_deeply(handles(), $hbefore, "$name: no handle changed or deleted");
}

# A filter still writes, for the user and for the service role.
($res, $doc) = call('PATCH', "/rest/v1/handle_content?id=eq.$c1&select=title", { title => 'filtered' }, @rep);
is_deeply([$res->code, $doc], [200, [{ title => 'filtered' }]], 'user: filtered PATCH still works') or diag $res->content;
($res, $doc) = call('PATCH', "/rest/v1/handle_content?or=(id.eq.$c1,id.eq.$c2)", { title => 'by or=' }, Prefer => 'count=exact', %S);
is($res->code, 204, 'service_role: PATCH filtered by or= works');
is($res->header('Content-Range'), '0-1/2', 'two rows');
($res, $doc) = call('DELETE', "/rest/v1/account_handles?handle=eq.fourth", undef, Prefer => 'count=exact', %S);
is($res->code, 204, 'service_role: filtered DELETE works');
is($res->header('Content-Range'), '*/1', 'one row deleted');

done_testing;
