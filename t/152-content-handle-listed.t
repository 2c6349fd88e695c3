#!/usr/bin/perl
# handle_content.handle_listed (sql/022): the copy of its handle's
# "public and active" that the public read policy tests instead of
# looking the handle up. It must always equal the handle's, whoever
# changes what and in whichever order, or anon would see content of a
# private or inactive handle (or miss a listed one):
# - an owner or the service changing a handle's visibility or status
#   changes at once what anon sees of its content;
# - nobody can write the column: clients have no privilege, and a wrong
#   value from the service role violates the foreign key;
# - inserts and moves to another handle take the handle's value;
# - the cascade is not an edit (updated_at and the edit history stay);
# - concurrent writers: a content insert and a handle change serialise
#   (READ COMMITTED: the change waits and then includes the new row;
#   REPEATABLE READ: the change fails with 40001 instead of missing it).
use strict;
use warnings;

use Test::More;
use SV::Test qw(wait_until);
use SV::Test::Stack;

plan skip_all => 'DBD::Pg not installed' unless eval { require DBD::Pg; 1 };
my $s = SV::Test::Stack->new(pool => 0);
my ($pg, $su) = ($s->pg, $s->su);
sub one { scalar $su->selectrow_array(@_) }
sub as_role { $s->as_role(@_) }
sub anon_sees { [sort map { $_->{platform_content_id} } @{ as_role('anon', undef,
    'SELECT platform_content_id FROM handle_content ORDER BY 1')->{rows} // [] }] }
# Rows whose copy differs from their handle's value: must always be 0.
sub drift { one(q{SELECT count(*) FROM handle_content c JOIN account_handles h ON h.id = c.handle_id
                   WHERE c.handle_listed IS DISTINCT FROM h.listed}) }

my $A = $s->user('a@example.com');
my $B = $s->user('b@example.com');
$su->do(q{UPDATE subscription_settings SET tier = 'business'});
my $h1 = $s->handle($A, 'a_one', visibility => 'public');
my $h2 = $s->handle($A, 'a_two', visibility => 'public');
my $hb = $s->handle($B, 'b_one', visibility => 'public');
my %c = map { $_ => $s->content($h1, $_, title => "t $_") } qw(c1 c2);
$c{c3} = $s->content($hb, 'c3', title => 't c3');
$c{c4} = $s->content($h1, 'c4', title => 't c4', visibility => 'private');

is_deeply(anon_sees(), [qw(c1 c2 c3)], 'anon: the public rows of the listed handles');
is(one('SELECT listed FROM account_handles WHERE id = ?', undef, $h1), 1, 'a public, active handle is listed');

# --- the owner changes its handle -------------------------------------------------------------
my $before = $su->selectall_hashref('SELECT id, updated_at FROM handle_content', 'id');
my $edits = one('SELECT count(*) FROM content_edit_history');
my $r = as_role('authenticated', $A, q{UPDATE account_handles SET visibility = 'private' WHERE id = ?}, $h1);
ok($r->{ok}, 'the owner makes its handle private') or diag $r->{err};
is_deeply(anon_sees(), ['c3'], "anon no longer sees that handle's content");
is(one('SELECT count(*) FROM handle_content WHERE handle_id = ? AND handle_listed', undef, $h1), 0,
    'every one of its rows says so, private and soft-deleted ones included');
my $after = $su->selectall_hashref('SELECT id, updated_at FROM handle_content', 'id');
is_deeply($after, $before, 'updated_at of the content is left alone: the content was not edited');
is(one('SELECT count(*) FROM content_edit_history'), $edits, 'and the edit history records nothing');
$r = as_role('authenticated', $A, 'SELECT platform_content_id FROM handle_content WHERE handle_id = ? ORDER BY 1', $h1);
is_deeply([map { $_->{platform_content_id} } @{ $r->{rows} }], [qw(c1 c2 c4)], 'the owner still sees all of it');
$r = as_role('authenticated', $A, q{UPDATE account_handles SET visibility = 'public' WHERE id = ?}, $h1);
is_deeply(anon_sees(), [qw(c1 c2 c3)], 'public again: anon sees it again');
$r = as_role('authenticated', $A, q{UPDATE account_handles SET active_status = 'inactive' WHERE id = ?}, $h1);
is_deeply(anon_sees(), ['c3'], 'inactive: hidden');
$r = as_role('authenticated', $A, q{UPDATE account_handles SET active_status = 'active', visibility = 'unlisted' WHERE id = ?}, $h1);
is_deeply(anon_sees(), ['c3'], 'unlisted: hidden');
$r = as_role('authenticated', $A, q{UPDATE account_handles SET visibility = 'public' WHERE id = ?}, $h1);
$r = as_role('service_role', undef, q{UPDATE account_handles SET active_status = 'suspended' WHERE id = ?}, $h1);
ok($r->{ok}, 'the service suspends the handle') or diag $r->{err};
is_deeply(anon_sees(), ['c3'], 'suspended: hidden');
$su->do(q{UPDATE account_handles SET active_status = 'active' WHERE id = ?}, undef, $h1);
is_deeply(anon_sees(), [qw(c1 c2 c3)], 'lifted by the superuser: shown');

# --- nobody writes the column --------------------------------------------------------------------
$su->do(q{UPDATE account_handles SET visibility = 'private' WHERE id = ?}, undef, $h2);
$r = as_role('authenticated', $A, q{INSERT INTO handle_content (handle_id, platform_content_id, title, handle_listed)
                                    VALUES (?, 'c5', 'sneaky', true)}, $h2);
is($r->{state}, '42501', 'a client cannot set handle_listed on insert');
$r = as_role('authenticated', $A, q{INSERT INTO handle_content (handle_id, platform_content_id, title) VALUES (?, 'c5', 't c5')}, $h2);
ok($r->{ok}, 'the owner adds content to its private handle') or diag $r->{err};
is(one(q{SELECT handle_listed FROM handle_content WHERE platform_content_id = 'c5'}), 0, 'it takes the handle\'s value (not listed)');
$r = as_role('authenticated', $A, q{UPDATE handle_content SET handle_listed = true WHERE platform_content_id = 'c5'});
is($r->{state}, '42501', 'a client cannot update handle_listed');
$r = as_role('service_role', undef, q{UPDATE handle_content SET handle_listed = true WHERE platform_content_id = 'c5'});
is($r->{state}, '23503', 'the service role cannot set a wrong value either: the foreign key refuses it');
is_deeply(anon_sees(), [qw(c1 c2 c3)], 'anon does not see the private handle\'s new row');

# The service moves content between handles of the same user: the row takes the new handle's value.
$r = as_role('service_role', undef, q{UPDATE handle_content SET handle_id = ? WHERE platform_content_id = 'c2'}, $h2);
ok($r->{ok}, 'the service moves c2 to the private handle') or diag $r->{err};
is_deeply(anon_sees(), [qw(c1 c3)], 'c2 is hidden with it');
$r = as_role('service_role', undef, q{UPDATE handle_content SET handle_id = ? WHERE platform_content_id = 'c2'}, $h1);
is_deeply(anon_sees(), [qw(c1 c2 c3)], 'and shown again when moved back');
is(drift(), 0, 'no row differs from its handle');

# --- concurrent writers ----------------------------------------------------------------------------
my $t1 = $pg->dbh(user => 'postgres');
my $t2 = $pg->dbh(user => 'postgres');
$_->do(q{SET lock_timeout = '20s'}) for $t1, $t2;

# READ COMMITTED: content inserted (not yet committed) into a listed
# handle while another transaction makes the handle private. The change
# waits for the insert and then includes its row.
$t1->begin_work;
$t1->do(q{INSERT INTO handle_content (handle_id, platform_content_id, title) VALUES (?, 'rc1', 't rc1')}, undef, $h1);
# (pg_async with bind values runs synchronously in DBD::Pg: quote instead)
$t2->do("UPDATE account_handles SET visibility = 'private' WHERE id = " . $t2->quote($h1), { pg_async => DBD::Pg::PG_ASYNC() });
ok(!wait_until(sub { $t2->pg_ready == 1 }, 1), 'READ COMMITTED: the handle change waits for the uncommitted insert');
$t1->commit;
ok(wait_until(sub { $t2->pg_ready == 1 }, 20), 'and goes on once it commits');
ok(eval { $t2->pg_result; 1 }, 'and succeeds') or diag $@;
is(one(q{SELECT handle_listed FROM handle_content WHERE platform_content_id = 'rc1'}), 0, 'the new row is hidden with its handle');
is_deeply(anon_sees(), ['c3'], 'anon sees nothing of the handle');
is(drift(), 0, 'no row differs from its handle');

# The other order: the change is first and not committed; the insert
# waits for it and takes the committed value.
$t2->begin_work;
$t2->do(q{UPDATE account_handles SET visibility = 'public' WHERE id = ?}, undef, $h1);
$t1->do("INSERT INTO handle_content (handle_id, platform_content_id, title) VALUES (" . $t1->quote($h1) . ", 'rc2', 't rc2')",
    { pg_async => DBD::Pg::PG_ASYNC() });
ok(!wait_until(sub { $t1->pg_ready == 1 }, 1), 'an insert waits for an uncommitted change of its handle');
$t2->commit;
ok(wait_until(sub { $t1->pg_ready == 1 }, 20), 'and goes on once it commits');
ok(eval { $t1->pg_result; 1 }, 'and succeeds') or diag $@;
is(one(q{SELECT handle_listed FROM handle_content WHERE platform_content_id = 'rc2'}), 1, 'with the value committed (listed)');
is(drift(), 0, 'no row differs from its handle');

# REPEATABLE READ: the handle change's snapshot predates an insert that
# commits before the change is made; the cascade must not miss that row.
$t2->begin_work;
$t2->do('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
$t2->selectrow_array('SELECT count(*) FROM handle_content');    # the snapshot
$t1->do(q{INSERT INTO handle_content (handle_id, platform_content_id, title) VALUES (?, 'rr1', 't rr1')}, undef, $h1);
my $ok = eval { $t2->do(q{UPDATE account_handles SET visibility = 'private' WHERE id = ?}, undef, $h1); $t2->commit; 1 };
my $state = $t2->state;
$t2->rollback unless $ok;
ok(!$ok, 'REPEATABLE READ: the change that cannot see a newer row of the handle fails');
is($state, '40001', 'with a serialization failure (retry)');
is(one(q{SELECT visibility FROM account_handles WHERE id = ?}, undef, $h1), 'public', 'nothing changed');
is(drift(), 0, 'no row differs from its handle');
ok(eval { $t2->do(q{UPDATE account_handles SET visibility = 'private' WHERE id = ?}, undef, $h1); 1 }, 'retried, it succeeds');
is(one(q{SELECT count(*) FROM handle_content WHERE handle_id = ? AND handle_listed}, undef, $h1), 0, 'and hides every row');
is(drift(), 0, 'no row differs from its handle');
$_->disconnect for $t1, $t2;

# --- the policy ------------------------------------------------------------------------------------
my $qual = one(q{SELECT pg_get_expr(polqual, polrelid) FROM pg_policy WHERE polname = 'handle_content_public_read'});
unlike($qual, qr/account_handles|SELECT/i, 'the public read policy has no sub-select: ' . $qual);

done_testing();
