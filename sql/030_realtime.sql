-- 030_realtime.sql — change capture for streamvibe-realtime (Supabase
-- Realtime's postgres_changes).
--
-- Tables are opted in, like Supabase's supabase_realtime publication:
--   SELECT realtime.publish('public.some_table');    -- start capturing
--   SELECT realtime.unpublish('public.some_table');  -- stop
-- audit_log (the V2 document's job tracking) and handle_content are
-- published here.
--
-- A published table gets an AFTER ROW trigger that NOTIFYs channel
-- sv_realtime with the row's identity only: schema, table, operation,
-- primary key and the time of the change. streamvibe-realtime then reads
-- the row itself, as each subscriber (its role and JWT claims, under
-- row-level security), so a change reaches only those who may SELECT it,
-- and rows far larger than NOTIFY's 8000-byte payload arrive complete.
--
-- A deleted row cannot be read back, so DELETE keeps the old row for a
-- while in realtime.change_rows (unlogged: it only bridges the moment
-- between the commit and the daemon reading it) and the notification
-- carries its id. The daemon evaluates the subscribers' filters and the
-- table's SELECT policies against that old row, as each subscriber, and
-- sends only the primary key (as Supabase does). An identity too long
-- for a notification takes the same path.

CREATE SCHEMA realtime;
REVOKE ALL ON SCHEMA realtime FROM PUBLIC;
-- The API roles call realtime.subscription_check (the daemon runs it as
-- the subscriber); authenticator reads change_rows.
GRANT USAGE ON SCHEMA realtime TO anon, authenticated, service_role, authenticator;

CREATE TABLE realtime.published (
    relid        regclass PRIMARY KEY,
    published_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON realtime.published FROM PUBLIC;
GRANT SELECT ON realtime.published TO anon, authenticated, service_role, authenticator;

CREATE UNLOGGED TABLE realtime.change_rows (
    id          bigserial PRIMARY KEY,
    schema_name text NOT NULL,
    table_name  text NOT NULL,
    op          text NOT NULL CHECK (op IN ('INSERT', 'UPDATE', 'DELETE')),
    pk          jsonb NOT NULL,
    old_pk      jsonb,
    old         jsonb,
    ts          text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX change_rows_created_at_idx ON realtime.change_rows (created_at);
REVOKE ALL ON realtime.change_rows FROM PUBLIC;
GRANT SELECT ON realtime.change_rows TO authenticator;
ALTER TABLE realtime.change_rows ENABLE ROW LEVEL SECURITY;
CREATE POLICY change_rows_daemon_read ON realtime.change_rows FOR SELECT TO authenticator USING (true);

-- The trigger. Its arguments are the primary key's column names, fixed
-- when the table is published. SECURITY DEFINER: whoever writes the row
-- (a user through the API, a job) needs no privilege on realtime.
CREATE FUNCTION realtime.capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    r      jsonb;
    o      jsonb;
    pk     jsonb := '{}';
    old_pk jsonb;
    k      text;
    ts     text := to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
    msg    text;
    ref    bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        r := to_jsonb(OLD);
    ELSE
        r := to_jsonb(NEW);
    END IF;
    FOREACH k IN ARRAY TG_ARGV LOOP
        pk := pk || jsonb_build_object(k, r -> k);
    END LOOP;
    IF TG_OP = 'UPDATE' THEN
        o := to_jsonb(OLD);
        old_pk := '{}';
        FOREACH k IN ARRAY TG_ARGV LOOP
            old_pk := old_pk || jsonb_build_object(k, o -> k);
        END LOOP;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        msg := json_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'type', TG_OP,
                                 'pk', pk, 'old_pk', old_pk, 'ts', ts)::text;
    END IF;
    -- NOTIFY refuses payloads of 8000 bytes or more.
    IF TG_OP = 'DELETE' OR octet_length(msg) > 7900 THEN
        INSERT INTO realtime.change_rows (schema_name, table_name, op, pk, old_pk, old, ts)
        VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP, pk, old_pk,
                CASE WHEN TG_OP = 'DELETE' THEN r END, ts)
        RETURNING id INTO ref;
        msg := json_build_object('ref', ref)::text;
        -- Keep the bridge small without a scheduler. SKIP LOCKED: two
        -- writers never wait on each other's clean-up.
        DELETE FROM realtime.change_rows
         WHERE id IN (SELECT id FROM realtime.change_rows
                       WHERE created_at < now() - interval '15 minutes'
                       ORDER BY created_at LIMIT 100 FOR UPDATE SKIP LOCKED);
    END IF;
    PERFORM pg_notify('sv_realtime', msg);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION realtime.capture() FROM PUBLIC;

-- Opts a table in: it needs a primary key (the daemon reads rows by it).
CREATE FUNCTION realtime.publish(tbl regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
    cols text;
BEGIN
    SELECT string_agg(quote_literal(a.attname), ', ' ORDER BY array_position(i.indkey, a.attnum))
      INTO cols
      FROM pg_index i
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
     WHERE i.indrelid = tbl AND i.indisprimary;
    IF cols IS NULL THEN
        RAISE EXCEPTION 'realtime.publish: % has no primary key', tbl;
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS sv_realtime_capture ON %s', tbl);
    EXECUTE format('CREATE TRIGGER sv_realtime_capture AFTER INSERT OR UPDATE OR DELETE ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION realtime.capture(%s)', tbl, cols);
    INSERT INTO realtime.published (relid) VALUES (tbl) ON CONFLICT DO NOTHING;
END
$$;
REVOKE ALL ON FUNCTION realtime.publish(regclass) FROM PUBLIC;

CREATE FUNCTION realtime.unpublish(tbl regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    EXECUTE format('DROP TRIGGER IF EXISTS sv_realtime_capture ON %s', tbl);
    DELETE FROM realtime.published WHERE relid = tbl;
END
$$;
REVOKE ALL ON FUNCTION realtime.unpublish(regclass) FROM PUBLIC;

-- What the daemon needs to deliver changes of the published table(s)
-- p_schema.p_table (p_table '*': every published table of the schema) to
-- the current role, checked as that role when a channel joins. Returns a
-- jsonb array, one object per table:
--   schema, table    names
--   readable         whether the role may SELECT the primary key at all
--   columns          [{name, type}] the role may SELECT, in column order
--                    (the "columns" of a postgres_changes message)
--   select           those columns as a quoted SQL list
--   pk               [{name, ident}] the primary key columns
--   vis              a boolean SQL expression over a row aliased as the
--                    table's own name: whether this role's SELECT policies
--                    let it see that row (used for DELETE, whose row can
--                    no longer be read); references auth.uid() and friends,
--                    so it is evaluated with the subscriber's claims set
-- The optional filter (column, operator, value) is checked here: the
-- column must exist and be readable, the value must cast to its type (for
-- 'in', value is an array literal). Errors are raised with a message the
-- daemon passes to the client.
CREATE FUNCTION realtime.subscription_check(p_schema text, p_table text, p_column text,
                                            p_op text, p_value text)
RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $$
DECLARE
    t       record;
    result  jsonb := '[]';
    cols    jsonb;
    sel     text;
    pk      jsonb;
    vis     text;
    typ     text;
    readable boolean;
    me      oid := (SELECT oid FROM pg_roles WHERE rolname = current_user);
BEGIN
    IF p_column IS NOT NULL AND p_table = '*' THEN
        RAISE EXCEPTION 'a filter needs a table: filters are not supported with table "*"';
    END IF;
    FOR t IN SELECT c.oid, n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity, c.relowner
               FROM realtime.published p
               JOIN pg_class c ON c.oid = p.relid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = p_schema AND (p_table = '*' OR c.relname = p_table)
              ORDER BY c.relname
    LOOP
        SELECT coalesce(jsonb_agg(jsonb_build_object('name', a.attname, 'type', ty.typname) ORDER BY a.attnum), '[]'),
               string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
          INTO cols, sel
          FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
         WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
           AND has_column_privilege(t.oid, a.attnum, 'SELECT');
        SELECT jsonb_agg(jsonb_build_object('name', a.attname, 'ident', quote_ident(a.attname))
                         ORDER BY array_position(i.indkey, a.attnum)),
               bool_and(has_column_privilege(t.oid, a.attnum, 'SELECT'))
          INTO pk, readable
          FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
         WHERE i.indrelid = t.oid AND i.indisprimary;
        IF pk IS NULL THEN
            RAISE EXCEPTION 'Error 400: Bad Request, no primary key on %.%', t.nspname, t.relname;
        END IF;

        IF p_column IS NOT NULL THEN
            SELECT format_type(a.atttypid, a.atttypmod) INTO typ
              FROM pg_attribute a
             WHERE a.attrelid = t.oid AND a.attname = p_column AND a.attnum > 0 AND NOT a.attisdropped;
            IF typ IS NULL THEN
                RAISE EXCEPTION 'invalid column for filter %', p_column;
            END IF;
            IF p_op = 'in' THEN
                typ := typ || '[]';
            END IF;
            EXECUTE format('SELECT %L::%s', p_value, typ);
            IF readable AND NOT has_column_privilege(t.oid, p_column, 'SELECT') THEN
                RAISE EXCEPTION 'permission denied for column % of table %', p_column, t.relname;
            END IF;
        END IF;

        -- Row visibility for this role: what the planner would add to a
        -- SELECT on the table, written out (pg_get_expr with an empty
        -- search path qualifies every name, so the text means the same
        -- wherever the daemon runs it).
        IF NOT readable THEN
            vis := 'false';
        ELSIF NOT t.relrowsecurity
              OR (SELECT rolbypassrls FROM pg_roles WHERE oid = me)
              OR (pg_has_role(me, t.relowner, 'USAGE') AND NOT t.relforcerowsecurity) THEN
            vis := 'true';
        ELSE
            SELECT '(' || coalesce(string_agg('(' || q || ')', ' OR ') FILTER (WHERE permissive), 'false') || ')'
                   || coalesce(' AND ' || string_agg('(' || q || ')', ' AND ') FILTER (WHERE NOT permissive), '')
              INTO vis
              FROM (SELECT pol.polpermissive AS permissive,
                           coalesce(pg_get_expr(pol.polqual, pol.polrelid),
                                    pg_get_expr(pol.polwithcheck, pol.polrelid), 'true') AS q
                      FROM pg_policy pol
                     WHERE pol.polrelid = t.oid
                       AND pol.polcmd IN ('r', '*')
                       AND (pol.polroles = '{0}'
                            OR EXISTS (SELECT 1 FROM unnest(pol.polroles) r(oid)
                                        WHERE pg_has_role(me, r.oid, 'USAGE')))) AS p;
        END IF;

        result := result || jsonb_build_array(jsonb_build_object(
            'schema', t.nspname, 'table', t.relname, 'readable', readable,
            'columns', cols, 'select', coalesce(sel, ''), 'pk', pk, 'vis', vis));
    END LOOP;
    IF jsonb_array_length(result) = 0 THEN
        RAISE EXCEPTION 'Unable to subscribe to changes with given parameters. Please check Realtime is enabled for the given connect parameters: [schema: %, table: %]',
            p_schema, p_table;
    END IF;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION realtime.subscription_check(text, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION realtime.subscription_check(text, text, text, text, text)
    TO anon, authenticated, service_role;

SELECT realtime.publish('public.audit_log');
SELECT realtime.publish('public.handle_content');
