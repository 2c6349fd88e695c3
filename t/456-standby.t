#!/usr/bin/perl
# database_url may point at a hot standby for a read-only deployment.
# A standby refuses LISTEN, so schema changes are not announced there:
# the worker says so once in the log and serves reads, instead of taking
# the refusal for a dead database and answering 503.

use strict;
use warnings;
use Test::More;
use SV::Test;
use SV::Test::Pg;
use SV::Test::Pool;
use SV::Test::Stack;

plan skip_all => 'PostgreSQL server not installed' unless SV::Test::Pg::available();
plan skip_all => 'pg_basebackup not installed' unless -x SV::Test::Pg::pg_bindir() . '/pg_basebackup';

my $pg = SV::Test::Stack->new(pool => 0)->pg;

my $standby = SV::Test::Pg->new(name => 'standby');
my ($rc, $out) = $standby->init_standby_from($pg);
is($rc, 0, 'pg_basebackup makes a standby') or diag $out;
$standby->start;
like($standby->psql('SELECT pg_is_in_recovery()'), qr/^t/, 'it is in recovery');

my $pool = SV::Test::Pool->new(pg => $pg, workers => 1,
    conf => { database_url => $standby->conninfo(user => 'authenticator'), jwt_secret => 's' x 40 });
$pool->start;
my $get = sub { ($pool->fcgi($_[0], timeout => 20))[0] };
like($get->('/healthz'), qr/^Status: 200/, '/healthz is 200 on the standby');
my $rows = $get->('/rest/v1/platforms?select=name&limit=1');
like($rows, qr/^Status: 200/, 'and REST reads are served');
like($rows, qr/"name"/, 'with rows');
my $log = $pool->log;
my @refusals = $log =~ /event=db_listen/g;
is(scalar @refusals, 1, 'the refused LISTEN is logged once');
unlike($log, qr/event=database_unavailable/, 'and not taken for an unavailable database');

$pool->stop;
$standby->stop;
done_testing;
