#!/usr/bin/perl
# The schema cache follows the database without a pool reload: after
# `streamvibe-admin migrate` applies something, or after PostgREST's
# `NOTIFY pgrst, 'reload schema'` by hand, every worker serves the new
# columns; plain DDL without the notification leaves the cache as it was.

use strict;
use warnings;
use Test::More;
use File::Copy qw(copy);
use POSIX ();
use Time::HiRes qw(sleep);
use SV::Test qw(:DEFAULT write_file);
use SV::Test::Stack;

plan skip_all => 'DBD::Pg not installed' unless eval { require DBD::Pg; 1 };
my $s = SV::Test::Stack->new(workers => 2, conf => { jwt_secret => 'r' x 40 });
my ($pg, $pool, $ngx) = ($s->pg, $s->pool, $s->ngx);
my $su = $s->su;

# The columns of platforms in the OpenAPI description, as one worker
# sees them.
my $columns = sub {
    my $doc = $ngx->json($ngx->request('GET', '/rest/v1/')) // {};
    return join ',', sort keys %{ $doc->{definitions}{platforms}{properties} // {} };
};
# Ten requests: with two workers, both answer some.
my $all_see = sub {
    my ($col) = @_;
    return scalar grep { $columns->() =~ /\b\Q$col\E\b/ } 1 .. 10;
};
like($columns->(), qr/\bname\b/, 'platforms is described');
is($all_see->('probe_a'), 0, 'no probe_a column yet');

$su->do('ALTER TABLE public.platforms ADD COLUMN probe_a text');
sleep 1;
is($all_see->('probe_a'), 0, 'DDL alone does not reach the cache');

$su->do(q{NOTIFY pgrst, 'reload schema'});
ok(wait_until(sub { $all_see->('probe_a') == 10 }, 10),
    "after NOTIFY pgrst, 'reload schema' every worker serves the new column");
my $res = $ngx->request('GET', '/rest/v1/platforms?select=probe_a&limit=1');
is($res->code, 200, 'and a select= of it is accepted') or diag $res->as_string;

# A migration announces itself.
my $dir = sv_tempdir();
copy($_, $dir) or die "copy $_: $!" for glob(sv_srcdir() . '/sql/*.sql');
write_file("$dir/900_probe_b.sql", "ALTER TABLE public.platforms ADD COLUMN probe_b text;\n");
my ($rc, $out) = $pg->migrate('--sql-dir', $dir);
is($rc, 0, 'migrate applies 900_probe_b.sql') or diag $out;
like($out, qr/applied\s+900_probe_b\.sql/, 'the new file, and only it') or diag $out;
ok(wait_until(sub { $all_see->('probe_b') == 10 }, 10), 'every worker serves the migrated column');

# DDL and its announcement in one transaction, while a reload waits on
# the table's lock: the reload reads the catalog as it was before the
# commit, so the announcement arriving with its results must count for
# another reload, not for this one.
$su->do(q{NOTIFY pgrst, 'reload schema'});
sleep 0.5;
$su->begin_work;
$su->do('ALTER TABLE public.platforms ADD COLUMN probe_d text');
$su->do(q{NOTIFY pgrst, 'reload schema'});
my $kid = fork // die "fork: $!";
if ($kid == 0) {
    $columns->() for 1 .. 2;   # both workers start their reload
    POSIX::_exit(0);
}
ok(wait_until(sub { $su->selectrow_array(q{SELECT count(*) FROM pg_locks WHERE NOT granted}) >= 1 }, 10),
    'a reload waits on the lock of the uncommitted DDL');
$su->commit;
waitpid $kid, 0;
ok(wait_until(sub { $all_see->('probe_d') == 10 }, 10),
    'once committed, the column reaches every worker: the announcement was not lost');

# Another message on the channel changes nothing.
$su->do('ALTER TABLE public.platforms ADD COLUMN probe_c text');
$su->do(q{NOTIFY pgrst, 'reload config'});
sleep 1;
is($all_see->('probe_c'), 0, "NOTIFY pgrst, 'reload config' does not reload the schema");
like($pool->log, qr/event=rest_schema_loaded/, 'reloads are logged');

# An idle worker's connection ended by the server: the worker reads the
# FATAL into its log (not stderr) and reconnects for the next request,
# reloading its cache since announcements may have been missed.
$su->do('ALTER TABLE public.platforms ADD COLUMN probe_e text');
my $from = $pool->log_offset;
$su->do(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'streamvibe'});
ok($pool->wait_log(qr/event=db_notice[^\n]*terminating connection/, 10, from => $from),
    'a terminated idle connection is noticed and logged');
ok(wait_until(sub { $all_see->('probe_e') == 10 }, 10), 'the reconnect reloads the cache');
unlike($pool->stderr, qr/terminating connection/, 'nothing on stderr');

$su->disconnect;
$s->stop;
done_testing;
