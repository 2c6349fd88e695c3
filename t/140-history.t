#!/usr/bin/perl
# content_edit_history: the AFTER UPDATE trigger records one row per
# changed tracked field, attributed via streamvibe.changed_by (default
# 'user'; 'ai', 'sync'; anything else is an error), rows survive a soft
# delete, and only the owner can read them; nobody writes them directly.
use strict;
use warnings;

use JSON::PP qw(encode_json decode_json);
use Test::More;
use SV::Test::Pg;
use SV::Test::Stack;

plan skip_all => 'DBD::Pg not installed' unless eval { require DBD::Pg; 1 };
my $s = SV::Test::Stack->new(pool => 0);
my ($su, $api) = ($s->su, $s->api);

# As the server runs SQL (SV::Test::Pg::run_as_role); @pre are statements run first in the same
# transaction (e.g. setting streamvibe.changed_by).
sub as_role {
    my ($role, $uid, $pre, $sql, @bind) = @_;
    return SV::Test::Pg->run_as_role($api, $role, $uid, $sql, \@bind, pre => $pre);
}

my $A = $s->user('a@example.com');
my $B = $s->user('b@example.com');
my $cid = $s->content($s->handle($A, 'creator'), 'v1',
    title => 'Old title', description => 'Old description', tags => '{a,b}', view_count => 10);

is($su->selectrow_array('SELECT count(*) FROM content_edit_history'), 0, 'inserting content records no history');

# History rows added since the last call, oldest first.
my $seen = 0;
sub new_history {
    my $rows = $su->selectall_arrayref(
        q{SELECT field_name, old_value, new_value, changed_by, user_id FROM content_edit_history
           WHERE content_id = ? ORDER BY created_at, field_name OFFSET ?}, { Slice => {} }, $cid, $seen);
    $seen += @$rows;
    return $rows;
}

# --- default: user ------------------------------------------------------------
{
    my $r = as_role('authenticated', $A, undef,
        q{UPDATE handle_content SET title = 'New title' WHERE id = ?}, $cid);
    ok($r->{ok} && $r->{count} == 1, 'owner edits the title') or diag $r->{err};
    is_deeply(new_history(), [{ field_name => 'title', old_value => 'Old title', new_value => 'New title',
        changed_by => 'user', user_id => $A }], 'one row, changed_by user by default');

    $r = as_role('authenticated', $A, undef,
        q{UPDATE handle_content SET title = 'New title', description = 'New description' WHERE id = ?}, $cid);
    my $h = new_history();
    is_deeply([map { $_->{field_name} } @$h], ['description'], 'only fields that changed are recorded');

    $r = as_role('authenticated', $A, undef, q{UPDATE handle_content SET title = title WHERE id = ?}, $cid);
    is_deeply(new_history(), [], 'a no-op update records nothing');
}

# --- ai (SET LOCAL) ----------------------------------------------------------
{
    my $r = as_role('authenticated', $A, [q{SET LOCAL streamvibe.changed_by = 'ai'}],
        q{UPDATE handle_content SET description = 'AI description', tags = '{x,y,z}' WHERE id = ?}, $cid);
    ok($r->{ok}, 'owner applies an AI suggestion') or diag $r->{err};
    my $h = new_history();
    is_deeply([map { "$_->{field_name}:$_->{changed_by}" } @$h], ['description:ai', 'tags:ai'],
        'rows for description and tags, changed_by ai');
    my ($tags) = grep { $_->{field_name} eq 'tags' } @$h;
    is_deeply([decode_json($tags->{old_value}), decode_json($tags->{new_value})], [['a', 'b'], ['x', 'y', 'z']],
        'tags recorded as JSON arrays');
}

# --- sync (set_config, as the sync job's service_role) -----------------------
{
    my $r = as_role('service_role', undef, [q{SELECT set_config('streamvibe.changed_by', 'sync', true)}],
        q{UPDATE handle_content SET title = 'Title from platform', view_count = 99, like_count = 5 WHERE id = ?}, $cid);
    ok($r->{ok}, 'sync job updates the row') or diag $r->{err};
    is_deeply([map { "$_->{field_name}:$_->{changed_by}" } @{ new_history() }], ['title:sync'],
        'title recorded as sync; counters are not tracked');

    # Transaction-local: the next transaction is back to the default.
    $r = as_role('authenticated', $A, undef, q{UPDATE handle_content SET visibility = 'unlisted' WHERE id = ?}, $cid);
    is_deeply([map { "$_->{field_name}:$_->{changed_by}:$_->{old_value}:$_->{new_value}" } @{ new_history() }],
        ['visibility:user:public:unlisted'], 'the setting does not leak into the next transaction');

    $r = as_role('authenticated', $A, [q{SET LOCAL streamvibe.changed_by = 'robot'}],
        q{UPDATE handle_content SET title = 'Nope' WHERE id = ?}, $cid);
    ok(!$r->{ok}, 'an invalid changed_by is an error');
    is($r->{state}, '22023', 'SQLSTATE 22023');
    is($su->selectrow_array('SELECT title FROM handle_content WHERE id = ?', undef, $cid), 'Title from platform',
        'and the update did not happen');
    is_deeply(new_history(), [], 'nor any history');
}

# --- soft delete keeps history ------------------------------------------------
{
    my ($before) = $su->selectrow_array('SELECT count(*) FROM content_edit_history WHERE content_id = ?', undef, $cid);
    my $r = as_role('authenticated', $A, undef, q{UPDATE handle_content SET deleted_at = now() WHERE id = ?}, $cid);
    ok($r->{ok} && $r->{count} == 1, 'owner soft-deletes the content') or diag $r->{err};
    is($su->selectrow_array('SELECT count(*) FROM content_edit_history WHERE content_id = ?', undef, $cid), $before,
        'history survives the soft delete');
    $r = as_role('authenticated', $A, undef, 'SELECT count(*) AS n FROM content_edit_history WHERE content_id = ?', $cid);
    is($r->{rows}[0]{n}, $before, 'and the owner can still read it');
}

# --- access ---------------------------------------------------------------
{
    my $r = as_role('authenticated', $B, undef, 'SELECT count(*) AS n FROM content_edit_history');
    is($r->{rows}[0]{n}, 0, "another user sees none of A's history");
    $r = as_role('anon', undef, undef, 'SELECT count(*) FROM content_edit_history');
    is($r->{state}, '42501', 'anon cannot read history at all');
    $r = as_role('authenticated', $A, undef,
        q{INSERT INTO content_edit_history (content_id, user_id, field_name, changed_by) VALUES (?, ?, 'title', 'sync')},
        $cid, $A);
    is($r->{state}, '42501', 'users cannot forge history rows');
    $r = as_role('authenticated', $A, undef, 'DELETE FROM content_edit_history');
    is($r->{state}, '42501', 'nor delete them');
    $r = as_role('service_role', undef, undef, 'DELETE FROM content_edit_history');
    is($r->{state}, '42501', 'even the service role cannot rewrite history');
}

done_testing();
