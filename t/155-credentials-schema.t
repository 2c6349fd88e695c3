#!/usr/bin/perl
# platform_credentials' token columns hold only what the server sealed
# (sv1:<key id>:...) or the id of a vault.secrets row, as the V2 document
# stores them: a plaintext token is refused whoever writes it, key_id
# follows the sealed values, the two tokens of a row name one key, and
# vault.secrets is service_role's alone.
use strict;
use warnings;

use Test::More;
use SV::Test::Stack;

plan skip_all => 'DBD::Pg not installed' unless eval { require DBD::Pg; 1 };

my $s = SV::Test::Stack->new(pool => 0);
my $su = $s->su;
sub as_role { $s->as_role(@_) }
sub one { scalar $su->selectrow_array(@_) }

my $A = one(q{INSERT INTO auth.users (email) VALUES ('a@example.com') RETURNING id});
my $yt = one(q{SELECT id FROM platforms WHERE name = 'youtube'});
my $ig = one(q{SELECT id FROM platforms WHERE name = 'instagram'});
my $tt = one(q{SELECT id FROM platforms WHERE name = 'tiktok'});
my $sealed7 = 'sv1:7:' . ('A' x 60);
my $sealed9 = 'sv1:9:' . ('B' x 60);

my $ins = q{INSERT INTO platform_credentials (user_id, platform_id, encrypted_access_token, encrypted_refresh_token)
            VALUES (?, ?, ?, ?) RETURNING key_id};
my $r = as_role('service_role', undef, $ins, $A, $yt, 'ya29.plaintext-token', undef);
is($r->{state}, '23514', 'a plaintext access token is refused (check_violation)');
unlike($r->{err}, qr/ya29/, 'the error does not repeat the value');
$r = as_role('service_role', undef, $ins, $A, $yt, $sealed7, '1//plaintext-refresh');
is($r->{state}, '23514', 'a plaintext refresh token is refused');
$r = as_role('service_role', undef, $ins, $A, $yt, 'sv1:7:short', undef);
is($r->{state}, '23514', 'a truncated sealed value is refused');
$r = as_role('service_role', undef, $ins, $A, $yt, $sealed7, $sealed9);
is($r->{state}, '23514', 'tokens sealed with two different keys are refused');
$r = as_role('service_role', undef, $ins, $A, $yt, '6b0f1d6e-0000-4000-8000-000000000000', undef);
is($r->{state}, '23514', 'the id of a vault secret that does not exist is refused');

$r = as_role('service_role', undef, $ins, $A, $yt, $sealed7, $sealed7);
ok($r->{ok}, 'sealed values are accepted') or diag $r->{err};
is($r->{rows}[0]{key_id}, 7, 'key_id is the key the values name');
$r = as_role('service_role', undef, q{UPDATE platform_credentials SET key_id = 1 WHERE user_id = ? RETURNING key_id}, $A);
is($r->{rows}[0]{key_id}, 7, 'key_id cannot be set apart from the values');
$r = as_role('service_role', undef,
    q{UPDATE platform_credentials SET encrypted_access_token = ?, encrypted_refresh_token = NULL WHERE user_id = ? RETURNING key_id},
    $sealed9, $A);
is($r->{rows}[0]{key_id}, 9, 'key_id follows a new value');

# The V2 document's way: a Vault secret, then its id in the row.
my $sid = one(q{INSERT INTO vault.secrets (name, secret) VALUES ('platform_token_x', ?) RETURNING id}, undef, $sealed7);
is(one(q{SELECT key_id FROM vault.secrets WHERE id = ?}, undef, $sid), 7, 'vault.secrets.key_id is generated');
$r = as_role('service_role', undef, $ins, $A, $ig, $sid, undef);
ok($r->{ok}, 'the id of an existing vault secret is accepted') or diag $r->{err};
ok(!defined $r->{rows}[0]{key_id}, 'key_id NULL: the row seals nothing itself');
$r = as_role('service_role', undef, $ins, $A, $tt, uc $sid, $sealed9);
ok($r->{ok}, 'a reference plus a sealed refresh token') or diag $r->{err};
is($r->{rows}[0]{key_id}, 9, 'key_id from the sealed one');

ok(!eval { $su->do(q{INSERT INTO vault.secrets (secret) VALUES ('hunter2')}); 1 }, 'vault.secrets refuses plaintext');
like($su->state, qr/^23514$/, '(check_violation)');

for my $role (qw(anon authenticated)) {
    $r = as_role($role, $A, 'SELECT id FROM vault.secrets');
    is($r->{state}, '42501', "$role cannot read vault.secrets");
    $r = as_role($role, $A, q{INSERT INTO vault.secrets (secret) VALUES (?)}, $sealed7);
    is($r->{state}, '42501', "$role cannot write vault.secrets");
}
$r = as_role('authenticated', $A, 'SELECT platform_id, scopes, is_active FROM platform_credentials');
is(scalar @{ $r->{rows} // [] }, 3, 'the owner reads the metadata of own credentials');
for my $col (qw(encrypted_access_token encrypted_refresh_token key_id)) {
    $r = as_role('authenticated', $A, "SELECT $col FROM platform_credentials");
    is($r->{state}, '42501', "the owner cannot read $col");
}
$r = as_role('authenticated', $A, $ins, $A, $yt, $sealed7, undef);
is($r->{state}, '42501', 'users cannot write credentials directly');

done_testing;
