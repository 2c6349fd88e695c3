#!/usr/bin/perl
# Repeated login failures for one account or from one address are slowed
# down: after login_max_failures failures within login_window seconds for
# an account from one address the answer is 429 (GoTrue's
# over_request_rate_limit) with Retry-After, even for the right password,
# the same for known and unknown emails, and parallel guesses cannot slip
# past the limit (state is in PostgreSQL, shared by all workers). One
# address trying many accounts is stopped at 4x the limit. An account
# tried from many addresses (10x the limit) is never locked for its
# owner: an address it has signed in from keeps the normal limit, and any
# other address gets one try per window, so ten addresses cannot keep the
# right password refused from an eleventh. An IPv6 client is counted by
# its /64, so it cannot escape the limits by moving inside it (the
# requests go straight to the pool's FastCGI socket with REMOTE_ADDR set,
# as nginx only listens on 127.0.0.1 here).

use strict;
use warnings;
use Test::More;
use JSON::PP;
use LWP::UserAgent;
use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);
use SV::Test qw(:DEFAULT run_parallel fcgi_ask throttled_ok);
use SV::Test::Stack;

my $s = SV::Test::Stack->new(workers => 3,
    conf => { jwt_secret => 'throttle-test-secret-' . ('t' x 32),
              login_max_failures => 3, login_window => 60 });
my ($pg, $pool, $ngx) = ($s->pg, $s->pool, $s->ngx);
my $su = $s->su;

sub login {
    my ($email, $pw) = @_;
    return scalar $ngx->call('POST', '/auth/v1/token?grant_type=password', body => { email => $email, password => $pw });
}
sub forget_attempts { $su->do(q{UPDATE auth.login_attempts SET attempted_at = attempted_at - interval '1 hour'}) }

my $res = $ngx->call('POST', '/auth/v1/signup', body => { email => 'victim@example.com', password => 'victim password' });
is($res->code, 200, 'signup') or diag $res->as_string;

# --- one account, one address -------------------------------------------
is(login('victim@example.com', "wrong $_")->code, 400, "failure $_ is a plain 400") for 1 .. 3;
$res = login('victim@example.com', 'victim password');
throttled_ok($ngx, $res, 'after 3 failures even the right password gets 429');
my $body429 = $res->content;

is($su->selectrow_array(q{SELECT count(*) FROM auth.login_attempts WHERE key = 'email:victim@example.com'}), 3,
   'throttled attempts are not recorded (the lock does not extend itself)');

$res = login('nobody@example.com', 'whatever pw');
is($res->code, 400, 'another account from the same address is not locked by them');

forget_attempts();
$res = login('victim@example.com', 'victim password');
is($res->code, 200, 'once the window has passed the right password works') or diag $res->as_string;

# --- unknown emails are throttled exactly like known ones -----------------
forget_attempts();
is(login('ghost@example.com', "guess $_")->code, 400, "unknown email failure $_") for 1 .. 3;
$res = login('ghost@example.com', 'guess 4');
is($res->code, 429, 'unknown email: 429 after the same number of failures');
is($res->content, $body429, 'indistinguishable from a known account');

# --- a success resets the account's count ----------------------------------
forget_attempts();
is(login('victim@example.com', 'wrong')->code, 400, 'one failure');
is(login('victim@example.com', 'victim password')->code, 200, 'success');
is($su->selectrow_array(q{SELECT count(*) FROM auth.login_attempts WHERE key LIKE 'email:victim@example.com%' AND NOT succeeded}), 0,
   "success clears the account's failures, from every address");

# --- parallel guessing cannot exceed the limit -----------------------------
forget_attempts();
my %codes;
$codes{$_}++ for run_parallel(8, sub {
    my ($i) = @_;
    # a connection of its own: the parent's kept-alive one is shared
    my $ua = LWP::UserAgent->new(keep_alive => 0, timeout => 30, env_proxy => 0);
    return $ngx->call('POST', '/auth/v1/token?grant_type=password', ua => $ua,
        body => { email => 'victim@example.com', password => "parallel guess $i" })->code;
});
is($codes{400} // 0, 3, '8 parallel guesses: exactly 3 were checked');
is($codes{429} // 0, 5, 'the other 5 were throttled');

# --- IPv6: one /64 is one client ---------------------------------------------------
sub fcgi_login {
    my ($addr, $email, $pw) = @_;
    my $sock = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $pool->socket) or die "connect: $!";
    my $text = fcgi_ask($sock, '/auth/v1/token?grant_type=password', method => 'POST', remote_addr => $addr,
        body => encode_json({ email => $email, password => $pw }), timeout => 20);
    close $sock;
    my ($status) = ($text // '') =~ /^Status: (\d+)/m;
    return $status // 200;
}
forget_attempts();
is(fcgi_login("2001:db8:5:6::$_", 'victim@example.com', "v6 guess $_"), 400, "IPv6 failure $_, from 2001:db8:5:6::$_")
    for 1 .. 3;
is(fcgi_login('2001:db8:5:6:ffff::9', 'victim@example.com', 'victim password'), 429,
   'another address of the same /64: throttled like the first (one client)');
is(fcgi_login('2001:db8:5:7::1', 'victim@example.com', 'victim password'), 200,
   'the next /64 is another client');
is($su->selectrow_array(q{SELECT count(*) FROM auth.login_attempts WHERE key = 'ip:2001:db8:5:6::/64'}), 3,
   "the address is counted as its /64 (the server's key, as for signups)");

# --- many addresses cannot lock the owner out (from 127.0.0.x) ----------------
sub login_from {
    my ($addr, $email, $pw) = @_;
    my $ua = LWP::UserAgent->new(keep_alive => 0, timeout => 30, env_proxy => 0, local_address => $addr);
    return $ngx->request('POST', '/auth/v1/token?grant_type=password', ua => $ua,
        body => encode_json({ email => $email, password => $pw }));
}
sub attack {
    my ($first) = @_;
    my %codes;
    for my $a ($first .. $first + 9) {
        $codes{ login_from("127.0.0.$a", 'victim@example.com', "guess $_")->code }++ for 1 .. 3;
    }
    return \%codes;
}
forget_attempts();
is(login_from('127.0.0.2', 'victim@example.com', 'victim password')->code, 200,
   'the owner signs in from 127.0.0.2 (now a familiar address)');
is_deeply(attack(11), { 400 => 30 }, 'ten addresses, three wrong passwords each: 30 failures on the account');
$res = login_from('127.0.0.2', 'victim@example.com', 'victim password');
is($res->code, 200, 'the owner still signs in from the familiar address') or diag $res->as_string;

is_deeply(attack(31), { 400 => 30 }, 'the account under attack again (30 more failures)');
$res = login_from('127.0.0.21', 'victim@example.com', 'victim password');
is($res->code, 200, 'the owner signs in from an eleventh, never seen address') or diag $res->as_string;

is_deeply(attack(41), { 400 => 30 }, 'and again');
is(login_from('127.0.0.22', 'victim@example.com', 'wrong again')->code, 400,
   'a new address gets one try while the account is under attack');
$res = login_from('127.0.0.22', 'victim@example.com', 'victim password');
is($res->code, 429, 'only one: the next is 429, so an attacker gets one guess per address per window')
    or diag $res->as_string;
like($res->header('Retry-After') // '', qr/^\d+$/, 'with Retry-After');
is(login_from('127.0.0.22', 'someone@example.com', 'whatever pw')->code, 400,
   'that address may still try another account');
is(login_from('127.0.0.23', 'victim@example.com', 'victim password')->code, 200,
   'the owner from yet another new address: in');
is($su->selectrow_array(q{SELECT count(*) FROM auth.login_known_addresses WHERE key LIKE 'email:victim@example.com ip:127.%'}), 4,
   'the familiar addresses are remembered (127.0.0.1 of the sections above, .2, .21, .23)');

# --- per account and per address, independently (SQL level) -----------------
forget_attempts();
my $dbh = $pg->dbh(user => 'postgres');
$dbh->do('SET ROLE service_role');
my $begin = $dbh->prepare('SELECT o_retry_after FROM auth.sv_login_begin(?, ?, 3, 60)');
my $retry = sub { $begin->execute(@_); my ($v) = $begin->fetchrow_array; $begin->finish; $v };
is($retry->('a@example.com', '10.0.0.1'), 0, "attempt $_ allowed") for 1 .. 3;
ok($retry->('a@example.com', '10.0.0.1') > 0, 'account+address over the limit');
is($retry->('a@example.com', '10.0.0.2'), 0, "the account's owner can still try from another address");
is($retry->('b@example.com', '10.0.0.1'), 0, 'the address may still try another account');
is($retry->('c@example.com', '10.0.0.3'), 0, 'others are unaffected');
# one address across accounts: 4 x 3 = 12 (10.0.0.1 has used 4, with b)
is($retry->("m$_\@example.com", '10.0.0.1'), 0, "address across accounts, attempt $_") for 5 .. 12;
ok($retry->('n@example.com', '10.0.0.1') > 0, 'an address trying many accounts is throttled at 4x the limit');
# one account from many addresses: 10 x 3 = 30 (d@ from 30 addresses)
is($retry->('d@example.com', "10.1.0.$_"), 0, "account from address $_") for 1 .. 30;
is($retry->('d@example.com', '10.1.0.99'), 0, 'an account tried from many addresses: a new address still gets a try');
ok($retry->('d@example.com', '10.1.0.99') > 0, 'but only one per window');
is($retry->('e@example.com', '10.1.0.99'), 0, 'that address may still try another account');
$su->do(q{INSERT INTO auth.login_known_addresses (key) VALUES ('email:d@example.com ip:10.1.0.200')});
is($retry->('d@example.com', '10.1.0.200'), 0, "a familiar address keeps the normal limit ($_)") for 1 .. 3;
ok($retry->('d@example.com', '10.1.0.200') > 0, 'up to it');
$dbh->do('RESET ROLE');
my $anon = $pg->dbh(user => 'postgres');
$anon->do('SET ROLE anon');
ok(!eval { $anon->do(q{SELECT * FROM auth.sv_login_begin('a@example.com', '1.1.1.1', 3, 60)}); 1 },
   'anon cannot call the auth functions');
$anon->do('SET ROLE authenticated');
ok(!eval { $anon->do(q{SELECT * FROM auth.sv_refresh('x', 'y')}); 1 },
   'authenticated cannot call the auth functions');

unlike($pool->log, qr/status=500/, 'no 500 at all');
$s->stop;
done_testing;
