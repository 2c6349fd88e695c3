#!/usr/bin/perl
# GET /rest/v1/ : a Swagger 2.0 description, like PostgREST's, of exactly
# the exposed tables (with their column types) and functions.

use strict;
use warnings;
use Test::More;
use SV::Test::Stack;

my $ngx = SV::Test::Stack->new(workers => 1, conf => { jwt_secret => 'o' x 40 })->ngx;

my $res = $ngx->request('GET', '/rest/v1/');
is($res->code, 200, 'GET /rest/v1/ is 200') or diag $res->as_string;
like($res->header('Content-Type') // '', qr{json}, 'JSON content type');
my $doc = $ngx->json($res);
is(ref $doc, 'HASH', 'JSON object');
is($doc->{swagger}, '2.0', 'swagger 2.0');
is($doc->{basePath}, '/rest/v1', 'basePath');
ok($doc->{info}{title} && $doc->{info}{version}, 'info');

my @tables = qw(account_handles ai_content_suggestions audit_log content_edit_history handle_content
    platform_connections platform_credentials platforms quota_usage_history subscription_settings
    subscription_tiers);
is_deeply([sort keys %{ $doc->{definitions} }], \@tables, 'definitions: exactly the exposed tables');
for my $t (@tables) {
    ok($doc->{paths}{"/$t"}{get}, "path /$t has get");
}
ok(!grep({ /auth|vault|schema_migrations/ } keys %{ $doc->{paths} }),
    'nothing private in paths');

my $hc = $doc->{definitions}{handle_content}{properties};
is($hc->{id}{type}, 'string', 'uuid is a string');
is($hc->{id}{format}, 'uuid', 'with format uuid');
like($hc->{id}{description} // '', qr/Primary Key/, 'primary key noted');
is($hc->{view_count}{type}, 'integer', 'bigint is an integer');
is($hc->{tags}{type}, 'array', 'text[] is an array');
is($hc->{tags}{items}{type}, 'string', 'of strings');
is($hc->{published_at}{format}, 'timestamp with time zone', 'timestamptz format');
ok(grep({ $_ eq 'platform_content_id' } @{ $doc->{definitions}{handle_content}{required} }), 'required columns');
ok(!grep({ $_ eq 'id' } @{ $doc->{definitions}{handle_content}{required} }), 'defaulted columns are not required');
ok(!exists $doc->{definitions}{platform_connections}{properties}{encrypted_access_token}, 'no secrets in the view');

for my $fn (qw(check_quota quota_status search_content)) {
    ok($doc->{paths}{"/rpc/$fn"}{post}, "rpc $fn described");
}
my ($body) = grep { $_->{in} eq 'body' } @{ $doc->{paths}{'/rpc/search_content'}{post}{parameters} };
is_deeply([sort keys %{ $body->{schema}{properties} }], [qw(config max_results query)], 'search_content arguments');
is_deeply($body->{schema}{required}, ['query'], 'only query is required');
ok(!$doc->{paths}{'/rpc/sv_quota_spend'}, 'internal functions are not listed');
ok($doc->{paths}{'/handle_content'}{delete}{summary} =~ /soft/i, 'content delete documented as soft delete');

done_testing;
