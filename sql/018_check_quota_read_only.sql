-- 018_check_quota_read_only.sql — check_quota answers in a read-only
-- transaction too.
--
-- GET and HEAD on /rest/v1/rpc/<fn> now run read-only, as in PostgREST,
-- and check_quota always ran an UPDATE (the lazy monthly reset, even when
-- none was due), so `supabase.rpc('check_quota', args, { get: true })`
-- failed with 405. It now resets only when the transaction may write
-- (POST, as before); otherwise it answers from the effective usage (0 for
-- a period that is over but not yet reset), as quota_status does. Same
-- signature, privileges and answers.
CREATE OR REPLACE FUNCTION public.check_quota(_user_id uuid, _quota_type text, _amount integer DEFAULT 1)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    qt public.quota_type := public.sv_quota_parse(_quota_type);
    s public.subscription_settings%ROWTYPE;
    due boolean;
BEGIN
    IF NOT public.sv_caller_is_service() AND _user_id IS DISTINCT FROM auth.uid() THEN
        RAISE EXCEPTION 'permission denied: you can only check your own quota'
            USING ERRCODE = '42501';
    END IF;
    IF _amount IS NULL OR _amount <= 0 THEN
        RAISE EXCEPTION 'quota amount must be a positive integer, got %', _amount USING ERRCODE = '22023';
    END IF;

    IF pg_catalog.current_setting('transaction_read_only') = 'off' THEN
        PERFORM public.sv_quota_reset_if_due(_user_id);
    END IF;
    SELECT * INTO s FROM public.subscription_settings WHERE user_id = _user_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    due := s.resets_at <= pg_catalog.now();
    RETURN CASE qt
             WHEN 'syncs' THEN CASE WHEN due THEN 0 ELSE s.current_syncs_count END + _amount
                               <= s.max_syncs_per_month
             WHEN 'ai' THEN CASE WHEN due THEN 0 ELSE s.current_ai_count END + _amount
                            <= s.max_ai_per_month
             WHEN 'indexing' THEN CASE WHEN due THEN 0 ELSE s.current_indexing_count END + _amount
                                  <= s.max_indexing_per_month
             WHEN 'handles' THEN s.current_handles_count + _amount <= s.max_handles
           END;
END
$$;
