#!/usr/bin/perl
# Signups are throttled per address: each one costs an argon2id hash (and
# can create a spam account), so after signup_max_per_window signups from
# one address within login_window seconds the answer is 429 (GoTrue's
# over_request_rate_limit) with Retry-After, decided before any hashing.
# The count lives in PostgreSQL (auth.login_attempts), shared by all
# workers, so parallel signups cannot slip past it.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use LWP::UserAgent;
use SV::Test qw(:DEFAULT run_parallel throttled_ok);
use SV::Test::Stack;

my $s = SV::Test::Stack->new(workers => 3,
    conf => { jwt_secret => 'signup-throttle-secret-' . ('u' x 32),
              signup_max_per_window => 3, login_window => 60, login_max_failures => 1000 });
my ($pg, $pool, $ngx) = ($s->pg, $s->pool, $s->ngx);
my $su = $s->su;

sub signup {
    my ($email, $pw, %o) = @_;
    return scalar $ngx->call('POST', '/auth/v1/signup', %o, body => { email => $email, password => $pw // 'signup password' });
}
sub users { $su->selectrow_array('SELECT count(*) FROM auth.users') }
sub forget_signups { $su->do(q{UPDATE auth.login_attempts SET attempted_at = attempted_at - interval '1 hour'}) }

# --- the limit --------------------------------------------------------------
for my $i (1 .. 3) {
    my $res = signup("user$i\@example.com");
    is($res->code, 200, "signup $i of 3 allowed") or diag $res->as_string;
}
is(users(), 3, 'three users');
my $res = signup('user4@example.com');
throttled_ok($ngx, $res, 'the fourth signup from the address within the window: 429');
my $body429 = $res->content;
is(users(), 3, 'no user was created');
is($su->selectrow_array(q{SELECT count(*) FROM auth.login_attempts WHERE key LIKE 'signup:%'}), 3,
   'throttled signups are not recorded (the limit does not extend itself)');
like($pool->log, qr/auth_signup_throttled .*retry_after=\d+/, 'throttling is logged');
unlike($pool->log, qr/signup password/, 'the password is never logged');

# a duplicate or a different email changes nothing: the address is counted
$res = signup('user1@example.com');
is($res->code, 429, 'an existing email is throttled the same way (no user enumeration)');
is($res->content, $body429, 'identical body');

# logins from the same address are not affected
$res = $ngx->call('POST', '/auth/v1/token?grant_type=password',
    body => { email => 'user1@example.com', password => 'signup password' });
is($res->code, 200, 'login still works from a throttled address') or diag $res->as_string;

# requests refused before hashing (bad input) are not counted
forget_signups();
is(signup('short@example.com', 'short')->code, 422, 'a weak password is refused');
is(signup('not-an-email', 'long enough pw')->code, 400, 'an invalid email is refused');
is($su->selectrow_array(q{SELECT count(*) FROM auth.login_attempts WHERE key LIKE 'signup:%' AND attempted_at > now() - interval '1 minute'}),
   0, 'refused-by-validation signups are not counted');

# --- the window passes ----------------------------------------------------
is(signup('user5@example.com')->code, 200, 'after the window a signup works again');
# a duplicate signup costs a hash: it counts
is(signup('user5@example.com')->code, 422, 'duplicate email: 422');
is(signup('user6@example.com')->code, 200, 'third in the new window');
is(signup('user7@example.com')->code, 429, 'the duplicate counted against the limit');

# --- parallel signups cannot exceed the limit --------------------------------
forget_signups();
my %codes;
$codes{$_}++ for run_parallel(8, sub {
    my ($i) = @_;
    # a connection of its own: the parent's kept-alive one is shared
    my $ua = LWP::UserAgent->new(keep_alive => 0, timeout => 60, env_proxy => 0);
    return signup("parallel$i\@example.com", undef, ua => $ua)->code;
});
is($codes{200} // 0, 3, '8 parallel signups: exactly 3 succeeded') or diag explain \%codes;
is($codes{429} // 0, 5, 'the other 5 were throttled');
is($su->selectrow_array(q{SELECT count(*) FROM auth.users WHERE email LIKE 'parallel%'}), 3, 'three users created');

# --- per address (SQL level) ---------------------------------------------------
forget_signups();
my $dbh = $pg->dbh(user => 'postgres');
$dbh->do('SET ROLE service_role');
my $begin = $dbh->prepare('SELECT o_retry_after FROM auth.sv_signup_begin(?::inet, 2, 60)');
my $retry = sub { $begin->execute(@_); my ($v) = $begin->fetchrow_array; $begin->finish; $v };
is($retry->('10.0.0.1'), 0, "address signup $_ allowed") for 1 .. 2;
ok($retry->('10.0.0.1') > 0, 'the address is over the limit');
is($retry->('10.0.0.2'), 0, 'another address is unaffected');
is($retry->('2001:db8:1:2::1'), 0, 'IPv6 signup 1');
is($retry->('2001:db8:1:2::ffff'), 0, 'IPv6 signup 2, same /64');
ok($retry->('2001:db8:1:2:abcd::1') > 0, 'IPv6: counted per /64');
is($retry->('2001:db8:1:3::1'), 0, 'another /64 is unaffected');
is($dbh->selectrow_array(q{SELECT o_retry_after FROM auth.sv_signup_begin('10.0.0.1', 0, 60)}), 0,
   'a limit of 0 means unlimited');
is($dbh->selectrow_array(q{SELECT o_retry_after FROM auth.sv_signup_begin(NULL, 2, 60)}), 0,
   'no address: not throttled');
$dbh->do('RESET ROLE');
my $anon = $pg->dbh(user => 'postgres');
$anon->do('SET ROLE anon');
ok(!eval { $anon->do(q{SELECT * FROM auth.sv_signup_begin('1.1.1.1', 3, 60)}); 1 },
   'anon cannot call auth.sv_signup_begin');
$anon->do('SET ROLE authenticated');
ok(!eval { $anon->do(q{SELECT * FROM auth.sv_signup_begin('1.1.1.1', 3, 60)}); 1 },
   'authenticated cannot call auth.sv_signup_begin');
ok($su->selectrow_array(q{SELECT relrowsecurity FROM pg_class WHERE oid = 'auth.login_attempts'::regclass}),
   'auth.login_attempts has RLS enabled');

unlike($pool->log, qr/status=500/, 'no 500 at all');
$s->stop;
done_testing;
