-- 007_v1_import.sql — second half of the V1 → V2 upgrade (see
-- 000_v1_detach.sql). A no-op unless 000 moved a V1 schema to v1_legacy.
--
-- Copies the V1 data into the V2 tables, following the Schema V2
-- document's "Breaking Changes & Migration":
--   v1_auth.users            → auth.users (ids kept; GoTrue bcrypt hashes
--                              kept as they are — see the note below)
--   platforms                → platforms (V1 ids kept: the seeded V2 rows
--                              take the V1 id of the same platform)
--   account_handles          → account_handles
--   video_content            → handle_content (video_url → content_url)
--   ai_content_suggestions   → ai_content_suggestions (if V1 had it)
--   subscription_settings    → subscription_settings (if V1 had it)
--   audit_log                → audit_log (resource_type video_content →
--                              handle_content)
--   job_queue                → audit_log job rows: completed / failed /
--                              cancelled as they were; jobs still pending or
--                              processing never ran under V2 and are
--                              recorded as 'interrupted', so every V1 job
--                              ends with exactly one row, like V2 jobs.
-- Columns are matched by name (with the renames above), cast through text
-- when the V1 type differs, and NULLs fall back to the V2 column default,
-- so V1 columns V2 does not know are ignored rather than fatal. Data that
-- violates a V2 constraint aborts the whole file with PostgreSQL's error;
-- fix it in v1_legacy and run migrate again.
--
-- Passwords: GoTrue stored bcrypt hashes; the server verifies argon2id
-- (crypto_pwhash_str). Imported users keep their old hash and need a
-- password reset unless the server also accepts bcrypt.

-- Copies rows of src into dst; returns the number of rows inserted.
--   candidates: {"dst_col": ["src_col", ...]}  source columns to try, in
--               order (default: the same name)
--   fallback:   {"dst_col": "sql"}  used when no source column exists, and
--               for NULLs when one does
--   override:   {"dst_col": "sql"}  always used (may refer to s.<col>)
--   exclude:    dst columns never copied (their default applies)
--   conflict:   '' | 'ON CONFLICT DO NOTHING' | 'update:<col>' (upsert on
--               <col>, overwriting every copied column)
-- Generated and identity columns are never copied.
CREATE FUNCTION pg_temp.sv_v1_copy(src regclass, dst regclass,
                                   candidates jsonb DEFAULT '{}', fallback jsonb DEFAULT '{}',
                                   override jsonb DEFAULT '{}', exclude text[] DEFAULT '{}',
                                   src_where text DEFAULT NULL, conflict text DEFAULT '')
RETURNS bigint
LANGUAGE plpgsql
AS $fn$
DECLARE
    d record;
    cand text;
    srctype oid;
    expr text;
    cols text[] := '{}';
    exprs text[] := '{}';
    sets text[] := '{}';
    conflict_sql text := conflict;
    n bigint;
BEGIN
    FOR d IN
        SELECT a.attname::text AS name, a.atttypid, pg_catalog.format_type(a.atttypid, a.atttypmod) AS typ,
               pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) AS def
          FROM pg_catalog.pg_attribute a
          LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
         WHERE a.attrelid = dst AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attgenerated = '' AND a.attidentity = ''
         ORDER BY a.attnum
    LOOP
        CONTINUE WHEN d.name = ANY (exclude);
        expr := NULL;
        IF override ? d.name THEN
            expr := override ->> d.name;
        ELSE
            FOR cand IN SELECT jsonb_array_elements_text(coalesce(candidates -> d.name, jsonb_build_array(d.name)))
            LOOP
                SELECT a.atttypid INTO srctype
                  FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = src AND a.attname = cand AND a.attnum > 0 AND NOT a.attisdropped;
                IF FOUND THEN
                    expr := CASE WHEN srctype = d.atttypid THEN format('s.%I', cand)
                                 ELSE format('s.%I::text::%s', cand, d.typ) END;
                    EXIT;
                END IF;
            END LOOP;
            IF fallback ? d.name THEN
                expr := CASE WHEN expr IS NULL THEN fallback ->> d.name
                             ELSE format('coalesce(%s, %s)', expr, fallback ->> d.name) END;
            END IF;
        END IF;
        CONTINUE WHEN expr IS NULL;
        IF d.def IS NOT NULL THEN
            expr := format('coalesce(%s, %s)', expr, d.def);
        END IF;
        cols := cols || quote_ident(d.name);
        exprs := exprs || expr;
        sets := sets || format('%I = EXCLUDED.%I', d.name, d.name);
    END LOOP;

    IF conflict LIKE 'update:%' THEN
        conflict_sql := format('ON CONFLICT (%I) DO UPDATE SET %s', substr(conflict, 8),
                               array_to_string(sets, ', '));
    END IF;
    EXECUTE format('INSERT INTO %s (%s) SELECT %s FROM %s s %s %s',
                   dst, array_to_string(cols, ', '), array_to_string(exprs, ', '), src,
                   CASE WHEN src_where IS NULL THEN '' ELSE 'WHERE ' || src_where END,
                   conflict_sql);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$fn$;

CREATE FUNCTION pg_temp.sv_v1_has(rel text, col text) RETURNS boolean
LANGUAGE sql STABLE
AS $fn$
    SELECT to_regclass(rel) IS NOT NULL
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = to_regclass(rel) AND a.attname = col
                      AND a.attnum > 0 AND NOT a.attisdropped)
$fn$;

DO $import$
DECLARE
    n bigint;
    summary text := '';
    platform_name_sql constant text := 'regexp_replace(lower(btrim(%s)), ''[^a-z0-9_]+'', ''_'', ''g'')';
BEGIN
    IF to_regnamespace('v1_legacy') IS NULL THEN
        RETURN;                                 -- not an upgrade from V1
    END IF;

    -- Users. Phone-only GoTrue users have no email; V2 requires one, so
    -- they get an unroutable placeholder (RFC 2606 .invalid) and keep
    -- their id, content and history.
    IF to_regclass('v1_auth.users') IS NOT NULL THEN
        n := pg_temp.sv_v1_copy('v1_auth.users', 'auth.users',
                 fallback => jsonb_build_object('email', 's.id::text || ''@no-email.invalid'''),
                 override => jsonb_build_object('role', '''authenticated''::text'));
        summary := summary || format(' users=%s', n);
    END IF;

    -- Platforms: the seeded V2 rows take the V1 ids first, so V1
    -- references (handles, content) stay valid.
    IF to_regclass('v1_legacy.platforms') IS NOT NULL THEN
        IF pg_temp.sv_v1_has('v1_legacy.platforms', 'id') AND pg_temp.sv_v1_has('v1_legacy.platforms', 'name') THEN
            EXECUTE format('UPDATE public.platforms p SET id = v.id::text::uuid FROM v1_legacy.platforms v
                             WHERE p.name = %s', format(platform_name_sql, 'v.name'));
        END IF;
        n := pg_temp.sv_v1_copy('v1_legacy.platforms', 'public.platforms',
                 candidates => '{"display_name": ["display_name", "name"]}',
                 fallback => jsonb_build_object('base_url', '''''', 'display_name', 's.id::text'),
                 override => CASE WHEN pg_temp.sv_v1_has('v1_legacy.platforms', 'name')
                                  THEN jsonb_build_object('name', format(platform_name_sql, 's.name'))
                                  ELSE '{}' END,
                 conflict => 'ON CONFLICT DO NOTHING');
        summary := summary || format(' platforms=%s', n);
    END IF;

    -- Handles. The handle-count quota is recomputed below instead of being
    -- enforced per row: V1 users may own more handles than their V2 tier
    -- allows, and keeping them beats refusing the upgrade.
    IF to_regclass('v1_legacy.account_handles') IS NOT NULL THEN
        ALTER TABLE public.account_handles DISABLE TRIGGER account_handles_quota_insert;
        n := pg_temp.sv_v1_copy('v1_legacy.account_handles', 'public.account_handles',
                 candidates => '{"handle": ["handle", "handle_name", "username"]}');
        ALTER TABLE public.account_handles ENABLE TRIGGER account_handles_quota_insert;
        summary := summary || format(' handles=%s', n);
    END IF;

    -- Content. user_id/platform_id are taken from the handle by the
    -- handle_content_fill_owner trigger, so they are consistent by
    -- construction even if V1's copies had drifted.
    n := pg_temp.sv_v1_copy('v1_legacy.video_content', 'public.handle_content',
             candidates => '{"content_url": ["content_url", "video_url"],
                             "platform_content_id": ["platform_content_id", "platform_video_id", "video_id", "external_id"]}',
             fallback => jsonb_build_object('platform_content_id', 's.id::text', 'content_type', '''video'''),
             override => jsonb_build_object('user_id', 'NULL::uuid', 'platform_id', 'NULL::uuid'));
    summary := summary || format(' content=%s', n);

    IF to_regclass('v1_legacy.ai_content_suggestions') IS NOT NULL THEN
        n := pg_temp.sv_v1_copy('v1_legacy.ai_content_suggestions', 'public.ai_content_suggestions',
                 candidates => '{"content_id": ["content_id", "video_id", "video_content_id"]}',
                 override => jsonb_build_object('user_id', 'NULL::uuid'));
        summary := summary || format(' ai_suggestions=%s', n);
    END IF;

    -- Subscriptions: 001's trigger gave every imported user a free row;
    -- V1's values win. Unknown V1 tiers become 'free'.
    IF to_regclass('v1_legacy.subscription_settings') IS NOT NULL THEN
        n := pg_temp.sv_v1_copy('v1_legacy.subscription_settings', 'public.subscription_settings',
                 override => CASE WHEN pg_temp.sv_v1_has('v1_legacy.subscription_settings', 'tier')
                                  THEN jsonb_build_object('tier',
                                       'CASE WHEN s.tier::text IN (''free'', ''pro'', ''business'')
                                             THEN s.tier::text::public.subscription_tier ELSE ''free'' END')
                                  ELSE '{}' END,
                 exclude => '{current_handles_count}',
                 src_where => 's.user_id::text::uuid IN (SELECT u.id FROM auth.users u)',
                 conflict => 'update:user_id');
        summary := summary || format(' subscriptions=%s', n);
    END IF;
    UPDATE public.subscription_settings s
       SET current_handles_count = (SELECT count(*) FROM public.account_handles h WHERE h.user_id = s.user_id);

    -- V1 audit rows. Their ids may be of another type: new ids. Rows of
    -- users that no longer exist keep the event with user_id NULL.
    IF to_regclass('v1_legacy.audit_log') IS NOT NULL THEN
        n := pg_temp.sv_v1_copy('v1_legacy.audit_log', 'public.audit_log',
                 fallback => jsonb_build_object('action', '''v1_event'''),
                 override => CASE WHEN pg_temp.sv_v1_has('v1_legacy.audit_log', 'user_id')
                                  THEN jsonb_build_object('user_id',
                                       '(SELECT u.id FROM auth.users u WHERE u.id = s.user_id::text::uuid)')
                                  ELSE '{}' END,
                 exclude => '{id}');
        summary := summary || format(' audit=%s', n);
        UPDATE public.audit_log SET resource_type = 'handle_content' WHERE resource_type = 'video_content';
    END IF;

    -- The job queue, as in the V2 document's migration, plus the jobs that
    -- never finished. Job types V2 does not know stay in v1_legacy only.
    IF to_regclass('v1_legacy.job_queue') IS NOT NULL THEN
        EXECUTE $q$
            INSERT INTO public.audit_log (user_id, action, resource_type, resource_id, details,
                                          job_id, job_type, job_status, job_payload, job_result, job_error,
                                          job_started_at, job_completed_at, created_at)
            SELECT (SELECT u.id FROM auth.users u WHERE u.id = jq.user_id),
                   'job_execution', 'job_queue', jq.id,
                   jsonb_build_object('migrated_from', 'job_queue', 'v1_status', jq.status::text),
                   jq.id,
                   jt.name::public.job_type,
                   CASE WHEN jq.status::text IN ('completed', 'failed', 'cancelled')
                        THEN jq.status::text::public.job_status
                        ELSE 'interrupted' END,
                   jq.payload, jq.result,
                   CASE WHEN jq.status::text IN ('completed', 'failed', 'cancelled') THEN jq.error_message
                        ELSE coalesce(jq.error_message || '; ', '')
                             || 'not run: still ' || jq.status::text || ' when the V1 job queue was retired' END,
                   jq.started_at,
                   CASE WHEN jq.status::text IN ('completed', 'failed', 'cancelled')
                        THEN jq.completed_at
                        ELSE greatest(coalesce(jq.started_at, jq.created_at), jq.completed_at) END,
                   coalesce(jq.created_at, now())
              FROM v1_legacy.job_queue jq
              JOIN v1_legacy.supported_job_types jt ON jq.job_type_id = jt.id
             WHERE jt.name IN ('platform_sync', 'ai_enhancement', 'seo_submission', 'token_refresh')
            ON CONFLICT (job_id) DO NOTHING
        $q$;
        GET DIAGNOSTICS n = ROW_COUNT;
        summary := summary || format(' jobs=%s', n);
    END IF;

    RAISE WARNING 'V1 data imported:%; legacy schemas v1_legacy and v1_auth kept for inspection (DROP SCHEMA ... CASCADE when satisfied)',
        summary;
END
$import$;

DROP FUNCTION pg_temp.sv_v1_copy(regclass, regclass, jsonb, jsonb, jsonb, text[], text, text);
DROP FUNCTION pg_temp.sv_v1_has(text, text);
