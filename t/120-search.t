#!/usr/bin/perl
# Full-text search on handle_content.search_vector: weights A (title) >
# B (description) > C (tags), the generated column follows edits, the GIN
# index is usable, and search through RLS shows only public live content.
use strict;
use warnings;

use JSON::PP qw(encode_json);
use Test::More;
use SV::Test::Stack;

plan skip_all => 'DBD::Pg not installed' unless eval { require DBD::Pg; 1 };
my $s = SV::Test::Stack->new(pool => 0);
my ($pg, $su) = ($s->pg, $s->su);

my $hid = $s->handle($s->user('chef@example.com'), 'chef');
sub content { my ($key, %c) = @_; $s->content($hid, $key, tags => [], %c) }

# Each matching row mentions both words exactly once, in one field only.
content('tags_only',  title => 'Weekend vlog', description => 'We went hiking.',
        tags => ['cooking', 'recipe', 'family']);
content('desc_only',  title => 'Sunday dinner', description => 'My grandmother\'s cooking recipe, step by step.',
        tags => ['food']);
content('title',      title => 'Cooking the perfect recipe', description => 'A short film about bread.',
        tags => ['bread']);
content('no_match',   title => 'Cooking rice', description => 'Just rice.', tags => ['rice']);
content('deleted',    title => 'Cooking recipe (old)', description => '', deleted_at => '2025-01-01');

my $q = q{SELECT platform_content_id,
                 ts_rank(search_vector, to_tsquery('english', 'cooking & recipe')) AS rank
            FROM handle_content
           WHERE search_vector @@ to_tsquery('english', 'cooking & recipe')
             AND deleted_at IS NULL
           ORDER BY ts_rank(search_vector, to_tsquery('english', 'cooking & recipe')) DESC};

my $rows = $su->selectall_arrayref($q, { Slice => {} });
is_deeply([map { $_->{platform_content_id} } @$rows], ['title', 'desc_only', 'tags_only'],
    'title match ranks above description-only above tags-only; non-matching rows excluded');
ok($rows->[0]{rank} > $rows->[1]{rank} && $rows->[1]{rank} > $rows->[2]{rank}, 'ranks strictly decrease');

my ($sv) = $su->selectrow_array(
    q{SELECT search_vector::text FROM handle_content WHERE platform_content_id = 'tags_only'});
like($sv, qr/'vlog':\d+A/, 'title lexemes weigh A');
like($sv, qr/'hike':\d+B/, 'description lexemes weigh B');
like($sv, qr/'cook':\d+C/, 'tag lexemes weigh C');

# Generated column follows edits.
$su->do(q{UPDATE handle_content SET title = 'Cooking recipe deluxe' WHERE platform_content_id = 'no_match'});
$rows = $su->selectall_arrayref($q, { Slice => {} });
is($rows->[0]{platform_content_id}, 'no_match', 'after a title edit the row matches and ranks first');
$su->do(q{UPDATE handle_content SET tags = '{}', title = 'Weekend vlog' WHERE platform_content_id = 'tags_only'});
$rows = $su->selectall_arrayref($q, { Slice => {} });
ok(!grep({ $_->{platform_content_id} eq 'tags_only' } @$rows), 'after removing the tags it no longer matches');

# The GIN index serves the @@ query.
$su->begin_work;
$su->do('SET LOCAL enable_seqscan = off');
my $plan = join "\n", map { $_->[0] } @{ $su->selectall_arrayref(
    q{EXPLAIN SELECT id FROM handle_content WHERE search_vector @@ to_tsquery('english', 'cooking & recipe')}) };
$su->rollback;
like($plan, qr/idx_handle_content_search/, 'the query can use idx_handle_content_search');

# The composite indexes from the V2 document exist with their predicates.
my %idx = map { $_->[0] => $_->[1] } @{ $su->selectall_arrayref(
    q{SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'}) };
like($idx{idx_handle_content_user_platform_published} // '',
    qr/\(user_id, platform_id, published_at DESC\) WHERE \(deleted_at IS NULL\)/, 'user/platform/published index');
like($idx{idx_handle_content_handle_published} // '',
    qr/\(handle_id, published_at DESC\) WHERE \(deleted_at IS NULL\)/, 'handle/published index');
like($idx{idx_ai_suggestions_content_applied} // '',
    qr/\(content_id, fully_applied, created_at DESC\)/, 'ai suggestions index');
like($idx{idx_audit_log_job_type} // '',
    qr/\(job_type, job_status\) WHERE \(job_type IS NOT NULL\)/, 'audit_log job index');

# Searching as anon goes through RLS: soft-deleted rows never show, even
# without the deleted_at filter in the query.
my $api = $pg->dbh(user => 'authenticator');
$api->begin_work;
$api->do('SET LOCAL ROLE anon');
my $anon = $api->selectcol_arrayref(q{SELECT platform_content_id FROM handle_content
    WHERE search_vector @@ websearch_to_tsquery('english', 'cooking recipe') ORDER BY 1});
$api->rollback;
is_deeply($anon, ['desc_only', 'no_match', 'title'], 'anon search sees only live public content');

done_testing();
