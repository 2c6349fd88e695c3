#!/usr/bin/perl
# The V2 document's Vault calls, sent as supabase-js sends them
# (supabase.rpc('vault.create_secret', {secret, name}) is POST
# /rest/v1/rpc/vault.create_secret), with the service role key: secrets
# sealed by the server and returned by id; get_secret only for the
# service role (anon 401, users 403, PostgREST's 42501 shape); the
# document's platform_credentials row that references a secret by id;
# and what PostgREST would answer for bad calls.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use SV::Test qw(:DEFAULT run_command);
use SV::Test::Pg;
use SV::Test::Pool;
use SV::Test::Nginx;

plan skip_all => 'nginx not installed' unless SV::Test::Nginx::available();
plan skip_all => 'PostgreSQL server not installed' unless SV::Test::Pg::available();

my $pg = SV::Test::Pg->new(settings => { log_statement => "'all'", log_min_messages => 'info' });
$pg->start;
my ($rc, $out) = $pg->migrate;
is($rc, 0, 'migrate') or diag $out;
my $keys = sv_tempdir(prefix => 'svkeys');
($rc, $out) = run_command([sv_builddir() . '/streamvibe-admin', 'keygen', "$keys/vault.key"]);
my ($key_id) = $out =~ /key_id=(\d+)/;
my $secret = 'vault-rpc-secret-' . ('v' x 32);
my $pool = SV::Test::Pool->new(pg => $pg, workers => 2,
    conf => { jwt_secret => $secret, vault_key_file => "$keys/vault.key" });
$pool->start;
my $ngx = SV::Test::Nginx->new(pool => $pool);
$ngx->start;
my $su = $pg->dbh(user => 'postgres');
my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;

sub jwt { SV::Test::jwt(secret => $secret, @_) }
my ($service, $anon) = (jwt(role => 'service_role'), jwt(role => 'anon'));
my %S = (apikey => $service, Authorization => "Bearer $service", 'X-Client-Info' => 'supabase-js-node/2');
my %N = (apikey => $anon, Authorization => "Bearer $anon");
my ($A) = $su->selectrow_array(q{INSERT INTO auth.users (email) VALUES ('a@example.com') RETURNING id});
my $userA = jwt(user => $A, session_id => '00000000-0000-4000-8000-000000000001');
my %U = (apikey => $anon, Authorization => "Bearer $userA");
my @bodies;
sub rpc {
    my ($h, $fn, $args, $method) = @_;
    my $res = $ngx->request($method // 'POST', "/rest/v1/rpc/$fn", headers => { %$h, 'Content-Type' => 'application/json' },
        defined $args ? (body => ref $args ? $JSON->encode($args) : $args) : ());
    push @bodies, $res->content;
    return ($res, eval { $JSON->decode($res->content) });
}

# --- the document's calls ----------------------------------------------------------
my $token = 'ya29.vault-' . join('', map { chr(97 + rand 26) } 1 .. 30);
my ($res, $data) = rpc(\%S, 'vault.create_secret', { secret => $token, name => "platform_token_${A}_yt" });
is($res->code, 200, 'create_secret with the service key: 200') or diag $res->content;
like($data->{id} // '', qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'data.id is a uuid');
is($data->{name}, "platform_token_${A}_yt", 'the name');
ok(!grep({ /secret/ } keys %$data), 'the answer does not carry the secret');
my $id = $data->{id};
my ($stored, $kid) = $su->selectrow_array(q{SELECT secret, key_id FROM vault.secrets WHERE id = ?}, undef, $id);
like($stored, qr/^sv1:$key_id:/, 'stored sealed with the current key');
is($kid, $key_id, 'key_id');
unlike($stored, qr/vault-/, 'no plaintext in the table');

($res, $data) = rpc(\%S, 'vault.get_secret', { secret_id => $id });
is($res->code, 200, 'get_secret with the service key');
is($data, $token, 'returns the secret as a JSON string');
($res, $data) = rpc(\%S, "vault.get_secret?secret_id=$id", undef, 'GET');
is($data, $token, 'GET with ?secret_id= too');
is($res->header('Cache-Control'), 'no-store', 'not cacheable');

# supabase-js's .schema('vault') sends Content-Profile: vault (Accept-Profile
# on a GET): accepted on the Vault calls, like public or no profile; any
# other schema is PostgREST's 406 PGRST106, before the secret is touched.
($res, $data) = rpc({ %S, 'Content-Profile' => 'vault' }, 'vault.get_secret', { secret_id => $id });
is($data, $token, 'get_secret with Content-Profile: vault');
($res, $data) = rpc({ %S, 'Accept-Profile' => 'vault' }, "vault.get_secret?secret_id=$id", undef, 'GET');
is($data, $token, 'GET get_secret with Accept-Profile: vault');
($res, $data) = rpc({ %S, 'Content-Profile' => 'public' }, 'vault.get_secret', { secret_id => $id });
is($data, $token, 'get_secret with Content-Profile: public');
my $nsecrets = $su->selectrow_array(q{SELECT count(*) FROM vault.secrets});
($res, $data) = rpc({ %S, 'Content-Profile' => 'vault' }, 'vault.create_secret', { secret => 'profiled', name => 'profiled' });
is($res->code, 200, 'create_secret with Content-Profile: vault: 200') or diag $res->content;
$su->do(q{DELETE FROM vault.secrets WHERE name = 'profiled'});
for my $p (['Content-Profile', 'private', 'vault.create_secret', { secret => 'nope', name => 'nope' }, 'POST'],
           ['Content-Profile', 'private', 'vault.get_secret', { secret_id => $id }, 'POST'],
           ['Accept-Profile', 'auth', "vault.get_secret?secret_id=$id", undef, 'GET']) {
    my ($hdr, $schema, $fn, $args, $method) = @$p;
    ($res, $data) = rpc({ %S, $hdr => $schema }, $fn, $args, $method);
    is($res->code, 406, "$method $fn with $hdr: $schema: 406") or diag $res->content;
    is($data->{code}, 'PGRST106', 'PGRST106');
    unlike($res->content, qr/\Q$token\E/, 'no secret in the answer');
}
is($su->selectrow_array(q{SELECT count(*) FROM vault.secrets}), $nsecrets, 'nothing created under another schema');

# The document then stores the id in platform_credentials with the
# service key, and reads it back.
my ($yt) = $su->selectrow_array(q{SELECT id FROM platforms WHERE name = 'youtube'});
$res = $ngx->request('POST', '/rest/v1/platform_credentials', headers => { %S, Prefer => 'return=representation' },
    body => $JSON->encode({ user_id => $A, platform_id => $yt, encrypted_access_token => $id,
        token_expires_at => '2031-01-01T00:00:00Z', scopes => ['read', 'write'] }));
is($res->code, 201, "from('platform_credentials').insert({... encrypted_access_token: data.id ...})") or diag $res->content;
$res = $ngx->request('GET', "/rest/v1/platform_credentials?select=encrypted_access_token&user_id=eq.$A", headers => \%S);
my $cred = $ngx->json($res)->[0];
is($cred->{encrypted_access_token}, $id, 'the row references the secret');
($res, $data) = rpc(\%S, 'vault.get_secret', { secret_id => $cred->{encrypted_access_token} });
is($data, $token, "rpc('vault.get_secret', {secret_id: credentials.encrypted_access_token})");
$res = $ngx->request('GET', '/functions/v1/credentials', headers => \%U);
is($ngx->json($res)->[0]{platform}, 'youtube', 'the owner sees the connection');
$res = $ngx->request('POST', '/rest/v1/platform_credentials', headers => \%S,
    body => $JSON->encode({ user_id => $A, platform_id => $yt, encrypted_access_token => 'ya29.plaintext' }));
is($res->code, 400, 'a plaintext token in the table is refused, even for the service role');
is($ngx->json($res)->{code}, '23514', 'check_violation');

# --- values -----------------------------------------------------------------------------
my $odd = qq{quote " backslash \\ newline \n tab \t unicode \x{e9}\x{1F600} nul-less};
($res, $data) = rpc(\%S, 'vault.create_secret', $JSON->encode({ secret => $odd }));
my $odd_id = $data->{id};
ok(!defined $data->{name}, 'a secret without a name');
($res, $data) = rpc(\%S, 'vault.get_secret', { secret_id => $odd_id });
is($data, $odd, 'quotes, backslashes, control characters and UTF-8 round-trip');
($res, $data) = rpc(\%S, 'vault.create_secret', { new_secret => 'supabase-names', new_name => 'n2', new_description => 'd' });
is($res->code, 200, "Supabase's own parameter names work too");
is($data->{description}, 'd', 'description');

# --- what PostgREST would answer ---------------------------------------------------------
($res, $data) = rpc(\%S, 'vault.create_secret', { secret => 'again', name => "platform_token_${A}_yt" });
is($res->code, 409, 'a duplicate name: 409');
is($data->{code}, '23505', 'unique_violation');
($res, $data) = rpc(\%S, 'vault.get_secret', { secret_id => '6b0f1d6e-0000-4000-8000-000000000000' });
is($res->code, 200, 'an unknown id: 200');
is($res->content, 'null', 'null, as PostgREST answers a function returning NULL');
($res, $data) = rpc(\%S, 'vault.get_secret', { secret_id => 'not-a-uuid' });
is($res->code, 400, 'an invalid uuid: 400');
is($data->{code}, '22P02', 'invalid_text_representation');
($res, $data) = rpc(\%S, 'vault.create_secret', { name => 'no secret' });
is($res->code, 404, 'missing secret: 404');
is($data->{code}, 'PGRST202', 'PGRST202, no such function signature');
($res, $data) = rpc(\%S, 'vault.create_secret', '{"secret": ');
is($res->code, 400, 'broken JSON: 400');
is($data->{code}, 'PGRST102', 'PGRST102');
($res, $data) = rpc(\%S, 'vault.create_secret', { secret => 'x' x 70000 });
is($res->code, 400, 'a secret over 64 KiB: 400');
($res, $data) = rpc(\%S, 'vault.create_secret', undef, 'GET');
is($res->code, 405, 'GET create_secret: 405 (a secret never travels in a URL)');
is($data->{code}, 'PGRST101', 'PGRST101');

# --- only the service role -----------------------------------------------------------------
for ([anon => \%N, 401], [user => \%U, 403], [none => {}, 401]) {
    my ($who, $h, $want) = @$_;
    ($res, $data) = rpc($h, 'vault.get_secret', { secret_id => $id });
    is($res->code, $want, "get_secret as $who: $want");
    is($data->{code}, '42501', "$who: 42501 permission denied");
    unlike($res->content, qr/\Q$token\E/, "$who: no secret in the answer");
    ($res, $data) = rpc($h, 'vault.create_secret', { secret => 'from a client' });
    is($res->code, $want, "create_secret as $who: $want");
}
is($su->selectrow_array(q{SELECT count(*) FROM vault.secrets WHERE name IS NULL AND description = ''}), 1,
    'nothing was created by them');
($res, $data) = rpc(\%U, 'vault.decrypted_secrets', {});
is($res->code, 404, 'other vault.* names are not functions');

# --- a sealed value copied to another secret does not open ------------------------------------
my ($other) = $su->selectrow_array(q{INSERT INTO vault.secrets (secret) SELECT secret FROM vault.secrets WHERE id = ? RETURNING id},
    undef, $id);
($res, $data) = rpc(\%S, 'vault.get_secret', { secret_id => $other });
is($res->code, 500, 'a copied ciphertext does not open under another id');
unlike($res->content, qr/\Q$token\E/, 'and nothing of it is shown');

# --- nothing leaked ---------------------------------------------------------------------------
my $logs = join "\n", $pool->log, $ngx->access_log, $ngx->error_log, $pg->log;
like($pg->log, qr/vault\.secrets/, "PostgreSQL's log has the statements (log_statement=all)");
unlike($logs, qr/\Q$token\E/, 'the secret is in no log, PostgreSQL statement log included');
unlike($logs, qr/supabase-names|backslash/, 'nor are the other secrets');
my $dump = `@{[SV::Test::Pg::pg_bindir()]}/pg_dump -h @{[$pg->socket_dir]} -p @{[$pg->port]} -U postgres streamvibe 2>&1`;
like($dump, qr/vault/, 'pg_dump ran');
unlike($dump, qr/\Q$token\E|supabase-names/, 'and the dump holds no secret');

$ngx->stop;
$pool->stop;
done_testing;
