#!/usr/bin/perl
# Users imported from the V1 draft keep GoTrue's bcrypt hashes ($2a$, $2b$).
# A password login verifies them (in the server, with libcrypt) and then
# replaces the hash with an argon2id one, so the bcrypt hash is gone after
# the first login. Wrong passwords and unknown emails still get the very
# same answer, in comparable time; no password is sent to PostgreSQL,
# where statement logging would write it down; no hash or password is
# logged; the pgcrypto schema is not open to the API roles.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use Time::HiRes ();
use SV::Test;
use SV::Test::Stack;

my $s = SV::Test::Stack->new(workers => 2,
    conf => { jwt_secret => 'bcrypt-test-secret-' . ('b' x 32), login_max_failures => 1000 });
my ($pg, $pool, $ngx) = ($s->pg, $s->pool, $s->ngx);
my $su = $s->su;

is($su->selectrow_array(q{SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                           WHERE e.extname = 'pgcrypto'}), 'extensions', 'pgcrypto is installed in schema extensions');

# As the V1 import leaves them: GoTrue's bcrypt hash, confirmed email.
sub v1_user {
    my ($email, $pw, $prefix) = @_;
    my ($id, $hash) = $su->selectrow_array(q{
        INSERT INTO auth.users (email, encrypted_password, email_confirmed_at)
        VALUES (?, extensions.crypt(?, extensions.gen_salt('bf', 10)), now())
        RETURNING id, encrypted_password}, undef, $email, $pw);
    if ($prefix) {
        # $2b$ (what newer bcrypt libraries write) is the same algorithm
        $su->do(q{UPDATE auth.users SET encrypted_password = ? || substr(encrypted_password, 5) WHERE id = ?},
                undef, $prefix, $id);
    }
    return $id;
}
sub stored { $su->selectrow_array('SELECT encrypted_password FROM auth.users WHERE id = ?', undef, $_[0]) }
sub login {
    my ($email, $pw) = @_;
    return $ngx->call('POST', '/auth/v1/token?grant_type=password', body => { email => $email, password => $pw });
}

my $legacy = v1_user('legacy@example.com', 'legacy password');
like(stored($legacy), qr/^\$2a\$10\$/, 'the imported user has a bcrypt hash');

# --- wrong password and unknown email: the same answer --------------------
my ($res, $doc) = login('legacy@example.com', 'not the password');
is($res->code, 400, 'wrong password for a bcrypt user: 400') or diag $res->as_string;
is($doc && $doc->{error_code}, 'invalid_credentials', 'invalid_credentials');
my $wrong_body = $res->content;
($res, $doc) = login('nobody@example.com', 'not the password');
is($res->code, 400, 'unknown email: 400');
is($res->content, $wrong_body, 'byte-identical to the wrong-password answer');
like(stored($legacy), qr/^\$2a\$/, 'a failed login does not touch the hash');

# Work, not wall clock: an unknown email must cost a password check too
# (argon2id's dummy hash), or the answer's speed tells which emails
# exist. Counted as the workers' CPU time (utime + stime, in clock
# ticks), which a loaded machine does not inflate; a shortcut would cost
# next to nothing beside a bcrypt check (cost 10).
sub workers_cpu {
    my $ticks = 0;
    for my $pid ($pool->worker_pids) {
        my @f = split ' ', (SV::Test::slurp_file("/proc/$pid/stat") // '') =~ s/^.*\)\s//sr;
        $ticks += ($f[11] // 0) + ($f[12] // 0);
    }
    return $ticks;
}
my ($bc, $unk) = (0, 0);
for (1 .. 3) {
    my $t = workers_cpu();
    login('legacy@example.com', "wrong $_");
    $bc += workers_cpu() - $t;
    $t = workers_cpu();
    login("ghost$_\@example.com", "wrong $_");
    $unk += workers_cpu() - $t;
}
diag "workers' CPU for three wrong passwords (bcrypt): $bc ticks; for three unknown emails: $unk ticks";
ok($bc > 0.1 * $unk && $unk > 0.1 * $bc, 'a wrong password and an unknown email cost work of the same order');

# --- the right password: signed in, and the hash upgraded --------------------
($res, $doc) = login('legacy@example.com', 'legacy password');
is($res->code, 200, 'a bcrypt user logs in with the right password') or diag $res->as_string;
ok($doc && $doc->{access_token} && $doc->{refresh_token}, 'a session');
is($doc && $doc->{user}{id}, $legacy, 'the imported user');
like(stored($legacy), qr/^\$argon2id\$/, 'the stored hash is now argon2id');
unlike(stored($legacy), qr/\$2a\$/, 'the bcrypt hash is gone');
my $argon = stored($legacy);

($res, $doc) = login('legacy@example.com', 'legacy password');
is($res->code, 200, 'logs in again (argon2id now)') or diag $res->as_string;
is(stored($legacy), $argon, 'the argon2id hash is kept as it is');
($res, $doc) = login('legacy@example.com', 'not the password');
is($res->code, 400, 'a wrong password still fails');
is($res->content, $wrong_body, 'with the same answer');

# the session works
($res, $doc) = login('legacy@example.com', 'legacy password');
my $me = $ngx->call('GET', '/auth/v1/user', token => $doc->{access_token});
is($me->code, 200, 'GET /auth/v1/user with the new session');

# --- $2b$ hashes ------------------------------------------------------------------
my $u2b = v1_user('legacy2b@example.com', 'another password', '$2b$');
like(stored($u2b), qr/^\$2b\$10\$/, 'a $2b$ hash');
($res) = login('legacy2b@example.com', 'another passwore');
is($res->code, 400, '$2b$: wrong password 400');
($res) = login('legacy2b@example.com', 'another password');
is($res->code, 200, '$2b$: right password 200') or diag $res->as_string;
like(stored($u2b), qr/^\$argon2id\$/, '$2b$: rehashed to argon2id');

# --- odd stored hashes are simply wrong passwords -------------------------------
my $odd = v1_user('legacyodd@example.com', 'odd password');
$su->do(q{UPDATE auth.users SET encrypted_password = '$2a$10$tooshort' WHERE id = ?}, undef, $odd);
($res) = login('legacyodd@example.com', 'odd password');
is($res->code, 400, 'a malformed bcrypt hash: 400, not 500');
is($res->content, $wrong_body, 'same answer');

# A cost too high to check inside request_timeout (a check cannot be
# interrupted): refused like a wrong password, and the operator is told.
my $costly = v1_user('legacycostly@example.com', 'costly password');
$su->do(q{UPDATE auth.users SET encrypted_password = overlay(encrypted_password placing '17' from 5 for 2)
          WHERE id = ?}, undef, $costly);
like(stored($costly), qr/^\$2a\$17\$/, 'a stored hash of cost 17');
($res) = login('legacycostly@example.com', 'costly password');
is($res->code, 400, 'cost 17: not checked, 400');
is($res->content, $wrong_body, 'with the same answer as a wrong password');
like($pool->log, qr/auth_bcrypt_cost user_id=\Q$costly\E max_cost=16/, 'and a warning names the user');

# --- privileges -------------------------------------------------------------------
my $anon = $pg->dbh(user => 'postgres');
for my $role (qw(anon authenticated)) {
    $anon->do("SET ROLE $role");
    ok(!eval { $anon->do(q{SELECT extensions.crypt('a', extensions.gen_salt('bf'))}); 1 },
       "$role cannot use the extensions schema");
    ok(!eval { $anon->do(q{SELECT auth.sv_bcrypt_verify('x', 'y')}); 1 }, "$role cannot call auth.sv_bcrypt_verify");
    ok(!eval { $anon->do(q{SELECT auth.sv_password_rehash(gen_random_uuid(), 'x', '$argon2id$x')}); 1 },
       "$role cannot call auth.sv_password_rehash");
    $anon->do('RESET ROLE');
}
my $svc = $pg->dbh(user => 'postgres');
$svc->do('SET ROLE service_role');
is($svc->selectrow_array(q{SELECT auth.sv_password_rehash(?, 'not the stored hash', '$argon2id$v=19$x')}, undef, $odd), 0,
   'rehash only replaces the hash that was verified');
is($svc->selectrow_array(q{SELECT auth.sv_password_rehash(?, '$2a$10$tooshort', 'plain')}, undef, $odd), 0,
   'rehash only stores argon2id hashes');

# --- the password never reaches PostgreSQL ----------------------------------------
# With every statement and its parameters logged (what an operator turns
# on to debug), a bcrypt login must leave the password out of the log.
my $secret_pw = 'Pass-' . join('', map { ('a' .. 'z')[rand 26] } 1 .. 12);
my $logged = v1_user('legacylogged@example.com', $secret_pw);
my $log_statements = sub {
    my ($on) = @_;
    for my $setting (qw(log_min_duration_statement log_parameter_max_length)) {
        $su->do($on ? "ALTER SYSTEM SET $setting = " . ($setting =~ /duration/ ? 0 : -1)
                    : "ALTER SYSTEM RESET $setting");
    }
    $su->do(q{SELECT pg_reload_conf()});
};
$log_statements->(1);
# Backends re-read the configuration between commands: wait until a
# fresh statement shows up in the log.
my $logged_from = $pg->log_offset;
ok(wait_until(sub { $su->do(q{SELECT 'bcrypt-log-probe'});
                    ($pg->log(from => $logged_from) // '') =~ /bcrypt-log-probe/ }, 10),
   'statement logging is on');
($res) = login('legacylogged@example.com', $secret_pw);
is($res->code, 200, 'the bcrypt login succeeds') or diag $res->as_string;
like(stored($logged), qr/^\$argon2id\$/, 'and rehashes');
$log_statements->(0);
my $pglog = $pg->log(from => $logged_from) // '';
like($pglog, qr/legacylogged\@example\.com/, "the login's statements are in PostgreSQL's log, with their parameters");
unlike($pglog, qr/\Q$secret_pw\E/, 'the password is not');

# --- nothing secret in the logs ----------------------------------------------------
my $log = $pool->log;
like($log, qr/auth_password_rehashed/, 'the upgrade is logged');
unlike($log, qr/\$2[ab]\$|\$argon2id\$/, 'no hash in the log');
unlike($log, qr/legacy password|another password/, 'no password in the log');
unlike($log, qr/status=500/, 'no 500 at all');
$s->stop;
done_testing;
