#!/usr/bin/perl
# Row-level security and privileges, exercised the way the server runs
# requests: connected as authenticator, SET LOCAL ROLE, request.jwt.claims.
# User B can neither read nor change user A's private rows; a user id in a
# row never widens access; anon sees only live public content of public,
# active handles; credential ciphertexts and auth.* are unreadable.
use strict;
use warnings;

use JSON::PP qw(encode_json);
use Test::More;
use SV::Test::Stack;

plan skip_all => 'DBD::Pg not installed' unless eval { require DBD::Pg; 1 };
my $s = SV::Test::Stack->new(pool => 0);
my ($pg, $su, $api) = ($s->pg, $s->su, $s->api);

# As the server runs SQL: see SV::Test::Pg::run_as_role.
sub as_role { $s->as_role(@_) }
sub ids { [sort map { $_->{id} } @{ $_[0]{rows} // [] }] }
sub one { scalar $su->selectrow_array(@_) }

my $A = $s->user('a@example.com', encrypted_password => 'x');
my $B = $s->user('b@example.com', encrypted_password => 'y');
my $yt = $s->platform('youtube');


# A's world.
my $h_pub      = $s->fixture_handle($A, 'a_public', 'public');
my $h_priv     = $s->fixture_handle($A, 'a_private', 'private');
my $h_unlisted = $s->fixture_handle($A, 'a_unlisted', 'unlisted', 'inactive');
my $c_pub      = $s->fixture_content($h_pub, 'pub', 'public');
my $c_privvis  = $s->fixture_content($h_pub, 'privvis', 'private');
my $c_unl      = $s->fixture_content($h_pub, 'unl', 'unlisted');
my $c_deleted  = $s->fixture_content($h_pub, 'del', 'public', 1);
my $c_on_priv  = $s->fixture_content($h_priv, 'onpriv', 'public');
my $c_on_unl   = $s->fixture_content($h_unlisted, 'onunl', 'public');
my $sugg = one(q{INSERT INTO ai_content_suggestions (content_id, user_id, suggested_title, suggested_tags, model)
                 VALUES (?, ?, 'Better title', '{t1}', 'test-model') RETURNING id}, undef, $c_privvis, $B);
is(one('SELECT user_id FROM ai_content_suggestions WHERE id = ?', undef, $sugg), $A,
    "a suggestion's owner is its content's owner, whatever the writer said");
$su->do(q{INSERT INTO audit_log (user_id, action, resource_type, resource_id) VALUES (?, 'login', 'user', ?)}, undef, $A, $A);
$su->do(q{INSERT INTO audit_log (user_id, resource_type, resource_id, job_id, job_type, job_status,
          job_started_at, job_completed_at) VALUES (?, 'account_handle', ?, gen_random_uuid(), 'platform_sync',
          'completed', now() - interval '1.5 seconds', now())}, undef, $A, $h_pub);
$su->do(q{INSERT INTO platform_credentials (user_id, platform_id, encrypted_access_token, scopes)
          VALUES (?, ?, 'sv1:7:' || repeat('A', 60), '{read}')}, undef, $A, $yt);
$su->do(q{INSERT INTO auth.sessions (user_id) VALUES (?)}, undef, $A);

# B's own handle.
my $h_b = $s->fixture_handle($B, 'b_public', 'public');

my @all_content = sort ($c_pub, $c_privvis, $c_unl, $c_deleted, $c_on_priv, $c_on_unl);

# --- anon ---------------------------------------------------------------------
{
    my $r = as_role('anon', undef, 'SELECT id FROM handle_content');
    is_deeply(ids($r), [$c_pub], 'anon sees only live public content of public, active handles');
    $r = as_role('anon', undef, 'SELECT id FROM account_handles');
    is_deeply(ids($r), [sort($h_pub, $h_b)], 'anon sees only public, active handles');
    $r = as_role('anon', undef, 'SELECT name FROM platforms ORDER BY name');
    is_deeply([map { $_->{name} } @{ $r->{rows} }], [qw(instagram tiktok youtube)], 'anon reads platforms');
    for my $t (qw(ai_content_suggestions platform_credentials platform_connections subscription_settings
                  quota_usage_history content_edit_history audit_log auth.users auth.sessions
                  auth.refresh_tokens auth.login_attempts schema_migrations)) {
        $r = as_role('anon', undef, "SELECT * FROM $t");
        is($r->{state}, '42501', "anon cannot read $t");
    }
    $r = as_role('anon', undef, 'INSERT INTO account_handles (user_id, platform_id, handle) VALUES (?, ?, ?)', $A, $yt, 'x');
    is($r->{state}, '42501', 'anon cannot insert handles');
    $r = as_role('anon', undef, q{UPDATE handle_content SET title = 'pwned'});
    is($r->{state}, '42501', 'anon cannot update content');
}

# --- B cannot read A's private rows -------------------------------------------
{
    my $r = as_role('authenticated', $B, 'SELECT id FROM handle_content');
    is_deeply(ids($r), [$c_pub], "B sees only A's public live content");
    $r = as_role('authenticated', $B, 'SELECT id FROM account_handles');
    is_deeply(ids($r), [sort($h_pub, $h_b)], "B sees A's public handle and their own, not A's private ones");
    for my $t (qw(ai_content_suggestions audit_log content_edit_history quota_usage_history)) {
        $r = as_role('authenticated', $B, "SELECT count(*) AS n FROM $t WHERE user_id = ?", $A);
        is($r->{rows}[0]{n}, 0, "B sees none of A's $t");
    }
    $r = as_role('authenticated', $B, 'SELECT user_id FROM subscription_settings');
    is_deeply([map { $_->{user_id} } @{ $r->{rows} }], [$B], 'B sees only their own subscription');
    $r = as_role('authenticated', $B, 'SELECT id FROM platform_credentials');
    is_deeply(ids($r), [], "B sees none of A's credentials");
    $r = as_role('authenticated', $B, 'SELECT id FROM platform_connections');
    is_deeply(ids($r), [], "nor A's connections");
}

# --- B cannot change A's rows ------------------------------------------------
{
    my $r = as_role('authenticated', $B, q{UPDATE account_handles SET display_name = 'pwned' WHERE id = ?}, $h_pub);
    ok($r->{ok} && $r->{count} == 0, "B's update of A's public handle touches nothing");
    $r = as_role('authenticated', $B, q{UPDATE account_handles SET display_name = 'pwned' WHERE user_id = ?}, $A);
    is($r->{count}, 0, "nor of any of A's handles");
    $r = as_role('authenticated', $B, q{DELETE FROM account_handles WHERE user_id = ?}, $A);
    ok($r->{ok} && $r->{count} == 0, "B's delete of A's handles deletes nothing");
    $r = as_role('authenticated', $B, q{UPDATE handle_content SET title = 'pwned', deleted_at = now() WHERE user_id = ?}, $A);
    ok($r->{ok} && $r->{count} == 0, "B's update of A's content (incl. public) touches nothing");
    $r = as_role('authenticated', $B, q{DELETE FROM handle_content WHERE id = ?}, $c_pub);
    is($r->{state}, '42501', 'content cannot be hard-deleted by users at all');
    $r = as_role('authenticated', $B, q{UPDATE ai_content_suggestions SET title_applied = true WHERE id = ?}, $sugg);
    ok($r->{ok} && $r->{count} == 0, "B cannot mark A's suggestion applied");
    $r = as_role('authenticated', $B, q{DELETE FROM ai_content_suggestions WHERE id = ?}, $sugg);
    ok($r->{ok} && $r->{count} == 0, "B cannot delete A's suggestion");
    $r = as_role('authenticated', $B, q{DELETE FROM platform_credentials WHERE user_id = ?}, $A);
    ok($r->{ok} && $r->{count} == 0, "B cannot disconnect A's platform");
    $r = as_role('authenticated', $B, q{UPDATE audit_log SET action = 'x'});
    is($r->{state}, '42501', 'users cannot update audit_log');
    $r = as_role('authenticated', $B, q{DELETE FROM audit_log});
    is($r->{state}, '42501', 'nor delete from it');
    $r = as_role('authenticated', $B, q{INSERT INTO audit_log (user_id, action) VALUES (?, 'x')}, $B);
    is($r->{state}, '42501', 'nor insert into it');
    $r = as_role('authenticated', $B, q{UPDATE subscription_settings SET tier = 'business'});
    is($r->{state}, '42501', 'users cannot change subscriptions');

    is(one('SELECT count(*) FROM account_handles WHERE user_id = ?', undef, $A), 3, "A's handles intact");
    is(one(q{SELECT count(*) FROM handle_content WHERE title LIKE 'pwned%'}), 0, "A's content intact");
}

# --- a user id in a row never widens access -------------------------------------
{
    my $r = as_role('authenticated', $B, 'INSERT INTO account_handles (user_id, platform_id, handle) VALUES (?, ?, ?)',
        $A, $yt, 'sneaky');
    is($r->{state}, '42501', 'B cannot insert a handle owned by A');
    like($r->{err}, qr/row-level security/, '(refused by the policy)');
    $r = as_role('authenticated', $B,
        q{INSERT INTO handle_content (handle_id, user_id, platform_content_id) VALUES (?, ?, 'x')}, $h_pub, $A);
    is($r->{state}, '42501', "B cannot insert content as A into A's handle");
    $r = as_role('authenticated', $B,
        q{INSERT INTO handle_content (handle_id, platform_content_id) VALUES (?, 'x')}, $h_pub);
    ok(!$r->{ok}, "B cannot attach content of their own to A's handle") and
        like($r->{state}, qr/^(23503|42501)$/, '(FK/RLS error)');
    $r = as_role('authenticated', $B, 'UPDATE account_handles SET user_id = ? WHERE id = ?', $A, $h_b);
    is($r->{state}, '42501', 'B cannot give a handle to A (no privilege on user_id)');
    $r = as_role('authenticated', $B, q{UPDATE account_handles SET active_status = 'suspended' WHERE id = ?}, $h_b);
    is($r->{state}, '42501', "a user cannot set 'suspended' (operator state)");
    $r = as_role('authenticated', $B, 'UPDATE account_handles SET follower_count = 1000000 WHERE id = ?', $h_b);
    is($r->{state}, '42501', 'a user cannot fake server-maintained columns');
    $r = as_role('authenticated', undef, 'INSERT INTO account_handles (platform_id, handle) VALUES (?, ?)', $yt, 'nosub');
    ok(!$r->{ok}, 'authenticated without a sub claim cannot insert');
}

# --- A's own access --------------------------------------------------------------
{
    my $r = as_role('authenticated', $A, 'SELECT id FROM handle_content');
    is_deeply(ids($r), \@all_content, 'A sees all own content, soft-deleted included');
    $r = as_role('authenticated', $A, 'SELECT id FROM account_handles WHERE user_id = ?', $A);
    is(scalar @{ $r->{rows} }, 3, 'A sees all own handles');
    $r = as_role('authenticated', $A, 'SELECT id, fully_applied FROM ai_content_suggestions');
    is_deeply(ids($r), [$sugg], 'A sees own suggestion');
    $r = as_role('authenticated', $A, q{UPDATE ai_content_suggestions SET title_applied = true WHERE id = ?
        RETURNING fully_applied, applied_at IS NOT NULL AS has_applied_at}, $sugg);
    ok($r->{ok} && $r->{count} == 1, 'A marks the title applied') or diag $r->{err};
    ok(!$r->{rows}[0]{fully_applied} && $r->{rows}[0]{has_applied_at}, 'not fully applied yet, applied_at set');
    $r = as_role('authenticated', $A, q{UPDATE ai_content_suggestions SET tags_applied = true WHERE id = ?
        RETURNING fully_applied}, $sugg);
    ok($r->{rows}[0]{fully_applied}, 'fully applied once every suggested part is applied');
    $r = as_role('authenticated', $A, q{UPDATE ai_content_suggestions SET suggested_title = 'mine' WHERE id = ?}, $sugg);
    is($r->{state}, '42501', 'A cannot rewrite the suggestion itself');
    $r = as_role('authenticated', $A, 'SELECT job_duration_ms FROM audit_log WHERE job_id IS NOT NULL');
    is($r->{rows}[0]{job_duration_ms}, 1500, 'A reads own audit rows; job_duration_ms filled in');
    $r = as_role('authenticated', $A, 'SELECT count(*) AS n FROM audit_log');
    is($r->{rows}[0]{n}, 2, 'A sees both own audit rows');

    # Credentials: metadata yes, secrets never.
    $r = as_role('authenticated', $A, 'SELECT platform_id, scopes, is_active FROM platform_credentials');
    is(scalar @{ $r->{rows} }, 1, 'A sees which platform is connected (non-secret columns)');
    for my $col (qw(encrypted_access_token encrypted_refresh_token key_id)) {
        $r = as_role('authenticated', $A, "SELECT $col FROM platform_credentials");
        is($r->{state}, '42501', "A cannot read $col of own credentials");
        $r = as_role('anon', undef, "SELECT $col FROM platform_credentials");
        is($r->{state}, '42501', "anon cannot read $col");
    }
    $r = as_role('authenticated', $A, 'SELECT * FROM platform_credentials');
    is($r->{state}, '42501', 'SELECT * on platform_credentials is refused');
    $r = as_role('authenticated', $A, 'SELECT platform FROM platform_connections');
    is_deeply([map { $_->{platform} } @{ $r->{rows} }], ['youtube'], 'platform_connections view for clients');
    $r = as_role('authenticated', $A, 'SELECT * FROM platform_connections');
    ok($r->{ok} && !grep({ /encrypted|key_id/ } keys %{ $r->{rows}[0] // {} }),
        'the view exposes no secret column');
    $r = as_role('authenticated', $A,
        q{SELECT count(*) AS n FROM platform_credentials WHERE encrypted_access_token IS NOT NULL});
    is($r->{state}, '42501', 'secret columns cannot be probed in WHERE either');

    for my $t (qw(auth.users auth.sessions auth.refresh_tokens auth.login_attempts)) {
        $r = as_role('authenticated', $A, "SELECT count(*) FROM $t");
        is($r->{state}, '42501', "authenticated cannot read $t");
    }
    $r = as_role('authenticated', $A, 'SELECT auth.uid() AS uid, auth.role() AS role');
    is_deeply($r->{rows}[0], { uid => $A, role => 'authenticated' }, 'auth.uid()/auth.role() read the claims');

    # Soft delete through the API hides the row from everyone else.
    $r = as_role('authenticated', $A, 'UPDATE handle_content SET deleted_at = now() WHERE id = ?', $c_pub);
    is($r->{count}, 1, 'A soft-deletes own public content');
    $r = as_role('anon', undef, 'SELECT id FROM handle_content');
    is_deeply(ids($r), [], 'anon no longer sees it');
}

# --- the server's roles ---------------------------------------------------------
{
    my $ok = eval { $api->selectrow_array('SELECT count(*) FROM handle_content'); 1 };
    ok(!$ok && $api->state eq '42501', 'authenticator without SET ROLE can read nothing (NOINHERIT)');
    my $r = as_role('service_role', undef, 'SELECT count(*) AS n FROM handle_content');
    is($r->{rows}[0]{n}, scalar @all_content, 'service_role bypasses RLS');
    $r = as_role('service_role', undef, 'SELECT count(*) AS n FROM auth.users');
    is($r->{rows}[0]{n}, 2, 'service_role reads auth.users (the server auth code)');
    $r = as_role('service_role', undef, 'SELECT auth.uid() AS uid');
    ok($r->{ok} && !defined $r->{rows}[0]{uid}, 'auth.uid() is NULL without a sub claim');
    my $fresh = $pg->dbh(user => 'postgres');
    is_deeply([$fresh->selectrow_array('SELECT auth.uid(), auth.role(), auth.jwt()')], [undef, undef, undef],
        'auth.uid()/role()/jwt() are NULL when request.jwt.claims was never set');
    $fresh->do(q{SELECT set_config('request.jwt.claims', '', false)});
    is_deeply([$fresh->selectrow_array('SELECT auth.uid(), auth.role(), auth.jwt()')], [undef, undef, undef],
        'and when it is empty');
    $fresh->disconnect;

    my $roles = $su->selectall_hashref(q{SELECT rolname, rolcanlogin, rolinherit, rolbypassrls, rolsuper
        FROM pg_roles WHERE rolname IN ('anon', 'authenticated', 'service_role', 'authenticator')}, 'rolname');
    ok(!$roles->{$_}{rolcanlogin} && !$roles->{$_}{rolsuper}, "$_ cannot log in") for qw(anon authenticated service_role);
    ok($roles->{service_role}{rolbypassrls}, 'service_role bypasses RLS');
    ok(!$roles->{anon}{rolbypassrls} && !$roles->{authenticated}{rolbypassrls}, 'anon/authenticated do not');
    ok($roles->{authenticator}{rolcanlogin} && !$roles->{authenticator}{rolinherit}
        && !$roles->{authenticator}{rolbypassrls}, 'authenticator: LOGIN NOINHERIT');

    # Every table in public except the migrator's bookkeeping has RLS on.
    my $norls = $su->selectcol_arrayref(q{SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname IN ('public', 'auth', 'vault') AND c.relkind = 'r' AND NOT c.relrowsecurity
          AND c.relname <> 'schema_migrations' ORDER BY 1});
    is_deeply($norls, [], 'RLS is enabled on every table');

    # Every SECURITY DEFINER function pins its search_path.
    my $unpinned = $su->selectcol_arrayref(q{SELECT p.oid::regprocedure::text FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname IN ('public', 'auth') AND p.prosecdef
          AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')});
    is_deeply($unpinned, [], 'every SECURITY DEFINER function sets search_path');
}

done_testing();
