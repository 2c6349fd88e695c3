#!/usr/bin/perl
# Handles: a handle with content (even soft-deleted) cannot be deleted
# (SQLSTATE 23503, message says to unlist), a handle without content can;
# unlisting hides the content from the public; handle spelling is
# normalised; the handle count quota; account deletion.
use strict;
use warnings;

use JSON::PP qw(encode_json);
use Test::More;
use SV::Test::Stack;

plan skip_all => 'DBD::Pg not installed' unless eval { require DBD::Pg; 1 };
my $s = SV::Test::Stack->new(pool => 0);
my $su = $s->su;

# As the server runs SQL: see SV::Test::Pg::run_as_role.
sub as_role { $s->as_role(@_) }

my $A = $s->user('alice@example.com');
my $B = $s->user('bob@example.com');
my ($yt, $ig) = map { $s->platform($_) } qw(youtube instagram);

sub add_handle {
    my ($uid, $platform, $handle, %col) = @_;
    my $r = as_role('authenticated', $uid,
        'INSERT INTO account_handles (platform_id, handle, visibility) VALUES (?, ?, ?) RETURNING id, handle',
        $platform, $handle, $col{visibility} // 'public');
    die "add_handle $handle: $r->{err}" unless $r->{ok};
    return $r->{rows}[0]{id};
}

sub add_content {
    my ($uid, $handle_id, $pcid, %col) = @_;
    my $r = as_role('authenticated', $uid,
        'INSERT INTO handle_content (handle_id, platform_content_id, title, visibility) VALUES (?, ?, ?, ?) RETURNING id',
        $handle_id, $pcid, $col{title} // "video $pcid", $col{visibility} // 'public');
    die "add_content $pcid: $r->{err}" unless $r->{ok};
    return $r->{rows}[0]{id};
}

sub count_su { scalar $su->selectrow_array(@_) }

# --- deleting a handle with content is refused ------------------------------
my $h1 = add_handle($A, $yt, 'AliceCooks');
my $c1 = add_content($A, $h1, 'vid-1');
{
    is(count_su('SELECT handle FROM account_handles WHERE id = ?', undef, $h1), 'alicecooks',
        'handle stored lower-cased');
    is(count_su('SELECT user_id FROM handle_content WHERE id = ?', undef, $c1), $A,
        'content user_id defaults to the caller');
    is(count_su('SELECT platform_id FROM handle_content WHERE id = ?', undef, $c1), $yt,
        "content platform_id filled from its handle");

    my $r = as_role('authenticated', $A, 'DELETE FROM account_handles WHERE id = ?', $h1);
    ok(!$r->{ok}, 'owner cannot delete a handle that has content');
    is($r->{state}, '23503', 'SQLSTATE 23503 (maps to HTTP 409)');
    like($r->{err}, qr/visibility = 'unlisted'/, 'the message says to set visibility unlisted');
    is(count_su('SELECT count(*) FROM account_handles WHERE id = ?', undef, $h1), 1, 'handle still there');
    is(count_su('SELECT count(*) FROM handle_content WHERE handle_id = ?', undef, $h1), 1, 'content intact');

    # Nobody bypasses it: not the server's service role, not a superuser.
    $r = as_role('service_role', undef, 'DELETE FROM account_handles WHERE id = ?', $h1);
    is($r->{state}, '23503', 'service_role cannot delete it either');
    eval { $su->do('DELETE FROM account_handles WHERE id = ?', undef, $h1) };
    is($su->state, '23503', 'nor a superuser');
    like($su->errstr, qr/HINT:.*UPDATE account_handles SET visibility = 'unlisted'/s,
        'the hint carries the UPDATE to run');

    # Soft-deleted content still protects the handle.
    $r = as_role('authenticated', $A, 'UPDATE handle_content SET deleted_at = now() WHERE id = ?', $c1);
    is($r->{count}, 1, 'owner soft-deletes the content');
    $r = as_role('authenticated', $A, 'DELETE FROM account_handles WHERE id = ?', $h1);
    is($r->{state}, '23503', 'a handle whose content is all soft-deleted still cannot be deleted');
    is(count_su('SELECT count(*) FROM handle_content WHERE id = ?', undef, $c1), 1, 'soft-deleted row kept');
}

# --- deleting a handle without content works --------------------------------
{
    my $h2 = add_handle($A, $ig, '@alice.insta');
    is(count_su('SELECT handle FROM account_handles WHERE id = ?', undef, $h2), 'alice.insta',
        'leading @ stripped');
    is(count_su('SELECT current_handles_count FROM subscription_settings WHERE user_id = ?', undef, $A), 2,
        'handle counter follows inserts');
    my $r = as_role('authenticated', $A, 'DELETE FROM account_handles WHERE id = ?', $h2);
    ok($r->{ok}, 'a handle without content can be deleted') or diag $r->{err};
    is($r->{count}, 1, 'one row deleted');
    is(count_su('SELECT count(*) FROM account_handles WHERE id = ?', undef, $h2), 0, 'it is gone');
    is(count_su('SELECT current_handles_count FROM subscription_settings WHERE user_id = ?', undef, $A), 1,
        'handle counter follows deletes');
    is(count_su(q{SELECT count(*) FROM quota_usage_history WHERE user_id = ? AND quota_type = 'handles'},
        undef, $A), 3, 'handle spends and refunds are in the ledger');
}

# --- unlisting hides the content from everyone but the owner ---------------
{
    my $h3 = add_handle($A, $ig, 'alice_public');
    my $c3 = add_content($A, $h3, 'post-3', title => 'public post');

    my $r = as_role('anon', undef, 'SELECT id FROM handle_content WHERE handle_id = ?', $h3);
    is(scalar @{ $r->{rows} }, 1, 'anon sees the public content of a public handle');
    $r = as_role('authenticated', $B, 'SELECT id FROM handle_content WHERE handle_id = ?', $h3);
    is(scalar @{ $r->{rows} }, 1, 'another user sees it too');

    $r = as_role('authenticated', $A,
        q{UPDATE account_handles SET visibility = 'unlisted', active_status = 'inactive' WHERE id = ?}, $h3);
    ok($r->{ok}, 'owner unlists the handle') or diag $r->{err};
    is($r->{count}, 1, 'one handle updated');

    $r = as_role('anon', undef, 'SELECT id FROM handle_content WHERE handle_id = ?', $h3);
    is(scalar @{ $r->{rows} }, 0, 'anon no longer sees its content');
    $r = as_role('anon', undef, 'SELECT id FROM account_handles WHERE id = ?', $h3);
    is(scalar @{ $r->{rows} }, 0, 'nor the handle');
    $r = as_role('authenticated', $B, 'SELECT id FROM handle_content WHERE handle_id = ?', $h3);
    is(scalar @{ $r->{rows} }, 0, 'nor does another user');
    $r = as_role('authenticated', $A, 'SELECT id FROM handle_content WHERE handle_id = ?', $h3);
    is(scalar @{ $r->{rows} }, 1, 'the owner still does');

    # Only unlisted, or only inactive, is enough to hide it as well.
    $su->do(q{UPDATE account_handles SET visibility = 'public', active_status = 'inactive' WHERE id = ?}, undef, $h3);
    $r = as_role('anon', undef, 'SELECT id FROM handle_content WHERE handle_id = ?', $h3);
    is(scalar @{ $r->{rows} }, 0, 'content of an inactive public handle is hidden');
    $su->do(q{UPDATE account_handles SET visibility = 'public', active_status = 'active' WHERE id = ?}, undef, $h3);
    $r = as_role('anon', undef, 'SELECT id FROM handle_content WHERE handle_id = ?', $h3);
    is(scalar @{ $r->{rows} }, 1, 'relisting shows it again');
}

# --- same handle twice, handle quota ---------------------------------------
{
    my $r = as_role('authenticated', $A,
        'INSERT INTO account_handles (platform_id, handle) VALUES (?, ?)', $yt, '@ALICECOOKS');
    is($r->{state}, '23505', 'the same handle (any spelling) cannot be linked twice by one user');
    $r = as_role('authenticated', $B,
        'INSERT INTO account_handles (platform_id, handle) VALUES (?, ?)', $yt, 'alicecooks');
    ok($r->{ok}, 'another user may claim the same handle (ownership is proven by OAuth, not here)')
        or diag $r->{err};

    # Free tier: 3 handles. A has alicecooks and alice_public.
    add_handle($A, $yt, 'third_one');
    $r = as_role('authenticated', $A,
        'INSERT INTO account_handles (platform_id, handle) VALUES (?, ?)', $yt, 'fourth_one');
    ok(!$r->{ok}, 'a fourth handle on the free tier is refused');
    is($r->{state}, 'PT429', 'with SQLSTATE PT429');
    like($r->{err}, qr/handle limit/, 'and a message saying why');
    is(count_su('SELECT current_handles_count FROM subscription_settings WHERE user_id = ?', undef, $A), 3,
        'the refused insert spent nothing');
}

# --- account deletion -------------------------------------------------------
{
    eval { $su->do('DELETE FROM auth.users WHERE id = ?', undef, $A) };
    ok($su->state, 'a bare DELETE of a user with content fails (nothing lost by accident)');
    is(count_su('SELECT count(*) FROM handle_content WHERE user_id = ?', undef, $A), 2, 'content still there');

    my $r = as_role('authenticated', $A, 'SELECT auth.delete_user(?)', $A);
    is($r->{state}, '42501', 'users cannot call auth.delete_user');

    $r = as_role('service_role', undef, 'SELECT auth.delete_user(?) AS deleted', $A);
    ok($r->{ok}, 'service_role deletes the account') or diag $r->{err};
    ok($r->{rows}[0]{deleted}, 'auth.delete_user returns true');
    is(count_su('SELECT count(*) FROM account_handles WHERE user_id = ?', undef, $A), 0, 'handles gone');
    is(count_su('SELECT count(*) FROM handle_content WHERE user_id = ?', undef, $A), 0, 'content gone');
    is(count_su('SELECT count(*) FROM subscription_settings WHERE user_id = ?', undef, $A), 0, 'quota row gone');
    is(count_su('SELECT count(*) FROM account_handles WHERE user_id = ?', undef, $B), 1, "B's handle untouched");
}

done_testing();
