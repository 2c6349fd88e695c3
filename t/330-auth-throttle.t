#!/usr/bin/perl
# Repeated login failures for one account or from one address are slowed
# down: after login_max_failures failures within login_window seconds for
# an account from one address the answer is 429 (GoTrue's
# over_request_rate_limit) with Retry-After, even for the right password,
# the same for known and unknown emails, and parallel guesses cannot slip
# past the limit (state is in PostgreSQL, shared by all workers). One
# address trying many accounts is stopped at 4x the limit and one account
# tried from many addresses at 10x, so a stranger cannot lock an owner
# out with a handful of wrong passwords.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use LWP::UserAgent;
use SV::Test qw(:DEFAULT run_parallel);
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
is($res->code, 429, 'after 3 failures even the right password gets 429') or diag $res->as_string;
my $doc = $ngx->json($res) // {};
is($doc->{code}, 429, 'code 429');
is($doc->{error_code}, 'over_request_rate_limit', 'error_code over_request_rate_limit');
ok(length($doc->{msg} // ''), 'msg');
my $ra = $res->header('Retry-After') // '';
like($ra, qr/^\d+$/, 'Retry-After in seconds');
ok($ra >= 1 && $ra <= 60, "Retry-After within the window ($ra)");
unlike($res->content, qr/access_token/, 'no session while throttled');
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
ok($retry->('d@example.com', '10.1.0.99') > 0, 'an account tried from many addresses is throttled at 10x the limit');
is($retry->('e@example.com', '10.1.0.99'), 0, 'that address may still try another account');
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
