-- 022_content_handle_listed.sql — the public read policy of handle_content
-- tests a column of the row instead of looking the handle up.
--
-- The problem. handle_content_public_read (005) admitted a row when
--   deleted_at IS NULL AND visibility = 'public'
--   AND EXISTS (SELECT 1 FROM account_handles h
--                WHERE h.id = handle_id AND h.visibility = 'public'
--                  AND h.active_status = 'active')
-- PostgreSQL runs that EXISTS as a hashed sub-plan: every statement on
-- handle_content as anon or as a user first reads every public, active
-- handle into a hash table. With bench/run's 300 handles that is
-- invisible; with 100,000 handles (200,000 rows, 93,000 listed handles) it
-- cost 65-90 ms per statement, whatever the statement: "newest 20 on
-- youtube" (0.2 ms of work) took 71-91 ms, the REST text search on a
-- common word 79 ms, search_content on it 69-86 ms (EXPLAIN ANALYZE,
-- bench/README.md "Search under row-level security"). The planner also
-- costs the sub-plan as an index probe per row, which made it prefer a
-- bitmap of every match of a common word to a scan that stops after the
-- 20 rows asked for.
--
-- The fix. account_handles.listed (generated: visibility = 'public' AND
-- active_status = 'active') and handle_content.handle_listed, its copy on
-- each content row, which the policy tests directly:
--   deleted_at IS NULL AND visibility = 'public' AND handle_listed
-- The copy is kept by PostgreSQL itself, not by hand-written triggers: a
-- foreign key (handle_id, handle_listed) REFERENCES account_handles
-- (id, listed) ON UPDATE CASCADE. So
-- * it cannot be wrong: a row whose handle_listed differs from its
--   handle's listed violates the constraint, whoever writes it (clients
--   cannot write the column at all: no column privilege);
-- * changing a handle's visibility or status rewrites handle_listed of all
--   its content in the same statement (the cascade), so every snapshot
--   sees the handle and its content agree, as the sub-select did;
-- * concurrent writers are serialised by the constraint's row locks: an
--   insert of content locks its handle row (FOR KEY SHARE), which a
--   change of listed (a key update) waits for; under REPEATABLE READ or
--   SERIALIZABLE the cascade checks for rows committed after its snapshot
--   and fails with a serialization error (40001) rather than miss one.
--   t/152 tests the cases.
-- Who sees what is therefore exactly as before (t/150, t/420, t/431): the
-- old sub-select ran under the caller's RLS on account_handles, which
-- admits every public, active handle to everyone, so it was true exactly
-- when the handle was listed, for anon and users alike.
--
-- Costs. Changing a handle's visibility or status updates each of its
-- content rows (one row version each; updated_at is left alone, below).
-- Each content insert checks one more foreign key (an index probe on
-- account_handles). The new columns appear in select=* answers of
-- account_handles and handle_content: they say whether the handle is
-- listed, which anon can already tell (it sees only listed handles'
-- content) and owners know.

-- listed: the handle's content is shown to everyone (still only its
-- public, live rows). Adding a stored generated column rewrites
-- account_handles under an exclusive lock (one row per handle: quick).
ALTER TABLE public.account_handles
    ADD COLUMN listed boolean NOT NULL
        GENERATED ALWAYS AS (visibility = 'public' AND active_status = 'active') STORED;
COMMENT ON COLUMN public.account_handles.listed IS
    'visibility = public and active_status = active: the handle''s public, live content is visible to everyone (sql/022)';
-- The target of the foreign key below.
ALTER TABLE public.account_handles
    ADD CONSTRAINT account_handles_id_listed_key UNIQUE (id, listed);

-- A constant default adds the column without rewriting handle_content;
-- only the content of unlisted handles is then updated. The two update
-- triggers are off for that UPDATE: it edits nothing a user wrote, so it
-- must neither move updated_at nor reach the edit history.
ALTER TABLE public.handle_content ADD COLUMN handle_listed boolean NOT NULL DEFAULT true;
COMMENT ON COLUMN public.handle_content.handle_listed IS
    'Copy of account_handles.listed of the row''s handle, kept by the foreign key handle_content_handle_listed_fkey (sql/022)';
ALTER TABLE public.handle_content DISABLE TRIGGER handle_content_set_updated_at;
ALTER TABLE public.handle_content DISABLE TRIGGER handle_content_record_edits;
UPDATE public.handle_content c SET handle_listed = false
  FROM public.account_handles h
 WHERE h.id = c.handle_id AND NOT h.listed;
ALTER TABLE public.handle_content ENABLE TRIGGER handle_content_set_updated_at;
ALTER TABLE public.handle_content ENABLE TRIGGER handle_content_record_edits;
-- Set by the trigger below on every insert; no default to fall back on.
ALTER TABLE public.handle_content ALTER COLUMN handle_listed DROP DEFAULT;

ALTER TABLE public.handle_content
    ADD CONSTRAINT handle_content_handle_listed_fkey FOREIGN KEY (handle_id, handle_listed)
        REFERENCES public.account_handles (id, listed) ON UPDATE CASCADE ON DELETE RESTRICT;

-- Inserts (and a service-side move to another handle) take the handle's
-- current listed. The handle row is locked FOR KEY SHARE first, as the
-- foreign key check will lock it: if a change of the handle is in
-- progress, this waits for it and reads the committed value (reading
-- without the lock, an insert racing a visibility change would get the
-- old value and then fail the foreign key check). SECURITY DEFINER so
-- that it finds and locks the handle whatever the writer's RLS (an owner
-- may not lock its suspended handle through the update policy); it reads
-- one boolean of the handle the row names, which the writer's insert is
-- still checked against (RLS, both foreign keys), and locks no more than
-- the foreign key checks lock anyway. A missing handle gives false; the
-- foreign keys then refuse the row.
CREATE FUNCTION public.sv_handle_content_listed() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.handle_id IS DISTINCT FROM OLD.handle_id THEN
        NEW.handle_listed := coalesce((SELECT h.listed FROM public.account_handles h
                                        WHERE h.id = NEW.handle_id FOR KEY SHARE), false);
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.sv_handle_content_listed() FROM PUBLIC;
CREATE TRIGGER handle_content_listed BEFORE INSERT OR UPDATE OF handle_id ON public.handle_content
    FOR EACH ROW EXECUTE FUNCTION public.sv_handle_content_listed();

-- The cascade changes handle_listed only (with handle_id set to itself):
-- that is not an edit of the content, so updated_at stays. No other
-- update can change handle_listed without changing handle_id (the foreign
-- key would refuse it), so every other update still sets updated_at.
DROP TRIGGER handle_content_set_updated_at ON public.handle_content;
CREATE TRIGGER handle_content_set_updated_at BEFORE UPDATE ON public.handle_content
    FOR EACH ROW
    WHEN (OLD.handle_listed IS NOT DISTINCT FROM NEW.handle_listed
          OR OLD.handle_id IS DISTINCT FROM NEW.handle_id)
    EXECUTE FUNCTION public.sv_set_updated_at();

-- The same rule as before (see the top), without the sub-select.
ALTER POLICY handle_content_public_read ON public.handle_content
    USING (deleted_at IS NULL AND visibility = 'public' AND handle_listed);

ANALYZE public.account_handles;
ANALYZE public.handle_content;
