-- 045_quota_handles_by_trigger.sql — increment_quota and decrement_quota
-- leave the 'handles' counter to the triggers on account_handles (003),
-- which count a handle when it is inserted and uncount it when it is
-- deleted. The V2 document's example calls decrement_quota(uid,
-- 'handles', 1) after deleting a handle; that took the handle off a
-- second time (0 used with a handle left, so one more than max_handles
-- could be linked). For 'handles' both functions now change nothing:
--   * increment_quota answers whether _amount more handles would fit (the
--     INSERT's trigger is what spends, and refuses over the limit);
--   * decrement_quota answers whether the user has a subscription row,
--     its answer for the other types.
-- The other quota types behave exactly as before. Same signatures, so
-- the grants (service_role only) stay.

CREATE OR REPLACE FUNCTION public.increment_quota(_user_id uuid, _quota_type text, _amount integer DEFAULT 1,
                                                  _reason text DEFAULT NULL, _job_id uuid DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    qt public.quota_type := public.sv_quota_parse(_quota_type);
BEGIN
    IF qt <> 'handles' THEN
        RETURN public.sv_quota_spend(_user_id, qt, _amount, _reason, _job_id);
    END IF;
    IF _amount IS NULL OR _amount <= 0 THEN
        RAISE EXCEPTION 'quota amount must be a positive integer, got %', _amount USING ERRCODE = '22023';
    END IF;
    RETURN coalesce((SELECT s.current_handles_count + _amount <= s.max_handles
                       FROM public.subscription_settings s
                      WHERE s.user_id = _user_id), false);
END
$$;

CREATE OR REPLACE FUNCTION public.decrement_quota(_user_id uuid, _quota_type text, _amount integer DEFAULT 1,
                                                  _reason text DEFAULT NULL, _job_id uuid DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    qt public.quota_type := public.sv_quota_parse(_quota_type);
BEGIN
    IF qt <> 'handles' THEN
        RETURN public.sv_quota_refund(_user_id, qt, _amount, _reason, _job_id);
    END IF;
    IF _amount IS NULL OR _amount <= 0 THEN
        RAISE EXCEPTION 'quota amount must be a positive integer, got %', _amount USING ERRCODE = '22023';
    END IF;
    RETURN EXISTS (SELECT 1 FROM public.subscription_settings s WHERE s.user_id = _user_id);
END
$$;
