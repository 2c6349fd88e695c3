#!/usr/bin/perl
# `streamvibe-admin user`: no e-mail is sent, so a forgotten password is
# the operator's to reset. set-password gives the account a new password
# (read from standard input), signs out its sessions and forgets its
# failed logins; delete removes the account and what it owns; list shows
# the accounts. Checked through the API as the user would see it.

use strict;
use warnings;
use Test::More;
use SV::Test qw(:DEFAULT run_command);
use SV::Test::Stack;

my $admin = sv_builddir() . '/streamvibe-admin';
plan skip_all => "$admin not built" unless -x $admin;

my $s = SV::Test::Stack->new(workers => 1,
    conf => { jwt_secret => 'admin-users-secret-' . ('u' x 32), login_max_failures => 3, password_min_length => 10 });
my ($ngx, $su) = ($s->ngx, $s->su);
my %env = (STREAMVIBE_ADMIN_DATABASE_URL => $s->pg->conninfo(user => 'postgres'),
           STREAMVIBE_CONFIG => $s->pool->config_file, STREAMVIBE_DATABASE_URL => undef);
sub admin {
    my ($stdin, @args) = @_;
    return run_command([$admin, 'user', @args], env => \%env, timeout => 60,
        defined $stdin ? (stdin_data => $stdin) : ());
}
sub post { my ($path, $body) = @_; $ngx->call('POST', $path, body => $body) }
sub login { post('/auth/v1/token?grant_type=password', { email => $_[0], password => $_[1] }) }

my ($res, $doc) = post('/auth/v1/signup', { email => 'Dana@Example.com', password => 'the old password' });
is($res->code, 200, 'dana signs up') or diag $res->as_string;
my $uid = $doc->{user}{id};
my $refresh = $doc->{refresh_token};
($res) = post('/auth/v1/signup', { email => 'eve@example.com', password => 'eve password!' });
is($res->code, 200, 'eve signs up');
my $hid = $s->handle($uid, 'dana');
$s->content($hid, 'v1', title => 'dana video');

# --- list ---------------------------------------------------------------------
my ($rc, $out, $err) = admin(undef, 'list');
is($rc, 0, 'user list') or diag $err;
like($out, qr/^id=\Q$uid\E email=dana\@example\.com created_at=\S+Z last_sign_in_at=\S+$/m, "dana listed (emails are stored lower-cased)");
like($out, qr/email=eve\@example\.com/, 'eve listed');
unlike($out, qr/argon2|\$2[aby]\$/, 'no password hash in the listing');

# --- set-password ---------------------------------------------------------------
# An attacker's guesses lock the owner's account out of logins first.
($res) = login('dana@example.com', "guess $_") for 1 .. 4;
($res) = login('dana@example.com', 'the old password');
is($res->code, 429, 'after the guesses the owner is throttled too') or diag $res->as_string;

($rc, $out, $err) = admin("short\n", 'set-password', '--email', 'dana@example.com');
is($rc, 1, 'a password under password_min_length: exit 1');
like($err, qr/at least|10 to/, 'saying why') or diag $err;
($res) = login('dana@example.com', 'short');
isnt($res->code, 200, 'and it was not set');
($rc, $out, $err) = admin("long enough\0but cut\n", 'set-password', '--email', 'dana@example.com');
is($rc, 1, 'a password with a NUL in it: exit 1, not the part before it') or diag $out;
($res) = login('dana@example.com', 'long enough');
isnt($res->code, 200, 'and the part before the NUL was not set');

($rc, $out, $err) = admin("a brand new passphrase\n", 'set-password', '--email', 'DANA@example.COM');
is($rc, 0, 'set-password (email in any case)') or diag $err;
like($out, qr/^user=\Q$uid\E password=set sessions_revoked=1$/m, 'names the user and the sessions ended')
    or diag $out;
unlike($out . $err, qr/brand new/, 'the password is not echoed');
($res, $doc) = login('dana@example.com', 'a brand new passphrase');
is($res->code, 200, 'the new password logs in, the failed logins forgotten') or diag $res->as_string;
($res) = login('dana@example.com', 'the old password');
is($res->code, 400, 'the old one does not');
($res) = post('/auth/v1/token?grant_type=refresh_token', { refresh_token => $refresh });
is($res->code, 400, 'a refresh token from before the reset is refused') or diag $res->as_string;
($res) = login('eve@example.com', 'eve password!');
is($res->code, 200, 'another account is untouched');

($rc, $out, $err) = admin("whatever password\n", 'set-password', '--email', 'nobody@example.com');
is($rc, 2, 'an unknown email: exit 2');
like($err, qr/no account has the email nobody\@example\.com/, 'saying so');
($rc, undef, $err) = admin('', 'set-password', '--email', 'dana@example.com');
is($rc, 1, 'nothing on standard input: exit 1');
($rc, undef, $err) = admin(undef, 'set-password');
is($rc, 1, 'no --email: exit 1');
like($err, qr/--email is required/, 'saying so');

# --- delete -----------------------------------------------------------------------
($rc, $out, $err) = admin(undef, 'delete', '--email', 'dana@example.com');
is($rc, 0, 'delete') or diag $err;
like($out, qr/^user=\Q$uid\E deleted$/m, 'names the user');
($res) = login('dana@example.com', 'a brand new passphrase');
is($res->code, 400, 'the account no longer logs in');
is($su->selectrow_array('SELECT count(*) FROM account_handles WHERE user_id = ?', undef, $uid), 0,
   'its handles are gone');
is($su->selectrow_array('SELECT count(*) FROM handle_content WHERE user_id = ?', undef, $uid), 0,
   'and its content');
($rc, undef, $err) = admin(undef, 'delete', '--email', 'dana@example.com');
is($rc, 2, 'deleting it again: exit 2');
($res) = login('eve@example.com', 'eve password!');
is($res->code, 200, 'eve still logs in');

$s->stop;
done_testing;
