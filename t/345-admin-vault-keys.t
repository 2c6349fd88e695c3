#!/usr/bin/perl
# The vault's key files and the operator commands around them:
# `streamvibe-admin keygen FILE` (32 random bytes in hex, mode 0600, an
# existing file is never overwritten, prints the key id),
# `streamvibe-admin keys rotate --status` (rows per key id: current, old,
# missing), a rotation that meets values it cannot open (reported by id,
# exit 1, nothing else touched), and how the server treats key files
# (--check-config and the pool refuse a missing or world-readable one).
# Rotation of real values under load: t/640-key-rotation.t.

use strict;
use warnings;
use Test::More;
use SV::Test qw(:DEFAULT run_command write_file slurp_file);
use SV::Test::Pg;
use SV::Test::Pool;

my $admin = sv_builddir() . '/streamvibe-admin';
my $fcgi = sv_builddir() . '/streamvibe-fcgi';
plan skip_all => "$admin not built" unless -x $admin && -x $fcgi;

my $dir = sv_tempdir(prefix => 'svvault');
my %noenv = map { ($_ => undef) } qw(STREAMVIBE_CONFIG STREAMVIBE_VAULT_KEY_FILE STREAMVIBE_VAULT_OLD_KEY_FILES
    STREAMVIBE_ADMIN_DATABASE_URL STREAMVIBE_DATABASE_URL);
sub admin {
    my ($args, %env) = @_;
    return run_command([$admin, @$args], env => { %noenv, %env }, timeout => 60);
}

# --- keygen -------------------------------------------------------------------
my ($rc, $out, $err) = admin(['keygen', "$dir/k1.key"]);
is($rc, 0, 'keygen') or diag $err;
my ($id1) = $out =~ /^key_id=(\d+) file=\Q$dir\E\/k1\.key$/m;
ok($id1, "prints the key id ($out)");
is((stat "$dir/k1.key")[2] & 07777, 0600, 'mode 0600');
my $key1 = slurp_file("$dir/k1.key");
like($key1, qr/^[0-9a-f]{64}\n\z/, '64 hex digits');
unlike($out . $err, qr/\Q@{[substr($key1, 0, 16)]}\E/, 'the key itself is not printed');
($rc, $out, $err) = admin(['keygen', "$dir/k1.key"]);
isnt($rc, 0, 'keygen refuses an existing file');
like($err, qr/never overwritten/, 'and says why');
is(slurp_file("$dir/k1.key"), $key1, 'the existing key is untouched');
($rc, $out, $err) = admin(['keygen', "$dir/k2.key"]);
my ($id2) = $out =~ /^key_id=(\d+)/m;
ok($id2 && $id2 != $id1, 'a second key has another id');
isnt(slurp_file("$dir/k2.key"), $key1, 'and other bytes');
($rc) = admin(['keygen']);
isnt($rc, 0, 'keygen without a file: refused');
($rc) = admin(['keygen', "$dir/a", "$dir/b"]);
isnt($rc, 0, 'keygen with two files: refused');
ok(!-e "$dir/a", 'nothing written');
($rc, $out, $err) = admin(['keygen', "$dir/nodir/k.key"]);
isnt($rc, 0, 'keygen into a missing directory fails');

# --- the server reads key files -------------------------------------------------
write_file("$dir/check.conf", "vault_key_file = $dir/k1.key\n", 0644);
($rc, $out, $err) = run_command([$fcgi, '--check-config', '--config', "$dir/check.conf"], env => \%noenv);
is($rc, 0, '--check-config accepts a good key file') or diag $err;
chmod 0644, "$dir/k1.key";
($rc, $out, $err) = run_command([$fcgi, '--check-config', '--config', "$dir/check.conf"], env => \%noenv);
isnt($rc, 0, '--check-config refuses a world-readable key file');
like($err, qr/k1\.key.*chmod/, 'naming it and the fix');
unlike($err, qr/\Q@{[substr($key1, 0, 16)]}\E/, 'without key material');
chmod 0600, "$dir/k1.key";
write_file("$dir/bad.conf", "vault_key_file = $dir/k1.key\nvault_old_key_files = $dir/missing.key\n", 0644);
($rc, $out, $err) = run_command([$fcgi, '--check-config', '--config', "$dir/bad.conf"], env => \%noenv);
isnt($rc, 0, 'a missing old key file is refused');
like($err, qr/missing\.key/, 'named');

SKIP: {
    skip 'PostgreSQL server not installed', 20 unless SV::Test::Pg::available();
    my $pg = SV::Test::Pg->new;
    $pg->start;
    my ($mrc, $mout) = $pg->migrate;
    is($mrc, 0, 'migrate') or diag $mout;

    # The pool refuses to start with a key file it may not trust.
    chmod 0644, "$dir/k2.key";
    my $pool = SV::Test::Pool->new(pg => $pg, workers => 1, conf => { vault_key_file => "$dir/k2.key" });
    ok(!eval { $pool->start(timeout => 5); 1 }, 'the pool does not start with a world-readable key file');
    like($pool->log . $pool->stderr, qr/k2\.key.*chmod/, 'and logs why');
    chmod 0600, "$dir/k2.key";

    my $su = $pg->dbh(user => 'postgres');
    my $conninfo = $pg->conninfo(user => 'postgres');
    write_file("$dir/rot.conf", "vault_key_file = $dir/k2.key\nvault_old_key_files = $dir/k1.key\n", 0644);
    my @rot = ('--config', "$dir/rot.conf", '--database', $conninfo);

    ($rc, $out, $err) = admin(['keys', 'rotate', '--status', @rot]);
    is($rc, 0, 'status on an empty database') or diag $err;
    like($out, qr/^key_id=$id2 credentials=0 secrets=0 key=current$/m, 'the current key, no rows');
    like($out, qr/^key_id=$id1 credentials=0 secrets=0 key=old$/m, 'the old key, no rows');
    like($out, qr/not_under_current_key=0/, 'nothing to rotate');

    # Values under a key nobody configured (written by hand).
    my $A = $su->selectrow_array(q{INSERT INTO auth.users (email) VALUES ('a@example.com') RETURNING id});
    my $yt = $su->selectrow_array(q{SELECT id FROM platforms WHERE name = 'youtube'});
    $su->do(q{INSERT INTO platform_credentials (user_id, platform_id, encrypted_access_token) VALUES (?, ?, ?)},
        undef, $A, $yt, 'sv1:42:' . ('A' x 60));
    my $sid = $su->selectrow_array(q{INSERT INTO vault.secrets (secret) VALUES (?) RETURNING id}, undef, 'sv1:42:' . ('B' x 60));
    ($rc, $out, $err) = admin(['keys', 'rotate', '--status', @rot]);
    like($out, qr/^key_id=42 credentials=1 secrets=1 key=missing$/m, 'rows under a missing key are counted');
    like($out, qr/not_under_current_key=2/, 'two values to rotate');

    ($rc, $out, $err) = admin(['keys', 'rotate', '--batch', '1', @rot]);
    is($rc, 1, 'rotation that meets unopenable values exits 1');
    like($out, qr/^failed table=platform_credentials id=[0-9a-f-]{36} reason=/m, 'the credential is reported by id');
    like($out, qr/^failed table=vault\.secrets id=\Q$sid\E reason=/m, 'the secret too');
    like($out, qr/^done credentials=0 secrets=0 failed=2/m, 'nothing else happened');
    like($err, qr/did not open/, 'stderr says so');
    is($su->selectrow_array(q{SELECT count(*) FROM platform_credentials WHERE key_id = 42}), 1, 'the row is untouched');

    ($rc, $out, $err) = admin(['keys', 'rotate', '--database', $conninfo], STREAMVIBE_CONFIG => undef);
    isnt($rc, 0, 'rotate without vault_key_file refuses');
    like($err, qr/vault_key_file/, 'naming the setting');
    ($rc, $out, $err) = admin(['keys', 'rotate', '--batch', '0', @rot]);
    isnt($rc, 0, '--batch 0 refused');
    ($rc, $out, $err) = admin(['keys', 'rotate', 'extra', @rot]);
    isnt($rc, 0, 'a stray argument refused');
    ($rc, $out, $err) = admin(['keys', 'rotate', '--status', '--config', "$dir/rot.conf",
        '--database', 'host=/nonexistent dbname=x']);
    isnt($rc, 0, 'an unreachable database fails');
    like($err, qr/cannot connect/, 'with a clear message');
}

done_testing;
