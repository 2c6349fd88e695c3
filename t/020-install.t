#!/usr/bin/perl
# `make install DESTDIR=...` puts the documented tree in place (programs,
# migrations, configuration, templates, man pages, service files), keeps
# an operator's edited configuration on a second install, and `make
# uninstall` removes everything it installed. (That the installed
# streamvibe-admin finds its migrations without --sql-dir, against a real
# database, is `make installcheck`'s job: t/installcheck.pl, run by
# distcheck, where the programs are installed where they were built for.)

use strict;
use warnings;
use Test::More;
use File::Find ();
use SV::Test qw(:DEFAULT run_command slurp_file write_file find_program);

my $build = sv_builddir();
my $src = sv_srcdir();
my $make = find_program('make') or plan skip_all => 'make not installed';
plan skip_all => "no Makefile in $build (configure first)" unless -f "$build/Makefile";

# The installation directories as configure set them, from the Makefile's
# own variables (prefix, sbindir, sysconfdir, ...), ${x} and $(x) expanded.
my %var;
for (split /\n/, slurp_file("$build/Makefile")) {
    $var{$1} = $2 if /^([a-zA-Z_]+) = (.*?)\s*$/;
}
sub expand {
    my ($v, $depth) = @_;
    die "Makefile variables nest too deep" if ($depth // 0) > 20;
    $v =~ s/\$[({](\w+)[)}]/expand($var{$1} \/\/ '', ($depth \/\/ 0) + 1)/ge;
    return $v;
}
my %dir = map { $_ => expand("\$($_)") } qw(sbindir sysconfdir pkgdatadir mandir systemdsystemunitdir);

my $dest = sv_tempdir(prefix => 'svinst');
sub make_target {
    my (@args) = @_;
    my ($rc, $out) = run_command([$make, '-s', '-C', $build, @args, "DESTDIR=$dest"],
        merge => 1, timeout => 300);
    return ($rc, $out);
}
sub installed_files {
    my @f;
    File::Find::find({ no_chdir => 1, wanted => sub { push @f, substr($_, length $dest) if -f $_ || -l $_ } }, $dest);
    return sort @f;
}

my ($rc, $out) = make_target('install');
is($rc, 0, 'make install DESTDIR=...') or diag $out;

my @sql = map { s{.*/}{}r } glob("$src/sql/[0-9]*.sql");
my %want = (
    "$dir{sbindir}/streamvibe-fcgi"                 => 'the pool / FastCGI / CGI program',
    "$dir{sbindir}/streamvibe-admin"                => 'the operator tool',
    "$dir{sbindir}/streamvibe-job"                  => 'the job supervisor and spool reconciler',
    "$dir{sbindir}/streamvibe-realtime"             => 'the Realtime daemon',
    "$dir{sysconfdir}/streamvibe/streamvibe.conf"   => 'the configuration, from the sample',
    "$dir{pkgdatadir}/streamvibe.conf.sample"       => 'the sample configuration',
    "$dir{pkgdatadir}/nginx/streamvibe.conf.in"     => 'the nginx template',
    "$dir{pkgdatadir}/apache/streamvibe-proxy-fcgi.conf.in" => 'the Apache template for the pool (mod_proxy_fcgi)',
    "$dir{pkgdatadir}/apache/streamvibe-fcgid.conf.in"      => 'the Apache template for mod_fcgid',
    "$dir{pkgdatadir}/apache/htaccess.in"                   => 'the .htaccess for plain CGI',
    "$dir{sysconfdir}/logrotate.d/streamvibe"       => 'the logrotate snippet',
    ($dir{systemdsystemunitdir} ? ("$dir{systemdsystemunitdir}/streamvibe.service" => 'the systemd unit') : ()),
    "$dir{mandir}/man8/streamvibe-fcgi.8"           => 'streamvibe-fcgi(8)',
    "$dir{mandir}/man8/streamvibe-admin.8"          => 'streamvibe-admin(8)',
    "$dir{mandir}/man8/streamvibe-job.8"            => 'streamvibe-job(8)',
    "$dir{mandir}/man8/streamvibe-realtime.8"       => 'streamvibe-realtime(8)',
    "$dir{mandir}/man5/streamvibe.conf.5"           => 'streamvibe.conf(5)',
    (map { ("$dir{pkgdatadir}/sql/$_" => "migration $_") } @sql),
);
cmp_ok(scalar @sql, '>=', 10, scalar(@sql) . ' migrations in sql/');
for my $f (sort keys %want) {
    ok(-f "$dest$f", "installed: $f ($want{$f})");
}
ok(-x "$dest$dir{sbindir}/$_", "$_ is executable") for qw(streamvibe-fcgi streamvibe-admin streamvibe-job streamvibe-realtime);
is(sprintf('%04o', (stat "$dest$dir{sysconfdir}/streamvibe/streamvibe.conf")[2] & 07777), '0640',
    'the configuration is mode 0640 (it holds jwt_secret)');
is(slurp_file("$dest$dir{pkgdatadir}/sql/$sql[-1]"), slurp_file("$src/sql/$sql[-1]"),
    'installed migrations are the source files');
SKIP: {
    skip 'configured --without-systemdsystemunitdir', 2 unless $dir{systemdsystemunitdir};
    my $unit = slurp_file("$dest$dir{systemdsystemunitdir}/streamvibe.service") // '';
    like($unit, qr{^ExecStart=\Q$dir{sbindir}\E/streamvibe-fcgi --pool --config \Q$dir{sysconfdir}\E/streamvibe/streamvibe\.conf$}m,
        'the unit runs the installed program with the installed configuration');
    unlike($unit, qr/\@[a-z]+\@/, 'no placeholder is left in the unit');
}

# The installed programs run, and say where they look for things.
my ($hrc, $help) = run_command(["$dest$dir{sbindir}/streamvibe-admin", 'help'], merge => 1);
is($hrc, 0, 'installed streamvibe-admin help');
like($help, qr/\Q$dir{pkgdatadir}\E\/sql\b/, "it looks for migrations in $dir{pkgdatadir}/sql, where they are installed");
my ($crc, $cout) = run_command(["$dest$dir{sbindir}/streamvibe-fcgi", '--check-config',
    '--config', "$dest$dir{sysconfdir}/streamvibe/streamvibe.conf"], merge => 1,
    env => { map { $_ => undef } grep { /^STREAMVIBE_/ } keys %ENV });
is($crc, 0, 'the installed configuration passes --check-config') or diag $cout;

# An operator's configuration survives the next install, and uninstall
# leaves it (only it) behind.
my $conf = "$dest$dir{sysconfdir}/streamvibe/streamvibe.conf";
write_file($conf, slurp_file($conf) . "workers = 7\n", 0640);
($rc, $out) = make_target('install');
is($rc, 0, 'make install again');
like(slurp_file($conf), qr/^workers = 7$/m, 'the edited configuration is kept');
($rc, $out) = make_target('uninstall');
is($rc, 0, 'make uninstall DESTDIR=...') or diag $out;
is_deeply([installed_files()], ["$dir{sysconfdir}/streamvibe/streamvibe.conf"],
    'uninstall removes every file but the edited configuration');

# Untouched, the configuration goes with the rest.
unlink $conf;
($rc, $out) = make_target('install');
is($rc, 0, 'make install into the emptied tree');
($rc, $out) = make_target('uninstall');
is($rc, 0, 'make uninstall');
is_deeply([installed_files()], [], 'nothing is left behind');

done_testing;
