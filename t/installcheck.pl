#!/usr/bin/perl
# `make installcheck` (distcheck runs it): the installed programs, run
# from where they were installed, against a throwaway PostgreSQL.
# streamvibe-admin finds the installed migrations without --sql-dir or
# $STREAMVIBE_SQL_DIR, and the installed streamvibe-fcgi (as a CGI
# program) reports the newest one as the schema version.
#
#   perl -It/lib t/installcheck.pl SBINDIR PKGDATADIR [DESTDIR]

use strict;
use warnings;
use Test::More;
use SV::Test qw(:DEFAULT run_command);
use SV::Test::Pg;

my ($sbindir, $pkgdatadir, $destdir) = @ARGV;
die "usage: $0 SBINDIR PKGDATADIR [DESTDIR]\n" unless defined $pkgdatadir;
plan skip_all => 'DESTDIR is set: the programs look in the directories they were built for'
    if defined $destdir && length $destdir;
plan skip_all => 'PostgreSQL server not installed' unless SV::Test::Pg::available();

my $admin = "$sbindir/streamvibe-admin";
my $fcgi = "$sbindir/streamvibe-fcgi";
ok(-x $admin && -x $fcgi, "installed in $sbindir");
my @sql = sort map { s{.*/}{}r } glob("$pkgdatadir/sql/[0-9]*.sql");
cmp_ok(scalar @sql, '>=', 10, scalar(@sql) . " migrations installed in $pkgdatadir/sql");

my $pg = SV::Test::Pg->new;
$pg->start;
# No --sql-dir, no $STREAMVIBE_SQL_DIR: the installed directory.
my %env = (map { $_ => undef } grep { /^STREAMVIBE_/ } keys %ENV);
$env{STREAMVIBE_ADMIN_DATABASE_URL} = $pg->conninfo(user => 'postgres');
my ($rc, $out) = run_command([$admin, 'migrate'], env => \%env, merge => 1, timeout => 300);
is($rc, 0, 'installed streamvibe-admin migrate') or diag $out;
($rc, $out) = run_command([$admin, 'migrate', '--status'], env => \%env, merge => 1);
is($rc, 0, 'migrate --status');
for my $f (@sql) {
    like($out, qr/^applied\s+\Q$f\E\b/m, "$f applied");
}

my ($code, $stdout) = run_command([$fcgi], timeout => 30, env => {
    (map { $_ => undef } grep { /^STREAMVIBE_/ } keys %ENV),
    GATEWAY_INTERFACE => 'CGI/1.1', SERVER_PROTOCOL => 'HTTP/1.1', REQUEST_METHOD => 'GET',
    REQUEST_URI => '/healthz', PATH_INFO => '/healthz', SCRIPT_NAME => '', QUERY_STRING => '',
    REMOTE_ADDR => '127.0.0.1',
    STREAMVIBE_DATABASE_URL => $pg->conninfo(user => 'authenticator'),
});
is($code, 0, 'installed streamvibe-fcgi answers as a CGI program');
(my $newest = $sql[-1]) =~ s/\.sql\z//;
like($stdout, qr/"schema_version"\s*:\s*"\Q$sql[-1]\E"|"schema_version"\s*:\s*"\Q$newest\E"/,
    "healthz: schema_version is the newest installed migration") or diag $stdout;

$pg->stop;
done_testing;
