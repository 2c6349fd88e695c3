#!/usr/bin/perl
# Upgrade from the V1 draft schema: a V1 database with data (Supabase-style
# auth schema, video_content with ON DELETE CASCADE, job_queue, V1
# audit_log) is migrated by `streamvibe-admin migrate` into the V2 schema
# with its data, and the V2 rules hold on the migrated data.
use strict;
use warnings;

use JSON::PP qw(encode_json);
use Test::More;
use SV::Test qw(sv_builddir sv_srcdir run_command);
use SV::Test::Pg;

plan skip_all => 'PostgreSQL server programs not found' unless SV::Test::Pg::available();
plan skip_all => 'DBD::Pg not installed' unless eval { require DBD::Pg; 1 };
plan skip_all => 'streamvibe-admin not built' unless -x sv_builddir() . '/streamvibe-admin';

my $pg = SV::Test::Pg->new();
$pg->start;

# The V1 draft as the V2 document describes it (video_content, job_queue,
# supported_job_types, workflow_status), on a Supabase-like database.
my $v1 = <<'SQL';
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN CREATE ROLE service_role NOLOGIN BYPASSRLS; END IF;
END $$;
CREATE SCHEMA auth;
GRANT USAGE ON SCHEMA auth TO anon, authenticated;
CREATE TABLE auth.users (
  instance_id uuid, id uuid PRIMARY KEY, aud varchar(255), role varchar(255), email varchar(255),
  encrypted_password varchar(255), email_confirmed_at timestamptz, last_sign_in_at timestamptz,
  raw_app_meta_data jsonb, raw_user_meta_data jsonb, is_super_admin boolean, phone text,
  created_at timestamptz, updated_at timestamptz);
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS
  $f$ SELECT nullif(current_setting('request.jwt.claim.sub', true), '')::uuid $f$;

CREATE TYPE public.workflow_status AS ENUM ('pending', 'processing', 'completed', 'failed', 'cancelled');
CREATE TYPE public.visibility AS ENUM ('public', 'unlisted', 'private');
CREATE TABLE public.platforms (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text UNIQUE NOT NULL,
  display_name text, base_url text, is_active boolean DEFAULT true, created_at timestamptz DEFAULT now());
CREATE TABLE public.account_handles (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid REFERENCES auth.users(id), platform_id uuid REFERENCES public.platforms(id),
  handle text NOT NULL, display_name text, follower_count integer, visibility public.visibility,
  legacy_flag boolean, created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now());
CREATE TABLE public.video_content (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  handle_id uuid REFERENCES public.account_handles(id) ON DELETE CASCADE,
  platform_video_id text, title text, description text, tags text[], video_url text,
  thumbnail_url text, published_at timestamptz, view_count integer,
  created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now());
CREATE TABLE public.supported_job_types (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text UNIQUE);
CREATE TABLE public.job_queue (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), user_id uuid,
  job_type_id uuid REFERENCES public.supported_job_types(id), status public.workflow_status,
  payload jsonb, result jsonb, error_message text, started_at timestamptz, completed_at timestamptz,
  created_at timestamptz DEFAULT now());
CREATE TABLE public.audit_log (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), user_id uuid, action text,
  resource_type text, resource_id uuid, details jsonb, ip_address inet, created_at timestamptz DEFAULT now());
CREATE TABLE public.subscription_settings (user_id uuid PRIMARY KEY REFERENCES auth.users(id),
  tier text, current_syncs_count integer, resets_at timestamptz);
CREATE FUNCTION public.v1_touch() RETURNS trigger LANGUAGE plpgsql AS
  $f$ BEGIN NEW.updated_at := now(); RETURN NEW; END $f$;
CREATE TRIGGER v1_touch BEFORE UPDATE ON public.video_content FOR EACH ROW EXECUTE FUNCTION public.v1_touch();
ALTER TABLE public.video_content ENABLE ROW LEVEL SECURITY;
CREATE POLICY v1_read ON public.video_content FOR SELECT USING (true);
GRANT ALL ON ALL TABLES IN SCHEMA public TO anon, authenticated;

-- Data.
INSERT INTO auth.users (id, aud, role, email, encrypted_password, raw_app_meta_data, raw_user_meta_data, created_at) VALUES
  ('11111111-1111-1111-1111-111111111111', 'authenticated', 'authenticated', 'alice@example.com',
   '$2a$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234', '{"provider":"email"}', '{"name":"Alice"}', '2025-01-01'),
  ('22222222-2222-2222-2222-222222222222', 'authenticated', '', NULL, NULL, NULL, NULL, '2025-02-01');
INSERT INTO public.platforms (id, name, display_name, base_url) VALUES
  ('aaaaaaaa-0000-0000-0000-000000000001', 'YouTube', 'YouTube', 'https://youtube.com'),
  ('aaaaaaaa-0000-0000-0000-000000000002', 'vimeo', 'Vimeo', 'https://vimeo.com');
INSERT INTO public.account_handles (id, user_id, platform_id, handle, visibility) VALUES
  ('bbbbbbbb-0000-0000-0000-000000000001', '11111111-1111-1111-1111-111111111111', 'aaaaaaaa-0000-0000-0000-000000000001', 'AliceCooks', 'public'),
  ('bbbbbbbb-0000-0000-0000-000000000002', '11111111-1111-1111-1111-111111111111', 'aaaaaaaa-0000-0000-0000-000000000002', 'alice_v', NULL),
  ('bbbbbbbb-0000-0000-0000-000000000003', '11111111-1111-1111-1111-111111111111', 'aaaaaaaa-0000-0000-0000-000000000001', 'alice2', 'private'),
  ('bbbbbbbb-0000-0000-0000-000000000004', '11111111-1111-1111-1111-111111111111', 'aaaaaaaa-0000-0000-0000-000000000001', 'alice3', 'public'),
  ('bbbbbbbb-0000-0000-0000-000000000005', '22222222-2222-2222-2222-222222222222', 'aaaaaaaa-0000-0000-0000-000000000001', 'phoneuser', 'public');
INSERT INTO public.video_content (id, handle_id, platform_video_id, title, description, tags, video_url, view_count) VALUES
  ('cccccccc-0000-0000-0000-000000000001', 'bbbbbbbb-0000-0000-0000-000000000001', 'yt1', 'Cooking recipe', 'pasta', '{cooking}', 'https://youtu.be/yt1', 10),
  ('cccccccc-0000-0000-0000-000000000002', 'bbbbbbbb-0000-0000-0000-000000000001', 'yt2', 'Second', NULL, NULL, 'https://youtu.be/yt2', NULL),
  ('cccccccc-0000-0000-0000-000000000003', 'bbbbbbbb-0000-0000-0000-000000000005', NULL, 'Phone video', NULL, NULL, NULL, 1);
INSERT INTO public.supported_job_types (id, name) VALUES
  ('dddddddd-0000-0000-0000-000000000001', 'platform_sync'),
  ('dddddddd-0000-0000-0000-000000000002', 'ai_enhancement'),
  ('dddddddd-0000-0000-0000-000000000003', 'legacy_thumbnailer');
INSERT INTO public.job_queue (id, user_id, job_type_id, status, payload, result, error_message, started_at, completed_at) VALUES
  ('eeeeeeee-0000-0000-0000-000000000001', '11111111-1111-1111-1111-111111111111', 'dddddddd-0000-0000-0000-000000000001',
   'completed', '{"handleId":"bbbbbbbb-0000-0000-0000-000000000001"}', '{"synced":2}', NULL, '2025-03-01 10:00', '2025-03-01 10:00:02'),
  ('eeeeeeee-0000-0000-0000-000000000002', '11111111-1111-1111-1111-111111111111', 'dddddddd-0000-0000-0000-000000000002',
   'failed', '{}', NULL, 'model timeout', '2025-03-02 10:00', '2025-03-02 10:01'),
  ('eeeeeeee-0000-0000-0000-000000000003', '11111111-1111-1111-1111-111111111111', 'dddddddd-0000-0000-0000-000000000001',
   'pending', '{}', NULL, NULL, NULL, NULL),
  ('eeeeeeee-0000-0000-0000-000000000004', '11111111-1111-1111-1111-111111111111', 'dddddddd-0000-0000-0000-000000000003',
   'completed', '{}', NULL, NULL, NULL, NULL);
INSERT INTO public.audit_log (user_id, action, resource_type, resource_id) VALUES
  ('11111111-1111-1111-1111-111111111111', 'update', 'video_content', 'cccccccc-0000-0000-0000-000000000001'),
  ('99999999-9999-9999-9999-999999999999', 'login', 'user', NULL);
INSERT INTO public.subscription_settings (user_id, tier, current_syncs_count, resets_at) VALUES
  ('11111111-1111-1111-1111-111111111111', 'pro', 7, '2099-01-01');
SQL
$pg->psql($v1);

my ($rc, $out) = $pg->migrate;
is($rc, 0, 'migrate upgrades the V1 database') or diag $out;
like($out, qr/V1 data imported: users=2 platforms=1 handles=5 content=3 subscriptions=1 audit=2 jobs=3/,
    'the import reports what it copied');

my $su = $pg->dbh(user => 'postgres');
sub one { scalar $su->selectrow_array(@_) }

# --- V1 objects set aside ------------------------------------------------------
is(one(q{SELECT to_regclass('public.video_content') IS NULL AND to_regclass('public.job_queue') IS NULL}), 1,
    'V1 tables are gone from public');
is(one(q{SELECT count(*) FROM v1_legacy.video_content}), 3, 'and kept, with their data, in v1_legacy');
is(one(q{SELECT count(*) FROM v1_auth.users}), 2, 'the V1 auth schema is kept as v1_auth');
is(one(q{SELECT has_schema_privilege('anon', 'v1_legacy', 'USAGE') OR has_schema_privilege('authenticated', 'v1_auth', 'USAGE')}),
    0, 'the legacy schemas are closed to the API roles');

# --- data carried over ------------------------------------------------------------
is(one(q{SELECT email FROM auth.users WHERE id = '11111111-1111-1111-1111-111111111111'}), 'alice@example.com',
    'users keep their id and email');
is(one(q{SELECT raw_user_meta_data->>'name' FROM auth.users WHERE id = '11111111-1111-1111-1111-111111111111'}), 'Alice',
    'and their metadata');
like(one(q{SELECT encrypted_password FROM auth.users WHERE id = '11111111-1111-1111-1111-111111111111'}), qr/^\$2a\$/,
    'and their (bcrypt) password hash');
is(one(q{SELECT email FROM auth.users WHERE id = '22222222-2222-2222-2222-222222222222'}),
    '22222222-2222-2222-2222-222222222222@no-email.invalid', 'an email-less user gets a placeholder address');
is(one(q{SELECT id FROM platforms WHERE name = 'youtube'}), 'aaaaaaaa-0000-0000-0000-000000000001',
    'the seeded youtube platform took the V1 id');
is(one(q{SELECT count(*) FROM platforms}), 4, 'the unknown V1 platform (vimeo) is added');
is(one(q{SELECT handle FROM account_handles WHERE id = 'bbbbbbbb-0000-0000-0000-000000000001'}), 'alicecooks',
    'handles keep their id (handle normalised)');
is(one(q{SELECT visibility FROM account_handles WHERE id = 'bbbbbbbb-0000-0000-0000-000000000002'}), 'public',
    'a NULL V1 value falls back to the V2 default');
is(one(q{SELECT content_url FROM handle_content WHERE id = 'cccccccc-0000-0000-0000-000000000001'}),
    'https://youtu.be/yt1', 'video_url became content_url');
is(one(q{SELECT platform_content_id FROM handle_content WHERE id = 'cccccccc-0000-0000-0000-000000000001'}), 'yt1',
    'platform_video_id became platform_content_id');
is(one(q{SELECT platform_content_id FROM handle_content WHERE id = 'cccccccc-0000-0000-0000-000000000003'}),
    'cccccccc-0000-0000-0000-000000000003', 'a missing platform id falls back to the row id');
is(one(q{SELECT user_id FROM handle_content WHERE id = 'cccccccc-0000-0000-0000-000000000001'}),
    '11111111-1111-1111-1111-111111111111', "content gets its handle's user");
is(one(q{SELECT count(*) FROM handle_content WHERE search_vector @@ to_tsquery('english', 'cooking & recipe')}), 1,
    'migrated content is searchable');
is(one(q{SELECT tier || '/' || max_handles || '/' || current_syncs_count || '/' || current_handles_count
    FROM subscription_settings WHERE user_id = '11111111-1111-1111-1111-111111111111'}),
    'pro/10/7/4', 'the V1 subscription is kept, with V2 tier limits and the handle count');
is(one(q{SELECT tier || '/' || current_handles_count FROM subscription_settings
    WHERE user_id = '22222222-2222-2222-2222-222222222222'}), 'free/1', 'users without one start free');

# --- jobs and audit -------------------------------------------------------------------
my $jobs = $su->selectall_hashref(q{SELECT job_id, job_type, job_status, job_error, job_duration_ms, job_result
    FROM audit_log WHERE job_id IS NOT NULL}, 'job_id');
is(scalar keys %$jobs, 3, 'the three jobs of known types are in audit_log');
is($jobs->{'eeeeeeee-0000-0000-0000-000000000001'}{job_status}, 'completed', 'completed job');
is($jobs->{'eeeeeeee-0000-0000-0000-000000000001'}{job_duration_ms}, 2000, 'with its duration');
is($jobs->{'eeeeeeee-0000-0000-0000-000000000002'}{job_error}, 'model timeout', 'failed job with its error');
is($jobs->{'eeeeeeee-0000-0000-0000-000000000003'}{job_status}, 'interrupted', 'a pending job is recorded as interrupted');
like($jobs->{'eeeeeeee-0000-0000-0000-000000000003'}{job_error}, qr/not run/, 'saying it never ran');
is(one(q{SELECT count(*) FROM audit_log WHERE resource_type = 'video_content'}), 0, 'no audit row names video_content');
is(one(q{SELECT count(*) FROM audit_log WHERE resource_type = 'handle_content'}), 1, 'it says handle_content');
is(one(q{SELECT count(*) FROM audit_log WHERE action = 'login' AND user_id IS NULL}), 1,
    'an audit row of a vanished user is kept without a user');

# --- V2 rules on migrated data ---------------------------------------------------------
eval { $su->do(q{DELETE FROM account_handles WHERE id = 'bbbbbbbb-0000-0000-0000-000000000001'}) };
is($su->state, '23503', 'a migrated handle with content cannot be deleted any more (V1 cascaded)');
is(one(q{SELECT count(*) FROM handle_content}), 3, 'content intact');

my $api = $pg->dbh(user => 'authenticator');
$api->begin_work;
$api->do('SET LOCAL ROLE anon');
my $anon = $api->selectcol_arrayref('SELECT id FROM handle_content ORDER BY id');
$api->rollback;
is_deeply($anon, ['cccccccc-0000-0000-0000-000000000001', 'cccccccc-0000-0000-0000-000000000002',
    'cccccccc-0000-0000-0000-000000000003'], 'RLS applies to migrated content');

# --- and the result is a normal V2 database ------------------------------------------
($rc, $out) = $pg->migrate;
is($rc, 0, 're-running migrate after the upgrade succeeds');
like($out, qr/nothing to apply/, 'and has nothing to do');
($rc, $out) = $pg->migrate('--status');
$out =~ s/^schedule  reset-monthly-quotas  .*\n//m;
unlike($out, qr/^(?!applied)/m, 'status: everything applied');

# --- bad V1 data: the upgrade stops at the import, keeps V1 intact, resumes --------
{
    $pg->psql('CREATE DATABASE v1bad', dbname => 'postgres');
    $pg->psql($v1, dbname => 'v1bad');
    # Two handles that differ only in case collide once V2 normalises them.
    $pg->psql(q{INSERT INTO account_handles (user_id, platform_id, handle) VALUES
        ('11111111-1111-1111-1111-111111111111', 'aaaaaaaa-0000-0000-0000-000000000001', 'ALICECOOKS')},
        dbname => 'v1bad');
    my @cmd = (sv_builddir() . '/streamvibe-admin', 'migrate', '--database', $pg->conninfo(dbname => 'v1bad'),
        '--sql-dir', sv_srcdir() . '/sql');
    my ($brc, $bout, $berr) = run_command(\@cmd, timeout => 300);
    isnt($brc, 0, 'an upgrade whose V1 data breaks a V2 rule fails');
    like($berr, qr/007_v1_import\.sql: ERROR 23505/, 'naming the import file and the violation');
    is($pg->psql(q{SELECT count(*) FROM public.handle_content}, dbname => 'v1bad'), 0,
        'nothing of the import is left behind');
    is($pg->psql(q{SELECT count(*) FROM v1_legacy.account_handles}, dbname => 'v1bad'), 6, 'V1 data intact');

    $pg->psql(q{UPDATE v1_legacy.account_handles SET handle = 'alicecooks_2' WHERE handle = 'ALICECOOKS'},
        dbname => 'v1bad');
    ($brc, $bout, $berr) = run_command(\@cmd, timeout => 300);
    is($brc, 0, 'after fixing the V1 data, migrate resumes and finishes') or diag $berr;
    like($bout, qr/^applied  007_v1_import\.sql/m, 'applying the import');
    unlike($bout, qr/^applied  00[0-6]/m, 'and nothing that was already applied');
    is($pg->psql(q{SELECT count(*) FROM public.handle_content}, dbname => 'v1bad'), 3, 'content imported');
}

done_testing();
