#!/usr/bin/perl
# GoTrue's /auth/v1/admin/users, what supabase-js's auth.admin.* calls,
# through nginx: only the service_role key may list, create, read, update
# and delete accounts (anything else gets GoTrue's 401/403 and changes
# nothing); the user object is the one GET /user returns; pages carry
# X-Total-Count and Link; passwords follow signup's policy; a new password
# signs the user out everywhere; a ban stops logins and refreshes until it
# is lifted; deletion takes the account's handles and content with it, as
# `streamvibe-admin user delete` does. Bad input gets GoTrue's error codes.

use strict;
use warnings;
use Test::More;
use SV::Test;
use SV::Test::Stack;

my $s = SV::Test::Stack->new(workers => 2,
    conf => { jwt_secret => 'admin-api-secret-' . ('a' x 32), password_min_length => 10,
              login_max_failures => 100 });
my ($ngx, $su) = ($s->ngx, $s->su);
my $service = $s->jwt(role => 'service_role');
my $anon = $s->jwt(role => 'anon');

sub admin {
    my ($method, $path, %o) = @_;
    my %h = (apikey => $service, Authorization => "Bearer $service", %{ $o{headers} // {} });
    delete $h{Authorization} if exists $o{token} && !defined $o{token};
    $h{Authorization} = "Bearer $o{token}" if defined $o{token};
    return $ngx->call($method, "/auth/v1/admin/users$path", headers => \%h,
        (exists $o{body} ? (body => $o{body}) : ()));
}
sub post { my ($path, $body, %h) = @_; $ngx->call('POST', $path, body => $body, headers => \%h) }
sub login { post('/auth/v1/token?grant_type=password', { email => $_[0], password => $_[1] }) }
sub refresh { post('/auth/v1/token?grant_type=refresh_token', { refresh_token => $_[0] }) }
sub users { scalar $su->selectrow_array('SELECT count(*) FROM auth.users') }
sub gotrue_error {
    my ($res, $doc, $status, $code, $name) = @_;
    is($res->code, $status, "$name: $status") or diag $res->as_string;
    is(ref $doc eq 'HASH' ? $doc->{error_code} : undef, $code, "$name: $code");
}

my ($res, $doc) = post('/auth/v1/signup', { email => 'alice@example.com', password => 'alice password' });
is($res->code, 200, 'alice signs up') or diag $res->as_string;
my $alice = $doc->{user}{id};
my ($alice_token, $alice_refresh) = @$doc{qw(access_token refresh_token)};
my $hid = $s->handle($alice, 'alice');
$s->content($hid, 'a1', title => 'alice video');

# --- who may call ------------------------------------------------------------
my $other = 'ffffffff-ffff-4fff-8fff-ffffffffffff';
my @calls = (['GET', ''], ['POST', '', { email => 'mallory@example.com', password => 'mallory password' }],
             ['GET', "/$alice"], ['PUT', "/$alice", { email => 'mallory@example.com' }],
             ['DELETE', "/$alice"]);
my $before = users();
for my $c (@calls) {
    my ($m, $p, $body) = @$c;
    my %b = $body ? (body => $body) : ();
    ($res, $doc) = admin($m, $p, %b, token => undef, headers => { apikey => $service });
    gotrue_error($res, $doc, 401, 'no_authorization', "$m$p with the service key as apikey only");
    ($res, $doc) = admin($m, $p, %b, token => $anon, headers => { apikey => $anon });
    gotrue_error($res, $doc, 403, 'not_admin', "$m$p with the anon key");
    ($res, $doc) = admin($m, $p, %b, token => $alice_token, headers => { apikey => $anon });
    gotrue_error($res, $doc, 403, 'not_admin', "$m$p with a user's access token");
    ($res, $doc) = admin($m, $p, %b, token => $s->jwt(role => 'service_role', secret => 'x' x 40));
    gotrue_error($res, $doc, 403, 'bad_jwt', "$m$p with a service_role token signed with another secret");
    ($res, $doc) = admin($m, $p, %b, token => $s->jwt(role => 'service_role', exp => time - 10));
    gotrue_error($res, $doc, 403, 'bad_jwt', "$m$p with an expired service_role token");
}
is(users(), $before, 'no account was created or deleted by the refused calls');
is($su->selectrow_array('SELECT email FROM auth.users WHERE id = ?', undef, $alice), 'alice@example.com',
   "and alice's email is unchanged");
($res) = login('alice@example.com', 'alice password');
is($res->code, 200, 'alice still logs in');

# --- create ------------------------------------------------------------------------
($res, $doc) = admin('POST', '', body => { email => 'Bob@Example.COM', password => 'bob password',
    email_confirm => JSON::PP::true(), user_metadata => { name => 'Bob' }, app_metadata => { plan => 'pro' } });
is($res->code, 200, 'createUser: 200') or diag $res->as_string;
my $bob = $doc->{id};
like($bob // '', qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'a uuid id');
is($doc->{email}, 'bob@example.com', 'the email lower-cased, as signup stores it');
ok($doc->{email_confirmed_at}, 'email_confirm: confirmed');
is_deeply($doc->{user_metadata}, { name => 'Bob' }, 'user_metadata as given');
is_deeply($doc->{app_metadata}, { provider => 'email', providers => ['email'], plan => 'pro' },
          'app_metadata merged into the provider keys');
is($doc->{role}, 'authenticated', 'role authenticated');
ok(!exists $doc->{banned_until}, 'no banned_until when not banned');
unlike($res->content, qr/password|argon2/, 'no password or hash in the answer');
like($su->selectrow_array('SELECT encrypted_password FROM auth.users WHERE id = ?', undef, $bob) // '',
     qr/^\$argon2id\$/, 'the password stored as an argon2id hash');
($res, $doc) = login('bob@example.com', 'bob password');
is($res->code, 200, 'bob logs in with the password the admin set') or diag $res->as_string;
my $bob_token = $doc->{access_token};
my ($r1, $me) = $ngx->call('GET', '/auth/v1/user', token => $bob_token, headers => { apikey => $anon });
my ($r2, $got) = admin('GET', "/$bob");
is($r2->code, 200, 'getUserById: 200');
is($r2->content, $r1->content, 'getUserById answers exactly what GET /user answers the user');

($res, $doc) = admin('POST', '', body => { email => 'carol@example.com' });
is($res->code, 200, 'createUser without a password or email_confirm: 200') or diag $res->as_string;
my $carol = $doc->{id};
ok(exists $doc->{email_confirmed_at} && !defined $doc->{email_confirmed_at}, 'not confirmed');
($res) = login('carol@example.com', '');
is($res->code, 400, 'and nobody can log in to it with a password');

$before = users();
($res, $doc) = admin('POST', '', body => { email => 'BOB@example.com', password => 'another password' });
gotrue_error($res, $doc, 422, 'email_exists', 'an email already taken (other case)');
is($doc->{msg}, 'A user with this email address has already been registered', "GoTrue's message");
($res, $doc) = admin('POST', '', body => { email => 'not an email', password => 'long enough pw' });
gotrue_error($res, $doc, 400, 'email_address_invalid', 'an invalid email');
($res, $doc) = admin('POST', '', body => { email => 'dave@example.com', password => 'short' });
gotrue_error($res, $doc, 422, 'weak_password', 'a password under password_min_length');
($res, $doc) = admin('POST', '', body => { password => 'long enough pw' });
gotrue_error($res, $doc, 400, 'validation_failed', 'no email');
for my $bad ([email => 5], [password => ['x']], [user_metadata => 'x'], [app_metadata => [1]],
             [email_confirm => 'yes'], [ban_duration => 24]) {
    ($res, $doc) = admin('POST', '', body => { email => 'dave@example.com', password => 'long enough pw', @$bad });
    gotrue_error($res, $doc, 400, 'bad_json', "$bad->[0] of the wrong type");
}
($res, $doc) = admin('POST', '', body => '{"email": "dave@example.com",');
gotrue_error($res, $doc, 400, 'bad_json', 'a body that is not JSON');
($res, $doc) = admin('POST', '', body => { email => 'dave@example.com', phone => '+15551234567' });
gotrue_error($res, $doc, 400, 'validation_failed', 'a phone number (not supported)');
($res, $doc) = admin('POST', '', body => { email => 'dave@example.com', ban_duration => '1d' });
gotrue_error($res, $doc, 400, 'validation_failed', 'a ban_duration Go cannot parse');
is($doc->{msg}, 'invalid format for ban duration: time: unknown unit "d" in duration "1d"', "Go's message");
is(users(), $before, 'none of the refused creates made an account');
is($su->selectrow_array("SELECT count(*) FROM auth.users WHERE email = 'dave\@example.com'"), 0, 'no dave');

# --- list -----------------------------------------------------------------------
for my $i (1 .. 3) {
    ($res) = admin('POST', '', body => { email => "list$i\@example.com" });
    is($res->code, 200, "list$i created");
}
my $total = users();
is($total, 6, 'six accounts');
($res, $doc) = admin('GET', '?page=1&per_page=2');
is($res->code, 200, 'listUsers page 1: 200') or diag $res->as_string;
is($res->header('X-Total-Count'), $total, 'X-Total-Count: every account');
is($doc->{aud}, 'authenticated', 'aud');
is(scalar @{ $doc->{users} }, 2, 'two users on the page');
is_deeply([map { $_->{email} } @{ $doc->{users} }], ['list3@example.com', 'list2@example.com'], 'newest first');
is($res->header('Link'), '</auth/v1/admin/users?page=2&per_page=2>; rel="next", '
                       . '</auth/v1/admin/users?page=3&per_page=2>; rel="last"', 'Link: next and last');
($res) = admin('GET', '?page=1&per_page=2', headers => { Origin => 'https://admin.example.com' });
like($res->header('Access-Control-Expose-Headers') // '', qr/\bX-Total-Count\b.*\bLink\b/,
     'a browser may read X-Total-Count and Link');
my %seen;
for my $page (1 .. 3) {
    ($res, $doc) = admin('GET', "?per_page=2&page=$page");
    $seen{$_->{id}}++ for @{ $doc->{users} };
}
is(scalar keys %seen, $total, 'the three pages hold every account once');
ok(!grep({ $_ != 1 } values %seen), 'none twice');
is($res->header('Link'), '</auth/v1/admin/users?page=3&per_page=2>; rel="last"', 'last page: no next');
($res, $doc) = admin('GET', '?page=9&per_page=2');
is($res->code, 200, 'a page past the end: 200');
is_deeply($doc->{users}, [], 'with no users');
($res, $doc) = admin('GET', '');
is(scalar @{ $doc->{users} }, $total, 'no parameters: the first 50');
for my $bad (['per_page=0', 'per_page must be greater than 0'], ['per_page=abc', 'invalid syntax'],
             ['per_page=1001', 'at most 1000'], ['page=-1', 'invalid syntax'], ['page=0', 'greater than 0'],
             ['page=99999999999999999999999', 'value out of range']) {
    ($res, $doc) = admin('GET', "?$bad->[0]");
    gotrue_error($res, $doc, 400, 'validation_failed', "listUsers $bad->[0]");
    like($doc->{msg} // '', qr/^Bad Pagination Parameters: .*\Q$bad->[1]\E/, "$bad->[0]: saying why");
}

# --- get ---------------------------------------------------------------------------
($res, $doc) = admin('GET', '/not-a-uuid');
gotrue_error($res, $doc, 404, 'validation_failed', 'getUserById with a malformed id');
($res, $doc) = admin('GET', "/$other");
gotrue_error($res, $doc, 404, 'user_not_found', 'getUserById of nobody');

# --- update ------------------------------------------------------------------------
($res, $doc) = admin('PUT', "/$bob", body => { user_metadata => { name => undef, team => 'red' },
                                                app_metadata => { plan => 'free' } });
is($res->code, 200, 'updateUserById metadata: 200') or diag $res->as_string;
is_deeply($doc->{user_metadata}, { team => 'red' }, 'user_metadata merged, null removing a key');
is($doc->{app_metadata}{plan}, 'free', 'app_metadata merged');
is($doc->{app_metadata}{provider}, 'email', 'keeping the provider');
($res) = refresh($alice_refresh);
is($res->code, 200, "alice's refresh token still works before her password is changed");
$alice_refresh = $ngx->json($res)->{refresh_token};

my $row = sub { [$su->selectrow_array('SELECT email, encrypted_password, raw_user_meta_data::text FROM auth.users WHERE id = ?', undef, $_[0])] };
my $alice_row = $row->($alice);
($res, $doc) = admin('PUT', "/$alice", body => { email => 'bob@example.com' });
gotrue_error($res, $doc, 422, 'email_exists', "updateUserById to bob's email");
($res, $doc) = admin('PUT', "/$alice", body => { password => 'too short', user_metadata => { x => 1 } });
gotrue_error($res, $doc, 422, 'weak_password', 'updateUserById with a short password');
($res, $doc) = admin('PUT', "/$alice", body => { ban_duration => 'soon', user_metadata => { x => 1 } });
gotrue_error($res, $doc, 400, 'validation_failed', 'updateUserById with a bad ban_duration');
($res, $doc) = admin('PUT', "/$alice", body => { email => [] });
gotrue_error($res, $doc, 400, 'bad_json', 'updateUserById with an email of the wrong type');
is_deeply($row->($alice), $alice_row, 'the refused updates changed nothing');
($res, $doc) = admin('PUT', "/$other", body => { user_metadata => { x => 1 } });
gotrue_error($res, $doc, 404, 'user_not_found', 'updateUserById of nobody');
($res, $doc) = admin('PUT', '/12345', body => {});
gotrue_error($res, $doc, 404, 'validation_failed', 'updateUserById with a malformed id');

($res, $doc) = admin('PUT', "/$alice", body => { email => 'Alice.Mid@Example.com' });
is($doc->{email}, 'alice.mid@example.com', 'updateUserById email alone: the new email');
($res) = refresh($alice_refresh);
is($res->code, 200, 'and her sessions go on (only a new password ends them, as GoTrue)') or diag $res->as_string;
$alice_refresh = $ngx->json($res)->{refresh_token};

($res, $doc) = admin('PUT', "/$alice", body => { email => 'Alice.New@Example.com', password => 'alice new password' });
is($res->code, 200, 'updateUserById email and password: 200') or diag $res->as_string;
is($doc->{email}, 'alice.new@example.com', 'the new email');
($res) = login('alice.new@example.com', 'alice new password');
is($res->code, 200, 'the new email and password log in') or diag $res->as_string;
($res) = login('alice.new@example.com', 'alice password');
is($res->code, 400, 'the old password does not');
($res, $doc) = refresh($alice_refresh);
is($res->code, 400, "a refresh token from before the new password is refused (GoTrue signs out every session)")
    or diag $res->as_string;

# An unconfirmed address does not sign in (GoTrue's email_not_confirmed,
# answered only to whoever gave the right password) until email_confirm.
($res) = admin('PUT', "/$carol", body => { password => 'carol password' });
is($res->code, 200, 'carol gets a password') or diag $res->as_string;
($res, $doc) = login('carol@example.com', 'carol password');
gotrue_error($res, $doc, 400, 'email_not_confirmed', 'an unconfirmed account signing in');
($res, $doc) = login('carol@example.com', 'not her password');
gotrue_error($res, $doc, 400, 'invalid_credentials', 'a wrong password for it');
($res, $doc) = admin('PUT', "/$carol", body => { email_confirm => JSON::PP::true() });
ok($res->code == 200 && $doc->{email_confirmed_at}, 'updateUserById email_confirm confirms it');
($res) = login('carol@example.com', 'carol password');
is($res->code, 200, 'and carol signs in') or diag $res->as_string;

# --- ban ---------------------------------------------------------------------------
($res, $doc) = login('bob@example.com', 'bob password');
my $bob_refresh = $doc->{refresh_token};
($res, $doc) = admin('PUT', "/$bob", body => { ban_duration => '24h' });
is($res->code, 200, 'ban for 24h: 200') or diag $res->as_string;
ok($doc->{banned_until}, 'banned_until in the user object');
my $left = $su->selectrow_array('SELECT extract(epoch FROM banned_until - now()) FROM auth.users WHERE id = ?', undef, $bob);
ok($left > 86000 && $left <= 86400, 'banned for 24 hours') or diag $left;
($res) = login('bob@example.com', 'bob password');
is($res->code, 400, 'a banned user cannot log in');
($res, $doc) = refresh($bob_refresh);
gotrue_error($res, $doc, 400, 'user_banned', "a banned user's refresh");
($res, $doc) = admin('PUT', "/$bob", body => { ban_duration => '1h30m' });
$left = $su->selectrow_array('SELECT extract(epoch FROM banned_until - now()) FROM auth.users WHERE id = ?', undef, $bob);
ok($left > 5300 && $left <= 5400, 'ban_duration 1h30m: 90 minutes') or diag $left;
($res, $doc) = admin('PUT', "/$bob", body => { ban_duration => '.5h' });
$left = $su->selectrow_array('SELECT extract(epoch FROM banned_until - now()) FROM auth.users WHERE id = ?', undef, $bob);
ok($left > 1700 && $left <= 1800, 'ban_duration .5h: 30 minutes') or diag $left;
my $banned = $su->selectrow_array('SELECT banned_until FROM auth.users WHERE id = ?', undef, $bob);
for my $bad (['1.', 'time: missing unit in duration "1."'], ['-', 'time: invalid duration "-"'],
             ['100000000h', 'time: invalid duration "100000000h"'], ['1\u00e9h', 'time: unknown unit "\\xc3\\xa9h" in duration "1\\xc3\\xa9h"'],
             ['1h 2m', 'time: unknown unit "h " in duration "1h 2m"']) {
    ($res, $doc) = admin('PUT', "/$bob", body => qq({"ban_duration": "$bad->[0]"}));
    gotrue_error($res, $doc, 400, 'validation_failed', "ban_duration '$bad->[0]'");
    is($doc->{msg}, "invalid format for ban duration: $bad->[1]", "Go's message for '$bad->[0]'");
}
is($su->selectrow_array('SELECT banned_until FROM auth.users WHERE id = ?', undef, $bob), $banned,
   'the refused bans changed nothing');
($res, $doc) = admin('PUT', "/$bob", body => '[]');
gotrue_error($res, $doc, 400, 'bad_json', 'a body that is an array');
($res, $doc) = admin('GET', '?' . join('&', map { "k$_=v" } 1 .. 400) . '&per_page=1');
is($res->code, 200, 'listUsers with 400 other parameters: 200');
like($res->header('Link') // '', qr/^<[^>]*\?k1=v&.*page=2&per_page=1.*>; rel="next"/, 'the Link keeps them, sorted');
($res, $doc) = admin('PUT', "/$bob", body => { ban_duration => 'none' });
is($res->code, 200, 'ban_duration none: 200');
ok(!exists $doc->{banned_until}, 'the ban lifted');
($res) = login('bob@example.com', 'bob password');
is($res->code, 200, 'bob logs in again');

# --- delete -----------------------------------------------------------------------
($res, $doc) = admin('DELETE', "/$alice", body => { should_soft_delete => JSON::PP::true() });
gotrue_error($res, $doc, 400, 'validation_failed', 'soft delete (not supported)');
is($su->selectrow_array('SELECT count(*) FROM auth.users WHERE id = ?', undef, $alice), 1, 'alice is still there');
($res, $doc) = admin('DELETE', "/$alice", body => { should_soft_delete => JSON::PP::false() });
is($res->code, 200, 'deleteUser: 200') or diag $res->as_string;
is_deeply($doc, {}, 'answering {}');
is($su->selectrow_array('SELECT count(*) FROM auth.users WHERE id = ?', undef, $alice), 0, 'alice is gone');
is($su->selectrow_array('SELECT count(*) FROM account_handles WHERE user_id = ?', undef, $alice), 0, 'her handles');
is($su->selectrow_array('SELECT count(*) FROM handle_content WHERE user_id = ?', undef, $alice), 0, 'her content');
is($su->selectrow_array('SELECT count(*) FROM auth.sessions WHERE user_id = ?', undef, $alice), 0, 'her sessions');
($res) = login('alice.new@example.com', 'alice new password');
is($res->code, 400, 'she can no longer log in');
($res, $doc) = admin('GET', "/$alice");
gotrue_error($res, $doc, 404, 'user_not_found', 'getUserById after delete');
($res, $doc) = admin('DELETE', "/$alice");
gotrue_error($res, $doc, 404, 'user_not_found', 'deleting her again');
($res, $doc) = admin('DELETE', '/zzz');
gotrue_error($res, $doc, 404, 'validation_failed', 'deleteUser with a malformed id');
($res) = admin('GET', '');
is($res->header('X-Total-Count'), $total - 1, 'one account fewer');

$s->stop;
done_testing;
