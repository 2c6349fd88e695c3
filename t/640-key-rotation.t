#!/usr/bin/perl
# Key rotation under load: 200 credentials and 200 Vault secrets sealed
# with key 1; the pool is reloaded with key 2 as the current key and key
# 1 as an old one; then two `streamvibe-admin keys rotate` run at once in
# small batches while readers keep opening tokens (checking each against
# what was stored) and a writer keeps replacing some. Every read
# succeeds throughout, both rotations succeed, --status ends with every
# row under key 2, the pool then works without key 1, and a rotation
# killed half way is simply run again.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use POSIX ();
use Time::HiRes qw(time sleep);
use SV::Test qw(:DEFAULT run_command spawn_process slurp_file write_file vault_key);
use SV::Test::Stack;

my $admin = sv_builddir() . '/streamvibe-admin';
my $keys = sv_tempdir(prefix => 'svkeys');
my ($id1, $id2, $id3) = map { (vault_key("$keys/k$_.key"))[1] } 1 .. 3;
my $secret = 'rotation-secret-' . ('k' x 32);
my $s = SV::Test::Stack->new(workers => 3, conf => { jwt_secret => $secret,
    vault_key_file => "$keys/k1.key", rate_limit_functions => 'off', rate_limit_writes => 'off' });
my ($pg, $pool, $ngx, $su) = ($s->pg, $s->pool, $s->ngx, $s->su);
my %S = %{ $s->service };
sub auth { $s->auth($_[0]) }

# --- 150 users x 2 platforms, 20 secrets, under key 1 -------------------------------------
my $users = $su->selectcol_arrayref(q{INSERT INTO auth.users (email)
    SELECT 'rot' || g || '@example.com' FROM generate_series(1, 100) g RETURNING id});
my $dir = sv_tempdir(prefix => 'svrot');
my %known;    # user platform -> fingerprints ever stored
sub put {
    my ($ua, $uid, $platform, $tag) = @_;
    my $tok = "tok-$platform-$tag-" . join('', map { ('a' .. 'z')[rand 26] } 1 .. 20);
    my $res = $ngx->request('POST', '/functions/v1/credentials', headers => auth($uid), ua => $ua,
        body => encode_json({ platform => $platform, access_token => $tok, refresh_token => "r$tok", expires_in => 86400 }));
    return $res->code =~ /^20[01]$/ ? $tok : undef;
}
my $bad = 0;
for my $uid (@$users) {
    for my $p (qw(youtube tiktok)) {
        my $tok = put(undef, $uid, $p, 0) or $bad++;
        $known{"$uid $p"}{ substr(sha256_hex($tok // ''), 0, 12) } = 1;
    }
}
is($bad, 0, '200 credentials stored');
my @secrets;
for my $i (1 .. 200) {
    my $res = $ngx->request('POST', '/rest/v1/rpc/vault.create_secret', headers => \%S,
        body => encode_json({ secret => "vault-secret-$i", name => "s$i" }));
    push @secrets, decode_json($res->content)->{id};
}
is(scalar(grep { defined } @secrets), 200, '200 Vault secrets');
sub status {
    my ($conf) = @_;
    my ($c, $o, $e) = run_command([$admin, 'keys', 'rotate', '--status', '--config', $conf,
        '--database', $pg->conninfo(user => 'postgres')]);
    return $o;
}
write_file("$dir/k1.conf", "vault_key_file = $keys/k1.key\n");
like(status("$dir/k1.conf"), qr/^key_id=$id1 credentials=200 secrets=200 key=current$/m, 'all under key 1');

# --- key 2 becomes current; the pool reloads ---------------------------------------------
$pool->conf(vault_key_file => "$keys/k2.key");
$pool->conf(vault_old_key_files => "$keys/k1.key");
$pool->reload;
ok(wait_until(sub { $pool->log =~ /event=reload generation=2/ }), 'pool reloaded with key 2 current, key 1 old');
# Once the old generation's 3 workers are gone, no request reaches
# one with the old configuration.
ok(wait_until(sub { (() = $pool->log =~ /event=worker_exit [^\n]*generation=1\b/g) >= 3 }, 30), 'the old workers are gone');
write_file("$dir/rot.conf", "database_url = " . $pg->conninfo(user => 'authenticator') . "\n"
    . "vault_key_file = $keys/k2.key\nvault_old_key_files = $keys/k1.key\n");

# Readers: open random credentials through the credential code and check
# the fingerprint against what was stored. Writer: keeps replacing tokens
# (the writer records what it stored before the readers may see it).
my $stop = "$dir/stop";
my @readers;
for my $rd (1 .. 2) {
    push @readers, fork // die;
    if (!$readers[-1]) {
        open my $log, '>', "$dir/reader$rd" or POSIX::_exit(1);
        while (!-e $stop) {
            my $uid = $users->[rand @$users];
            my $p = (qw(youtube tiktok))[rand 2];
            my ($c, $o) = run_command([$admin, 'credentials', 'token', '--user', $uid, '--platform', $p,
                '--config', "$dir/rot.conf"]);
            my ($fp) = $o =~ /fingerprint=(\w+)/;
            print {$log} join(' ', $c, $uid, $p, $fp // '-', $o =~ /code=(\S+)/ ? $1 : '-'), "\n";
        }
        close $log;
        POSIX::_exit(0);
    }
}
# A reader of Vault secrets through the pool (fast: many reads).
push @readers, fork // die;
if (!$readers[-1]) {
    require LWP::UserAgent;
    my $ua = LWP::UserAgent->new(keep_alive => 1);
    open my $log, '>', "$dir/vreader" or POSIX::_exit(1);
    while (!-e $stop) {
        my $i = int rand 200;
        my $res = $ngx->request('POST', '/rest/v1/rpc/vault.get_secret', headers => \%S, ua => $ua,
            body => encode_json({ secret_id => $secrets[$i] }));
        my $v = eval { JSON::PP->new->allow_nonref->decode($res->content) } // '-';
        print {$log} $res->code . ' ' . ($v eq 'vault-secret-' . ($i + 1) ? 'right' : 'wrong') . "\n";
    }
    close $log;
    POSIX::_exit(0);
}
my $writer = fork // die;
if (!$writer) {
    require LWP::UserAgent;
    my $ua = LWP::UserAgent->new(keep_alive => 1);
    open my $log, '>', "$dir/writer" or POSIX::_exit(1);
    my $n = 0;
    while (!-e $stop) {
        my $uid = $users->[$n++ % 40];
        my $tok = "tok-youtube-w$n-" . join('', map { ('a' .. 'z')[rand 26] } 1 .. 20);
        print {$log} "$uid youtube " . substr(sha256_hex($tok), 0, 12) . "\n";
        $log->flush;
        my $res = $ngx->request('POST', '/functions/v1/credentials', headers => auth($uid), ua => $ua,
            body => encode_json({ platform => 'youtube', access_token => $tok, expires_in => 86400 }));
        print {$log} "fail " . $res->code . "\n" unless $res->code =~ /^20[01]$/;
        sleep 0.01;
    }
    close $log;
    POSIX::_exit(0);
}
sleep 0.5;
# Two rotations at once, 7 rows a batch.
my @rot = map {
    spawn_process([$admin, 'keys', 'rotate', '--batch', '7', '--config', "$dir/rot.conf",
        '--database', $pg->conninfo(user => 'postgres')], stdout => "$dir/rot$_.out", stderr => "$dir/rot$_.err")
} 1 .. 2;
my %exit;
for my $p (@rot) { waitpid($p, 0); $exit{$p} = $? >> 8 }
sleep 0.5;
write_file($stop, '');
waitpid($_, 0) for @readers, $writer;

is_deeply([map { $exit{$_} } @rot], [0, 0], 'both rotations succeeded') or diag slurp_file("$dir/rot1.err") . slurp_file("$dir/rot2.err");
my ($c1) = (slurp_file("$dir/rot1.out") // '') =~ /^done credentials=(\d+) secrets=(\d+) failed=0/m;
my ($c2) = (slurp_file("$dir/rot2.out") // '') =~ /^done credentials=(\d+) secrets=(\d+) failed=0/m;
ok(defined $c1 && defined $c2, 'each reports its part, no failures');
ok(($c1 // 0) + ($c2 // 0) <= 200, 'together they re-sealed at most every credential once (' . (($c1 // 0) + ($c2 // 0)) . ')');
# Which of the two does most of the work is up to the scheduler (one may
# find every row already re-sealed by the other): count their batches
# together.
my $batches = () = join('', map { slurp_file("$dir/rot$_.out") // '' } 1 .. 2) =~ /^rotated /mg;
cmp_ok($batches, '>', 1, "in several batches ($batches)");

my @writes = grep { !/^fail/ } split /\n/, slurp_file("$dir/writer") // '';
is(scalar(grep { /^fail/ } split /\n/, slurp_file("$dir/writer") // ''), 0, 'every write during the rotation succeeded');
ok(@writes > 10, scalar(@writes) . ' writes during the rotation');
for (@writes) { my ($u, $p, $f) = split; $known{"$u $p"}{$f} = 1 }
my @reads = map { split /\n/, slurp_file("$dir/reader$_") // '' } 1 .. 2;
ok(@reads >= 5, scalar(@reads) . ' token reads (streamvibe-admin credentials token) during the rotation');
my @failed = grep { !/^0 / } @reads;
is(scalar @failed, 0, 'every read during the rotation succeeded') or diag explain [@failed[0 .. ($#failed > 5 ? 5 : $#failed)]];
my @wrong = grep { my ($c, $u, $p, $f) = split; $c == 0 && !$known{"$u $p"}{$f} } @reads;
is(scalar @wrong, 0, 'and returned a token that was stored for that user and platform');

my @vreads = split /\n/, slurp_file("$dir/vreader") // '';
ok(@vreads >= 10, scalar(@vreads) . ' Vault secret reads through the pool during the rotation');
is(scalar(grep { $_ ne '200 right' } @vreads), 0, 'each answered 200 with the right secret');

my $st = status("$dir/rot.conf");
like($st, qr/^key_id=$id2 credentials=200 secrets=200 key=current$/m, '--status: every row under key 2');
like($st, qr/^key_id=$id1 credentials=0 secrets=0 key=old$/m, 'key 1 seals nothing any more');
like($st, qr/not_under_current_key=0/, 'nothing left to rotate');
my ($rc, $out) = run_command([$admin, 'keys', 'rotate', '--config', "$dir/rot.conf", '--database', $pg->conninfo(user => 'postgres')]);
like($out, qr/^done credentials=0 secrets=0 failed=0/m, 'running it again does nothing');

# --- the pool without key 1 ----------------------------------------------------------------
$pool->conf(vault_old_key_files => '');
$pool->reload;
ok(wait_until(sub { $pool->log =~ /event=reload generation=3/ }), 'pool reloaded without key 1');
# Once the old generation's 3 workers are gone, no request reaches
# one with the old configuration.
ok(wait_until(sub { (() = $pool->log =~ /event=worker_exit [^\n]*generation=2\b/g) >= 3 }, 30), 'the old workers are gone');
write_file("$dir/k2.conf", "database_url = " . $pg->conninfo(user => 'authenticator') . "\nvault_key_file = $keys/k2.key\n");
my $ok = 0;
for my $uid (@$users[0 .. 9]) {
    my ($c, $o) = run_command([$admin, 'credentials', 'token', '--user', $uid, '--platform', 'tiktok', '--config', "$dir/k2.conf"]);
    $ok++ if $c == 0;
}
is($ok, 10, 'tokens open with key 2 alone');
my $res = $ngx->request('POST', '/rest/v1/rpc/vault.get_secret', headers => \%S, body => encode_json({ secret_id => $secrets[7] }));
is(JSON::PP->new->allow_nonref->decode($res->content), 'vault-secret-8', 'so do Vault secrets');

# --- an interrupted rotation is run again ------------------------------------------------------
write_file("$dir/k3.conf", "vault_key_file = $keys/k3.key\nvault_old_key_files = $keys/k2.key\n");
my $pid = spawn_process([$admin, 'keys', 'rotate', '--batch', '1', '--config', "$dir/k3.conf",
    '--database', $pg->conninfo(user => 'postgres')], stdout => "$dir/int.out", stderr => "$dir/int.err");
wait_until(sub { (() = (slurp_file("$dir/int.out") // '') =~ /^rotated /mg) >= 5 }, 20);
kill 'KILL', $pid;
waitpid($pid, 0);
$st = status("$dir/k3.conf");
my ($moved) = $st =~ /^key_id=$id3 credentials=(\d+)/m;
my ($left) = $st =~ /not_under_current_key=(\d+)/;
ok($moved >= 5 && $left > 0, "killed half way: $moved rows under key 3, $left values left");
($rc, $out) = run_command([$admin, 'keys', 'rotate', '--config', "$dir/k3.conf", '--database', $pg->conninfo(user => 'postgres')]);
is($rc, 0, 'run again');
like(status("$dir/k3.conf"), qr/^key_id=$id3 credentials=200 secrets=200 key=current$/m, 'it finishes the job');

$ngx->stop;
$pool->stop;
done_testing;
