#!/usr/bin/perl
# The monthly quota reset for users the lazy reset never reaches:
# `streamvibe-admin quota reset-due` resets exactly the quotas whose
# period has ended, as the lazy reset would; without pg_cron the
# migration applies and `migrate --status` says the job is not
# scheduled; with postgresql-15-cron (in shared_preload_libraries, this
# database as cron.database_name) the migration schedules
# 'reset-monthly-quotas' on the 1st of each month, and the command that
# job runs resets the due quotas.

use strict;
use warnings;
use Test::More;
use SV::Test qw(:DEFAULT run_command);
use SV::Test::Pg;

plan skip_all => 'PostgreSQL server not installed' unless SV::Test::Pg::available();

my $admin = sv_builddir() . '/streamvibe-admin';

# streamvibe-admin @args against $pg as its superuser.
sub admin {
    my ($pg, @args) = @_;
    return run_command([$admin, @args], merge => 1, env => {
        STREAMVIBE_ADMIN_DATABASE_URL => $pg->conninfo(user => 'postgres'),
        STREAMVIBE_DATABASE_URL => undef,
        STREAMVIBE_SQL_DIR => sv_srcdir() . '/sql',
    });
}

# Three users: one due with usage, one not due with usage, one due
# without usage. Returns their ids.
sub users {
    my ($dbh, $tag) = @_;
    my @ids = map { scalar $dbh->selectrow_array(q{INSERT INTO auth.users (email) VALUES (?) RETURNING id},
        undef, "$tag$_\@example.com") } 1 .. 3;
    my $set = q{UPDATE subscription_settings SET current_syncs_count = ?, current_ai_count = ?,
        current_indexing_count = ?, current_handles_count = 1, resets_at = now() + ?::interval WHERE user_id = ?};
    $dbh->do($set, undef, 5, 4, 3, '-1 day', $ids[0]);
    $dbh->do($set, undef, 2, 2, 2, '10 days', $ids[1]);
    $dbh->do($set, undef, 0, 0, 0, '-40 days', $ids[2]);
    return @ids;
}
sub row {
    my ($dbh, $id) = @_;
    return $dbh->selectrow_hashref(q{SELECT current_syncs_count AS syncs, resets_at::text AS at, current_ai_count AS ai,
        current_indexing_count AS idx, current_handles_count AS handles,
        resets_at = sv_next_quota_reset(now()) AS next_boundary, resets_at > now() AS future
        FROM subscription_settings WHERE user_id = ?}, undef, $id);
}

# --- without pg_cron ----------------------------------------------------------
{
    my $pg = SV::Test::Pg->new;
    $pg->start;
    my ($rc, $out) = $pg->migrate;
    is($rc, 0, 'migrate (no pg_cron)') or diag $out;
    like($out, qr/035_quota_reset_due\.sql/, '035 applied');
    ($rc, $out) = admin($pg, 'migrate', '--status');
    is($rc, 0, 'migrate --status');
    like($out, qr/^schedule\s+reset-monthly-quotas\s+not scheduled: pg_cron is not (?:installed|created)/m,
        'it says the reset is not scheduled, and why') or diag $out;
    like($out, qr/quota reset-due/, 'and what to do instead');

    my $su = $pg->dbh(user => 'postgres');
    my ($a, $b, $c) = users($su, 'nocron');
    my $history = $su->selectrow_array('SELECT count(*) FROM quota_usage_history');
    my $b_before = row($su, $b);

    ($rc, $out) = admin($pg, 'quota', 'reset-due');
    is($rc, 0, 'quota reset-due') or diag $out;
    is($out, "reset 2\n", 'two users were due');
    is_deeply({ %{ row($su, $a) }, at => 'x' }, { at => 'x', syncs => 0, ai => 0, idx => 0, handles => 1, next_boundary => 1, future => 1 },
        'the due user: monthly counters zero, handles kept, next reset at the next month boundary');
    is_deeply(row($su, $b), $b_before, 'the user not due: untouched');
    is($b_before->{syncs}, 2, '(its usage is still there)');
    ok(row($su, $c)->{next_boundary}, 'the due user without usage: resets_at moved on');
    is($su->selectrow_array('SELECT count(*) FROM quota_usage_history'), $history, 'no usage history written');

    ($rc, $out) = admin($pg, 'quota', 'reset-due');
    is($out, "reset 0\n", 'again: nothing is due');

    # Who may call it.
    my $auth = $pg->dbh(user => 'authenticator');
    for my $role (qw(anon authenticated)) {
        my $r = SV::Test::Pg->run_as_role($auth, $role, $a, 'SELECT public.reset_due_quotas() AS n');
        is($r->{state}, '42501', "$role may not run it");
    }
    my $r = SV::Test::Pg->run_as_role($auth, 'service_role', undef, 'SELECT public.reset_due_quotas() AS n');
    ok($r->{ok}, 'service_role may') or diag $r->{err};
    $r = SV::Test::Pg->run_as_role($auth, 'authenticated', $a, 'SELECT public.sv_schedule_quota_reset()');
    is($r->{state}, '42501', 'nor may a client schedule anything');

    isnt($su->selectrow_array('SELECT public.sv_schedule_quota_reset()'), 'scheduled',
        'scheduling by hand without pg_cron says why not');
    ok(!$su->selectrow_array(q{SELECT count(*) FROM pg_namespace WHERE nspname = 'cron'}), 'and creates nothing');

    ($rc, $out) = run_command([$admin, 'quota', 'reset-due'], merge => 1,
        env => { STREAMVIBE_ADMIN_DATABASE_URL => undef, STREAMVIBE_DATABASE_URL => undef });
    is($rc, 1, 'no database: exit 1');
    like($out, qr/no database given/, 'with the reason');
    ($rc, $out) = admin($pg, 'quota', 'reset-all');
    is($rc, 1, 'an unknown quota action: exit 1');
    $pg->stop;
}

# --- with pg_cron ---------------------------------------------------------------
SKIP: {
    my $libdir = SV::Test::Pg::pg_bindir() . '/../lib';
    skip 'pg_cron not installed (apt-get install postgresql-15-cron)', 13 unless -f "$libdir/pg_cron.so";
    my $pg = SV::Test::Pg->new(settings => {
        shared_preload_libraries => "'pg_cron'",
        'cron.database_name'     => "'streamvibe'",
    });
    $pg->start;
    my ($rc, $out) = $pg->migrate;
    is($rc, 0, 'migrate (pg_cron preloaded)') or diag $out;
    my $su = $pg->dbh(user => 'postgres');
    my $jobs = sub {
        $su->selectall_arrayref(q{SELECT jobname, schedule, command, database, username, active
            FROM cron.job WHERE jobname = 'reset-monthly-quotas'}, { Slice => {} });
    };
    my $job = $jobs->();
    is(scalar @$job, 1, 'the migration scheduled reset-monthly-quotas');
    is($job->[0]{schedule}, '0 0 1 * *', 'on the first of every month at midnight');
    is($job->[0]{database}, 'streamvibe', 'in this database');
    ok($job->[0]{active}, 'active');
    ($rc, $out) = admin($pg, 'migrate', '--status');
    like($out, qr/^schedule\s+reset-monthly-quotas\s+scheduled in pg_cron: 0 0 1 \* \*\s+\Q$job->[0]{command}\E$/m,
        'migrate --status says so') or diag $out;

    # What the job runs, run as pg_cron would: its command, as its user,
    # in its database.
    my ($a, $b) = users($su, 'cron');
    ($rc, my $psql_out, my $err) = $pg->psql_rc($job->[0]{command}, user => $job->[0]{username},
        dbname => $job->[0]{database});
    is($rc, 0, "the job's command runs: $job->[0]{command}") or diag $err;
    is($psql_out, "2\n", 'and resets the two due users');
    is(row($su, $a)->{syncs}, 0, 'the due user is reset');
    is(row($su, $b)->{syncs}, 2, 'the other is not');

    # Gone (an operator's cron.unschedule), then scheduled again by hand,
    # once however often.
    $su->do(q{SELECT cron.unschedule('reset-monthly-quotas')});
    ($rc, $out) = admin($pg, 'migrate', '--status');
    like($out, qr/not scheduled: pg_cron has no such job/, 'unscheduled: migrate --status says so');
    is($su->selectrow_array('SELECT public.sv_schedule_quota_reset()'), 'scheduled', 'scheduled again by hand');
    $su->selectrow_array('SELECT public.sv_schedule_quota_reset()');
    is(scalar @{ $jobs->() }, 1, 'twice: still one job');
    $pg->stop;
}

done_testing;
