#!/usr/bin/perl
# streamvibe-admin migrate: applies sql/*.sql in order, --status, re-run is
# a no-op, a broken migration leaves no trace, a changed applied file is
# refused, concurrent runs apply each file once, database/sql-dir lookup.
use strict;
use warnings;

use File::Copy qw(copy);
use Test::More;
use SV::Test qw(sv_builddir sv_srcdir sv_tempdir run_command spawn_process write_file slurp_file);
use SV::Test::Pg;

plan skip_all => 'PostgreSQL server programs not found' unless SV::Test::Pg::available();
plan skip_all => 'DBD::Pg not installed' unless eval { require DBD::Pg; 1 };
my $admin = sv_builddir() . '/streamvibe-admin';
plan skip_all => "$admin not built" unless -x $admin;

my $srcdir = sv_srcdir() . '/sql';
opendir my $dh, $srcdir or die "$srcdir: $!";
my @files = sort grep { /^[^.].*\.sql\z/ && -f "$srcdir/$_" } readdir $dh;
closedir $dh;
ok(@files >= 5, 'sql/ holds the numbered migrations') or diag "@files";

my $pg = SV::Test::Pg->new();
$pg->start;

# Runs streamvibe-admin with @args and extra environment; (rc, stdout, stderr).
sub admin {
    my ($env, @args) = @_;
    return run_command([$admin, @args], timeout => 300, env => {
        STREAMVIBE_ADMIN_DATABASE_URL => undef,
        STREAMVIBE_DATABASE_URL       => undef,
        STREAMVIBE_SQL_DIR            => undef,
        %$env,
    });
}

# streamvibe-admin migrate on each of @conninfo at once; returns the
# exit codes, the stdouts and the stderrs, in order.
sub concurrent_migrates {
    my @conninfo = @_;
    my $dir = sv_tempdir(prefix => 'svmr');
    my @pids = map {
        spawn_process([$admin, 'migrate', '--database', $conninfo[$_], '--sql-dir', $srcdir],
            stdout => "$dir/out$_", stderr => "$dir/err$_")
    } 0 .. $#conninfo;
    my @rc = map { waitpid($_, 0); $? >> 8 } @pids;
    my @out = map { slurp_file("$dir/out$_") // '' } 0 .. $#conninfo;
    my @err = map { slurp_file("$dir/err$_") // '' } 0 .. $#conninfo;
    return (\@rc, \@out, \@err);
}

sub schema_dump {
    my (%opt) = @_;
    my $db = $opt{dbname} // 'streamvibe';
    my ($rc, $out, $err) = run_command([$pg->bindir . '/pg_dump', '--schema-only', '--no-owner',
        '-h', $pg->socket_dir, '-p', $pg->port, '-U', 'postgres', $db], timeout => 120);
    die "pg_dump failed: $err" if $rc != 0;
    # Newer pg_dump brackets its output with \restrict/\unrestrict and a
    # random key, different on every run.
    $out =~ s/^\\(?:un)?restrict .*\n//mg;
    return $out;
}

# --- status before anything ---------------------------------------------
{
    my ($rc, $out) = $pg->migrate('--status');
    is($rc, 0, 'status on an empty database succeeds');
    # The last line is the monthly quota reset's schedule (t/135).
    ok($out =~ s/^schedule  reset-monthly-quotas  not scheduled: the quota reset migration is not applied yet\n\z//m,
        'status ends with the quota reset schedule: not yet');
    is($out, join('', map { "pending  $_\n" } @files), 'status lists every file as pending');
    is($pg->psql("SELECT to_regclass('public.schema_migrations') IS NULL"), 't',
        'status does not create schema_migrations');
}

# --- first migrate ------------------------------------------------------
{
    my ($rc, $out) = $pg->migrate;
    is($rc, 0, 'migrate succeeds') or diag $out;
    for my $f (@files) {
        like($out, qr/^applied  \Q$f\E \(\d+ ms\)$/m, "migrate reports $f applied");
    }
    my @order = $out =~ /^applied  (\S+)/mg;
    is_deeply(\@order, \@files, 'files applied in name order');
    is($pg->psql('SELECT count(*) FROM public.schema_migrations'), scalar(@files),
        'one schema_migrations row per file');
    is($pg->psql(q{SELECT count(*) FROM public.schema_migrations WHERE checksum ~ '^[0-9a-f]{64}$'}),
        scalar(@files), 'each row has a hex checksum');
}

# --- status after -------------------------------------------------------
{
    my ($rc, $out) = $pg->migrate('--status');
    is($rc, 0, 'status succeeds');
    ok($out =~ s/^schedule  reset-monthly-quotas  .*\n\z//m, 'status ends with the quota reset schedule');
    my @lines = split /\n/, $out;
    is(scalar(@lines), scalar(@files), 'one status line per file');
    for my $i (0 .. $#files) {
        like($lines[$i] // '', qr/^applied  \Q$files[$i]\E  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
            "status: $files[$i] applied with a timestamp");
    }
}

# --- re-run is a no-op ----------------------------------------------------
{
    my $before = schema_dump();
    my $rows_before = $pg->psql('SELECT version, checksum, applied_at FROM public.schema_migrations ORDER BY 1');
    my ($rc, $out) = $pg->migrate;
    is($rc, 0, 're-running migrate succeeds');
    like($out, qr/nothing to apply/, 're-run says there is nothing to apply');
    unlike($out, qr/^applied /m, 're-run applies nothing');
    is(schema_dump(), $before, 're-run leaves the schema unchanged');
    is($pg->psql('SELECT version, checksum, applied_at FROM public.schema_migrations ORDER BY 1'),
        $rows_before, 're-run leaves schema_migrations unchanged');
}

# --- a broken migration leaves no trace -----------------------------------
my $tmp = sv_tempdir(prefix => 'svsql');
{
    for my $f (@files) {
        copy("$srcdir/$f", "$tmp/$f") or die "copy $f: $!";
    }
    # Valid statements first, so a non-atomic migrator would leave them.
    write_file("$tmp/999_broken.sql", <<'SQL', 0644);
CREATE TABLE public.broken_partial (id int);
CREATE FUNCTION public.broken_fn() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;
INSERT INTO public.platforms (name, display_name, base_url) VALUES ('brokenplatform', 'B', 'https://b.example');

SELEC 1;
SQL
    my $before = schema_dump();
    my ($rc, $out) = $pg->migrate('--sql-dir', $tmp);
    isnt($rc, 0, 'a migration with a syntax error fails the run');
    like($out, qr/999_broken\.sql/, 'the error names the failing file');
    like($out, qr/syntax error at or near "SELEC"/, "the error carries PostgreSQL's message");
    like($out, qr/line 5/, 'the error gives the line in the file');
    is($pg->psql("SELECT to_regclass('public.broken_partial') IS NULL"), 't', 'no partial table left');
    is($pg->psql("SELECT count(*) FROM pg_proc WHERE proname = 'broken_fn'"), '0', 'no partial function left');
    is($pg->psql("SELECT count(*) FROM public.platforms WHERE name = 'brokenplatform'"), '0', 'no partial data left');
    is($pg->psql("SELECT count(*) FROM public.schema_migrations WHERE version = '999_broken.sql'"), '0',
        'the broken file is not recorded');
    is(schema_dump(), $before, 'schema unchanged after the failed run');

    my ($src, $sout) = $pg->migrate('--status', '--sql-dir', $tmp);
    like($sout, qr/^pending  999_broken\.sql$/m, 'status shows the broken file as still pending');
    unlink "$tmp/999_broken.sql";
}

# --- an applied file that changed is reported and refused ------------------
{
    my $f = $files[1];
    open my $fh, '>>', "$tmp/$f" or die $!;
    print {$fh} "\n-- edited after it was applied\n";
    close $fh;
    write_file("$tmp/998_new.sql", "CREATE TABLE public.should_not_exist (id int);\n", 0644);

    my ($rc, $out) = $pg->migrate('--status', '--sql-dir', $tmp);
    is($rc, 0, 'status with a changed file still succeeds');
    like($out, qr/^changed  \Q$f\E  \S+  \(file differs/m, 'status flags the changed file');
    like($out, qr/^pending  998_new\.sql$/m, 'and lists the new file as pending');

    ($rc, $out) = $pg->migrate('--sql-dir', $tmp);
    isnt($rc, 0, 'migrate refuses to run with a changed applied file');
    like($out, qr/changed.*\Q$f\E/, 'and names it');
    is($pg->psql("SELECT to_regclass('public.should_not_exist') IS NULL"), 't',
        'nothing later was applied');
    copy("$srcdir/$f", "$tmp/$f") or die $!;
    unlink "$tmp/998_new.sql";
}

# --- --database, env fallbacks, missing database, a second database --------
{
    $pg->psql('CREATE DATABASE second', dbname => 'postgres');
    $pg->psql('CREATE DATABASE third', dbname => 'postgres');
    my ($rc, $out, $err) = admin({}, 'migrate', '--sql-dir', $srcdir);
    is($rc, 1, 'no database configured: exit 1');
    like($err, qr/no database given/, 'with a clear message');

    # Roles already exist in the cluster: the migrations must cope.
    ($rc, $out, $err) = admin({ STREAMVIBE_SQL_DIR => $srcdir }, 'migrate',
        '--database', $pg->conninfo(dbname => 'second'));
    is($rc, 0, '--database + STREAMVIBE_SQL_DIR: migrates a second database of the cluster') or diag $err;
    is($pg->psql('SELECT count(*) FROM public.schema_migrations', dbname => 'second'), scalar(@files),
        'second database fully migrated');

    ($rc, $out, $err) = admin({ STREAMVIBE_DATABASE_URL => $pg->url(dbname => 'third') },
        'migrate', '--sql-dir', $srcdir);
    is($rc, 0, 'STREAMVIBE_DATABASE_URL (a postgresql:// URL) is used as the fallback') or diag $err;

    ($rc, $out, $err) = admin({ STREAMVIBE_ADMIN_DATABASE_URL => $pg->conninfo(dbname => 'third'),
                                STREAMVIBE_DATABASE_URL => 'host=/nonexistent dbname=nope' },
        'migrate', '--status', '--sql-dir', $srcdir);
    is($rc, 0, 'STREAMVIBE_ADMIN_DATABASE_URL wins over STREAMVIBE_DATABASE_URL') or diag $err;
    like($out, qr/^applied  /m, 'status of the third database');

    ($rc, $out, $err) = admin({}, 'migrate', '--database', $pg->conninfo(dbname => 'nosuchdb'),
        '--sql-dir', $srcdir);
    is($rc, 1, 'unreachable database: exit 1');
    like($err, qr/cannot connect/, 'and says so');

    ($rc, $out, $err) = admin({}, 'migrate', '--database', $pg->conninfo, '--sql-dir', "$tmp/nope");
    is($rc, 1, 'missing SQL directory: exit 1');
    like($err, qr/nope/, 'and names it');

    ($rc, $out, $err) = admin({}, 'help');
    is($rc, 0, 'help exits 0');
    like($out, qr/migrate \[--status\]/, 'help describes migrate');

    ($rc, $out, $err) = admin({}, 'frobnicate');
    is($rc, 1, 'unknown command exits 1');
}

# --- two concurrent migrates apply each file exactly once ------------------
{
    $pg->psql('CREATE DATABASE racing', dbname => 'postgres');
    my ($rc, $out, $err) = concurrent_migrates(($pg->conninfo(dbname => 'racing')) x 3);
    is_deeply($rc, [0, 0, 0], 'three concurrent migrates all succeed') or diag @$err;
    my $applied = 0;
    $applied += () = $_ =~ /^applied  /mg for @$out;
    is($applied, scalar(@files), 'each file applied by exactly one of them');
    is($pg->psql('SELECT count(*) FROM public.schema_migrations', dbname => 'racing'), scalar(@files),
        'schema_migrations complete');
}

# --- first migrations of several databases of a fresh cluster at once -------
# Roles are cluster-wide while the advisory lock is per database, so the
# role creation itself must tolerate the race.
{
    my $fresh = SV::Test::Pg->new(name => 'fresh');
    $fresh->start;
    $fresh->psql("CREATE DATABASE db$_", dbname => 'postgres') for 1 .. 4;
    my ($rc, undef, $err) = concurrent_migrates(map { $fresh->conninfo(dbname => "db$_") } 1 .. 4);
    is_deeply($rc, [0, 0, 0, 0], 'four databases of a fresh cluster migrate concurrently') or diag @$err;
    is($fresh->psql(q{SELECT count(*) FROM pg_roles
        WHERE rolname IN ('anon', 'authenticated', 'service_role', 'authenticator')}), 4, 'roles created once');
    $fresh->stop;
}

# --- 044 on a database whose suggestions share a job id ---------------------
# 044 makes ai_content_suggestions.job_id unique. Rows that share one
# (only an import from V1 could hold them) keep it on the oldest row.
{
    my $dir = sv_tempdir(prefix => 'svsql');
    copy("$srcdir/$_", "$dir/$_") or die "copy $_: $!" for grep { $_ lt '044' } @files;
    $pg->psql('CREATE DATABASE dupjobs', dbname => 'postgres');
    my $env = { STREAMVIBE_ADMIN_DATABASE_URL => $pg->conninfo(dbname => 'dupjobs', user => 'postgres') };
    my ($rc, undef, $err) = admin({ %$env, STREAMVIBE_SQL_DIR => $dir }, 'migrate');
    is($rc, 0, 'migrated up to 043') or diag $err;
    $pg->psql(<<'SQL', dbname => 'dupjobs');
INSERT INTO auth.users (id, email) VALUES ('11111111-1111-1111-1111-111111111111', 'a@example.com');
INSERT INTO account_handles (id, user_id, platform_id, handle)
  SELECT '22222222-2222-2222-2222-222222222222', '11111111-1111-1111-1111-111111111111', id, 'alice'
    FROM platforms WHERE name = 'youtube';
INSERT INTO handle_content (id, handle_id, platform_content_id)
  VALUES ('33333333-3333-3333-3333-333333333333', '22222222-2222-2222-2222-222222222222', 'v1');
INSERT INTO ai_content_suggestions (id, content_id, user_id, suggested_title, job_id, created_at)
  SELECT ('44444444-4444-4444-4444-00000000000' || n)::uuid, '33333333-3333-3333-3333-333333333333',
         '11111111-1111-1111-1111-111111111111', 't' || n,
         CASE WHEN n < 4 THEN '55555555-5555-5555-5555-555555555555'::uuid END, '2025-01-01'::timestamptz + n * interval '1 day'
    FROM generate_series(1, 4) n;
SQL
    ($rc, undef, $err) = admin({ %$env, STREAMVIBE_SQL_DIR => $srcdir }, 'migrate');
    is($rc, 0, 'then 044 and on') or diag $err;
    is($pg->psql(q{SELECT string_agg(suggested_title || ':' || coalesce(job_id::text, '-'), ' ' ORDER BY suggested_title)
        FROM ai_content_suggestions}, dbname => 'dupjobs'),
        't1:55555555-5555-5555-5555-555555555555 t2:- t3:- t4:-',
        'the oldest of the rows sharing a job id keeps it; every row is kept');
    my ($dup) = $pg->psql_rc(q{INSERT INTO ai_content_suggestions (content_id, user_id, suggested_title, job_id)
        VALUES ('33333333-3333-3333-3333-333333333333', '11111111-1111-1111-1111-111111111111', 'x',
                '55555555-5555-5555-5555-555555555555')}, dbname => 'dupjobs');
    isnt($dup, 0, 'a second suggestion for the job is refused');
}

# --- the server's login role runs without JIT (short RLS queries) ------------
{
    my $api = $pg->dbh(user => 'authenticator');
    is($api->selectrow_array('SHOW jit'), 'off', 'authenticator sessions have jit off');
    $api->disconnect;
    is($pg->dbh(user => 'postgres')->selectrow_array('SHOW jit'), 'on', 'other roles keep the default');
}

done_testing();
