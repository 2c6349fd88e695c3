#!/usr/bin/perl
# Quotas: 50 concurrent spends against a limit of 10 spend exactly 10;
# refunds never go below zero and, with a job id, never exceed what the
# job spent; lazy monthly reset on check and on spend; clients may check
# only their own quota and may not spend or refund; tiers; quota_status().
use strict;
use warnings;

use JSON::PP qw(encode_json decode_json);
use POSIX ();
use Test::More;
use SV::Test qw(wait_until);
use SV::Test::Stack;

plan skip_all => 'DBD::Pg not installed' unless eval { require DBD::Pg; 1 };
my $stack = SV::Test::Stack->new(pool => 0);
my ($pg, $su, $api) = ($stack->pg, $stack->su, $stack->api);

# As the server runs SQL: see SV::Test::Pg::run_as_role.
sub as_role { $stack->as_role(@_) }

sub one { scalar $su->selectrow_array(@_) }
sub settings {
    my ($uid) = @_;
    return $su->selectrow_hashref('SELECT *, resets_at > now() AS in_future,
        resets_at = date_trunc(\'month\', now() AT TIME ZONE \'UTC\') AT TIME ZONE \'UTC\' + interval \'1 month\' AS next_boundary
        FROM subscription_settings WHERE user_id = ?', undef, $uid);
}

my $U = $stack->user('u@example.com');
my $V = $stack->user('v@example.com');

# --- new users start on the free tier ---------------------------------------
{
    my $s = settings($U);
    ok($s, 'a subscription row was created with the user');
    is($s->{tier}, 'free', 'on the free tier');
    is($s->{max_syncs_per_month}, one(q{SELECT max_syncs_per_month FROM subscription_tiers WHERE tier = 'free'}),
        'with the free tier limits');
    ok($s->{next_boundary}, 'resets at the next UTC month boundary');
}

# --- 50 concurrent spends against a limit of 10 -----------------------------
{
    $su->do('UPDATE subscription_settings SET max_syncs_per_month = 10 WHERE user_id = ?', undef, $U);
    my $n = 50;
    # Barrier: we hold an exclusive advisory lock; every child connects,
    # queues for it in shared mode, and only then calls increment_quota, so
    # all 50 calls start together once we let go.
    $su->do('SELECT pg_advisory_lock(4242)');
    my @pids;
    for my $i (1 .. $n) {
        my $pid = fork;
        die "fork: $!" unless defined $pid;
        if ($pid == 0) {
            my $code = 3;
            eval {
                my $dbh = $pg->dbh(user => 'authenticator');
                $dbh->begin_work;
                $dbh->do('SET LOCAL ROLE service_role');
                $dbh->do('SELECT pg_advisory_xact_lock_shared(4242)');
                my ($ok) = $dbh->selectrow_array(q{SELECT increment_quota(?, 'syncs', 1, 'test', NULL)},
                    undef, $U);
                $dbh->commit;
                $dbh->disconnect;
                $code = $ok ? 0 : 1;
                1;
            } or print STDERR "child $i: $@";
            POSIX::_exit($code);
        }
        push @pids, $pid;
    }
    my $waiting = wait_until(sub {
        one(q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted}) == $n
    }, 60);
    ok($waiting, "all $n spenders are connected and waiting at the barrier");
    $su->do('SELECT pg_advisory_unlock(4242)');
    my %rc;
    for my $pid (@pids) {
        waitpid($pid, 0);
        $rc{ $? >> 8 }++;
    }
    is($rc{0} // 0, 10, 'exactly 10 spends returned true');
    is($rc{1} // 0, $n - 10, 'the other 40 returned false');
    ok(!$rc{3}, 'no spender errored') or diag explain \%rc;
    is(one('SELECT current_syncs_count FROM subscription_settings WHERE user_id = ?', undef, $U), 10,
        'counter is exactly 10');
    is(one(q{SELECT count(*) FROM quota_usage_history WHERE user_id = ? AND quota_type = 'syncs' AND amount = 1},
        undef, $U), 10, 'history holds exactly 10 spends');
}

# --- check, refund ---------------------------------------------------------
{
    my $r = as_role('service_role', undef, q{SELECT check_quota(?, 'syncs', 1) AS ok}, $U);
    ok($r->{ok} && !$r->{rows}[0]{ok}, 'check_quota is false at the limit');
    $r = as_role('service_role', undef, q{SELECT increment_quota(?, 'syncs') AS ok}, $U);
    ok($r->{ok} && !$r->{rows}[0]{ok}, 'increment_quota is false at the limit (default amount 1)');

    $r = as_role('service_role', undef, q{SELECT decrement_quota(?, 'syncs', 3) AS ok}, $U);
    ok($r->{rows}[0]{ok}, 'decrement_quota refunds');
    is(one('SELECT current_syncs_count FROM subscription_settings WHERE user_id = ?', undef, $U), 7, 'counter 7');
    $r = as_role('service_role', undef, q{SELECT check_quota(?, 'syncs', 3) AS a, check_quota(?, 'syncs', 4) AS b}, $U, $U);
    ok($r->{rows}[0]{a} && !$r->{rows}[0]{b}, 'check_quota honours the amount');

    as_role('service_role', undef, q{SELECT decrement_quota(?, 'syncs', 100)}, $U);
    is(one('SELECT current_syncs_count FROM subscription_settings WHERE user_id = ?', undef, $U), 0,
        'a refund never goes below zero');
    is(one(q{SELECT amount FROM quota_usage_history WHERE user_id = ? ORDER BY id DESC LIMIT 1}, undef, $U), -7,
        'the ledger records what was actually refunded');

    # Job-scoped refunds: at most what the job spent, once.
    my $job = '6f1c7a52-8d8e-4a2e-9b61-1c2d3e4f5a6b';
    as_role('service_role', undef, q{SELECT increment_quota(?, 'ai', 2, 'ai job', ?)}, $U, $job);
    as_role('service_role', undef, q{SELECT increment_quota(?, 'ai', 4, 'other')}, $U);
    as_role('service_role', undef, q{SELECT decrement_quota(?, 'ai', 5, 'job failed', ?)}, $U, $job);
    is(one('SELECT current_ai_count FROM subscription_settings WHERE user_id = ?', undef, $U), 4,
        'a job refund returns only what that job spent');
    as_role('service_role', undef, q{SELECT decrement_quota(?, 'ai', 2, 'job failed again', ?)}, $U, $job);
    is(one('SELECT current_ai_count FROM subscription_settings WHERE user_id = ?', undef, $U), 4,
        'a second refund of the same job returns nothing');

    $r = as_role('service_role', undef, q{SELECT increment_quota(?, 'bananas', 1)}, $U);
    is($r->{state}, '22023', 'unknown quota type: 22023');
    $r = as_role('service_role', undef, q{SELECT increment_quota(?, 'syncs', 0)}, $U);
    is($r->{state}, '22023', 'non-positive amount: 22023');
    $r = as_role('service_role', undef, q{SELECT increment_quota(?, 'syncs', 1) AS ok}, '00000000-0000-0000-0000-000000000000');
    ok($r->{ok} && !$r->{rows}[0]{ok}, 'unknown user: false');
}

# --- lazy monthly reset ------------------------------------------------------
{
    $su->do(q{UPDATE subscription_settings SET current_syncs_count = 10, current_ai_count = 5,
        current_indexing_count = 3, resets_at = now() - interval '1 day' WHERE user_id = ?}, undef, $U);
    my $handles_before = one('SELECT current_handles_count FROM subscription_settings WHERE user_id = ?', undef, $U);

    my $r = as_role('authenticated', $U, q{SELECT check_quota(?, 'syncs', 1) AS ok}, $U);
    ok($r->{ok} && $r->{rows}[0]{ok}, 'after resets_at passed, the check succeeds') or diag $r->{err};
    my $s = settings($U);
    is($s->{current_syncs_count}, 0, 'the check reset the syncs counter');
    is($s->{current_ai_count}, 0, 'and the ai counter');
    is($s->{current_indexing_count}, 0, 'and the indexing counter');
    is($s->{current_handles_count}, $handles_before, 'but not the handle count');
    ok($s->{next_boundary}, 'resets_at moved to the next month boundary');

    # Many months overdue, reset by a spend this time.
    $su->do(q{UPDATE subscription_settings SET current_syncs_count = 10,
        resets_at = now() - interval '5 months' WHERE user_id = ?}, undef, $U);
    $r = as_role('service_role', undef, q{SELECT increment_quota(?, 'syncs', 1) AS ok}, $U);
    ok($r->{rows}[0]{ok}, 'a spend after resets_at passed succeeds');
    $s = settings($U);
    is($s->{current_syncs_count}, 1, 'the spend reset the counter and then spent 1');
    ok($s->{next_boundary}, 'resets_at is the next boundary after now, not after the old date');
    $r = as_role('service_role', undef, q{SELECT increment_quota(?, 'syncs', 9) AS ok}, $U);
    ok($r->{rows}[0]{ok}, 'the full limit is available again');
}

# --- what clients may and may not do ---------------------------------------
{
    my $r = as_role('authenticated', $U, q{SELECT increment_quota(?, 'syncs', 1)}, $U);
    is($r->{state}, '42501', 'authenticated cannot execute increment_quota');
    $r = as_role('authenticated', $U, q{SELECT decrement_quota(?, 'syncs', 1)}, $U);
    is($r->{state}, '42501', 'authenticated cannot execute decrement_quota');
    $r = as_role('anon', undef, q{SELECT increment_quota(?, 'syncs', 1)}, $U);
    is($r->{state}, '42501', 'anon cannot execute increment_quota');
    $r = as_role('authenticated', $U, q{SELECT sv_quota_spend(?, 'syncs', 1, NULL, NULL)}, $U);
    is($r->{state}, '42501', 'nor the internal spend function');

    $r = as_role('authenticated', $V, q{SELECT check_quota(?, 'syncs', 1) AS ok}, $V);
    ok($r->{ok} && $r->{rows}[0]{ok}, 'a user can check their own quota') or diag $r->{err};
    $r = as_role('authenticated', $V, q{SELECT check_quota(?, 'syncs', 1)}, $U);
    is($r->{state}, '42501', "checking another user's quota is refused");
    $r = as_role('authenticated', $V, q{SELECT check_quota(?, 'syncs', 1)}, '00000000-0000-0000-0000-000000000000');
    is($r->{state}, '42501', 'the same refusal for a user that does not exist (no leak)');
    $r = as_role('anon', undef, q{SELECT check_quota(?, 'syncs', 1)}, $U);
    is($r->{state}, '42501', 'anon cannot check quotas');

    # authenticator without SET ROLE has no privileges of its own.
    my $ok = eval { $api->selectrow_array(q{SELECT check_quota(?, 'syncs', 1)}, undef, $U); 1 };
    ok(!$ok && $api->state eq '42501', 'authenticator without SET ROLE cannot use the quota functions');

    $r = as_role('authenticated', $V, 'UPDATE subscription_settings SET max_syncs_per_month = 1000000');
    is($r->{state}, '42501', 'users cannot change their limits');
    $r = as_role('authenticated', $V, 'SELECT user_id FROM subscription_settings');
    is_deeply([map { $_->{user_id} } @{ $r->{rows} }], [$V], 'users read only their own subscription row');
    $r = as_role('authenticated', $V, 'SELECT count(*) AS n FROM quota_usage_history');
    is($r->{rows}[0]{n}, 0, "users do not see others' quota history");
    $r = as_role('authenticated', $U, 'SELECT count(*) AS n FROM quota_usage_history');
    ok($r->{rows}[0]{n} > 10, 'but see their own');
    $r = as_role('authenticated', $U, q{INSERT INTO quota_usage_history (user_id, quota_type, amount, used_after) VALUES (?, 'syncs', -5, 0)}, $U);
    is($r->{state}, '42501', 'users cannot write the quota ledger');
}

# --- quota_status and tiers ---------------------------------------------------
{
    my $r = as_role('authenticated', $U, 'SELECT quota_status() AS s');
    ok($r->{ok}, 'quota_status() works for a user') or diag $r->{err};
    my $s = decode_json($r->{rows}[0]{s});
    is($s->{user_id}, $U, 'for the caller');
    is($s->{tier}, 'free', 'with the tier');
    is($s->{quotas}{syncs}{used}, 10, 'syncs used');
    is($s->{quotas}{syncs}{limit}, 10, 'syncs limit');
    is($s->{quotas}{syncs}{remaining}, 0, 'syncs remaining');
    ok(exists $s->{quotas}{$_}, "has $_") for qw(ai indexing handles);
    ok($s->{resets_at}, 'and resets_at');

    $su->do(q{UPDATE subscription_settings SET tier = 'pro' WHERE user_id = ?}, undef, $U);
    is(one('SELECT max_syncs_per_month FROM subscription_settings WHERE user_id = ?', undef, $U),
        one(q{SELECT max_syncs_per_month FROM subscription_tiers WHERE tier = 'pro'}),
        'changing the tier applies its limits');
    $r = as_role('service_role', undef, q{SELECT increment_quota(?, 'syncs', 1) AS ok}, $U);
    ok($r->{rows}[0]{ok}, 'and spending works again');

    $r = as_role('anon', undef, 'SELECT tier FROM subscription_tiers ORDER BY max_handles');
    is_deeply([map { $_->{tier} } @{ $r->{rows} }], [qw(free pro business)], 'tiers are public');
}

# --- a tier's new limits reach the users on it (sql/047) ---------------------
# Users who still have the tier's limit take the new one; a limit given
# to one user stays; users on other tiers and the other limits are
# untouched.
{
    my ($T1, $T2, $T3) = map { $stack->user("tier$_\@example.com") } 1 .. 3;
    $su->do(q{UPDATE subscription_settings SET max_ai_per_month = 999 WHERE user_id = ?}, undef, $T2);
    $su->do(q{UPDATE subscription_settings SET tier = 'pro' WHERE user_id = ?}, undef, $T3);
    my $limits = sub {
        my ($uid) = @_;
        return $su->selectrow_hashref(q{SELECT max_handles, max_syncs_per_month, max_ai_per_month,
            max_indexing_per_month FROM subscription_settings WHERE user_id = ?}, undef, $uid);
    };
    my %before = map { $_ => $limits->($_) } $T1, $T2, $T3;
    my $free_ai = one(q{SELECT max_ai_per_month FROM subscription_tiers WHERE tier = 'free'});
    isnt($before{$T2}{max_ai_per_month}, $free_ai, 'one free user has an AI limit of their own');

    my $r = as_role('service_role', undef, q{UPDATE subscription_tiers SET display_name = 'Gratis' WHERE tier = 'free'});
    ok($r->{ok}, 'renaming the free tier') or diag $r->{err};
    is_deeply({ map { $_ => $limits->($_) } $T1, $T2, $T3 }, \%before, 'changes no one\'s limits');

    $r = as_role('service_role', undef, q{UPDATE subscription_tiers
        SET max_ai_per_month = max_ai_per_month + 7, max_syncs_per_month = max_syncs_per_month + 5,
            max_handles = max_handles + 1, max_indexing_per_month = max_indexing_per_month + 3
        WHERE tier = 'free'});
    ok($r->{ok}, 'the service role raises the free tier\'s four limits') or diag $r->{err};
    my %raised = (max_ai_per_month => 7, max_syncs_per_month => 5, max_handles => 1, max_indexing_per_month => 3);
    is_deeply($limits->($T1), { map { $_ => $before{$T1}{$_} + $raised{$_} } keys %raised },
        'a free user on the tier\'s limits has the four new ones');
    is_deeply($limits->($T2), { map { $_ => $before{$T2}{$_} + ($_ eq 'max_ai_per_month' ? 0 : $raised{$_}) } keys %raised },
        'the user with their own AI limit keeps it, and has the three others');
    is_deeply($limits->($T3), $before{$T3}, 'a pro user is untouched');

    $r = as_role('authenticated', $T1, q{SELECT quota_status() AS s});
    is(decode_json($r->{rows}[0]{s})->{quotas}{ai}{limit}, $free_ai + 7, 'quota_status shows the user the new limit');

    $r = as_role('authenticated', $T1, q{UPDATE subscription_tiers SET max_ai_per_month = 100000});
    is($r->{state}, '42501', 'a user cannot change a tier');
    is($limits->($T1)->{max_ai_per_month}, $free_ai + 7, 'and their limit stays');
}

# --- 'handles' is counted by the handles themselves ---------------------------
# The V2 document calls decrement_quota(uid, 'handles', 1) after deleting
# a handle; the delete's trigger has already uncounted it, so the call
# must not take it off again (nor increment_quota count one twice).
{
    my $W = $stack->user('w@example.com');
    my $count = sub { one('SELECT current_handles_count FROM subscription_settings WHERE user_id = ?', undef, $W) };
    my $call = sub {
        my ($fn, $amount) = @_;
        my $r = as_role('service_role', undef, "SELECT $fn(?, 'handles', ?) AS ok", $W, $amount // 1);
        return $r;
    };
    $su->do('UPDATE subscription_settings SET max_handles = 2 WHERE user_id = ?', undef, $W);
    my @h = map { $stack->handle($W, "w$_") } 1 .. 2;
    is($count->(), 2, 'two handles linked: 2 used');
    my $r = $call->('increment_quota');
    ok($r->{ok}, 'increment_quota(handles) as service_role') or diag $r->{err};
    ok(!$r->{rows}[0]{ok}, 'at the limit: one more does not fit');
    is($count->(), 2, 'and nothing was counted');

    $su->do('DELETE FROM account_handles WHERE id = ?', undef, $h[1]);
    is($count->(), 1, 'a handle deleted: 1 used');
    $r = $call->('decrement_quota');
    ok($r->{ok} && $r->{rows}[0]{ok}, "the V2 document's decrement_quota(handles) after the delete: true")
        or diag $r->{err};
    is($count->(), 1, 'and the deleted handle is not taken off a second time');
    $r = $call->('increment_quota');
    ok($r->{rows}[0]{ok}, 'one more fits again');
    is($count->(), 1, 'asking spends nothing');
    $stack->handle($W, 'w3');
    is($count->(), 2, 'linking it counts it');
    my $err = eval { $stack->handle($W, 'w4'); 1 } ? '' : "$@";
    like($err, qr/handle limit reached/, 'and the limit still holds on insert');
    $r = $call->('decrement_quota', 0);
    is($r->{state}, '22023', 'a non-positive amount is still refused');
    $r = as_role('authenticated', $W, q{SELECT decrement_quota(?, 'handles', 1) AS ok}, $W);
    ok(!$r->{ok}, 'users still may not call it');
}

done_testing();
