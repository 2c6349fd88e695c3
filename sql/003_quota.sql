-- 003_quota.sql — subscription tiers, per-user quota counters, quota usage
-- history and the quota functions.
--
-- Concurrency: a spend is ONE UPDATE whose WHERE clause contains the limit
-- test, so concurrent spends serialise on the row lock and each re-checks
-- the limit against the committed counter (READ COMMITTED re-evaluates the
-- WHERE on the newest row version): 50 simultaneous spends against a limit
-- of 10 succeed exactly 10 times.
--
-- Monthly reset is lazy: whichever statement first touches a row whose
-- resets_at has passed zeroes the monthly counters and moves resets_at to
-- the next UTC month boundary, in the same statement. No scheduler needed.
-- The 'handles' counter is not monthly; it is the number of handles the
-- user has and is maintained by triggers on account_handles (below), so
-- API code must NOT spend/refund 'handles' itself.

CREATE TABLE public.subscription_tiers (
    tier                    public.subscription_tier PRIMARY KEY,
    display_name            text NOT NULL,
    max_handles             integer NOT NULL CHECK (max_handles >= 0),
    max_syncs_per_month     integer NOT NULL CHECK (max_syncs_per_month >= 0),
    max_ai_per_month        integer NOT NULL CHECK (max_ai_per_month >= 0),
    max_indexing_per_month  integer NOT NULL CHECK (max_indexing_per_month >= 0),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER subscription_tiers_set_updated_at BEFORE UPDATE ON public.subscription_tiers
    FOR EACH ROW EXECUTE FUNCTION public.sv_set_updated_at();

INSERT INTO public.subscription_tiers
    (tier, display_name, max_handles, max_syncs_per_month, max_ai_per_month, max_indexing_per_month)
VALUES
    ('free',     'Free',     3,   30,   20,   10),
    ('pro',      'Pro',      10,  300,  500,  200),
    ('business', 'Business', 50,  3000, 5000, 2000)
ON CONFLICT (tier) DO NOTHING;

-- First instant of the UTC calendar month after ts.
CREATE FUNCTION public.sv_next_quota_reset(ts timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT (pg_catalog.date_trunc('month', ts AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
$$;

CREATE TABLE public.subscription_settings (
    user_id                 uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    tier                    public.subscription_tier NOT NULL DEFAULT 'free'
                                REFERENCES public.subscription_tiers (tier),
    -- Limits are copied from the tier (trigger below) so an operator can
    -- grant one user a custom limit without inventing a tier.
    max_handles             integer NOT NULL CHECK (max_handles >= 0),
    max_syncs_per_month     integer NOT NULL CHECK (max_syncs_per_month >= 0),
    max_ai_per_month        integer NOT NULL CHECK (max_ai_per_month >= 0),
    max_indexing_per_month  integer NOT NULL CHECK (max_indexing_per_month >= 0),
    current_syncs_count     integer NOT NULL DEFAULT 0 CHECK (current_syncs_count >= 0),
    current_ai_count        integer NOT NULL DEFAULT 0 CHECK (current_ai_count >= 0),
    current_indexing_count  integer NOT NULL DEFAULT 0 CHECK (current_indexing_count >= 0),
    current_handles_count   integer NOT NULL DEFAULT 0 CHECK (current_handles_count >= 0),
    resets_at               timestamptz NOT NULL DEFAULT public.sv_next_quota_reset(now()),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscription_settings_tier_idx ON public.subscription_settings (tier);
CREATE TRIGGER subscription_settings_set_updated_at BEFORE UPDATE ON public.subscription_settings
    FOR EACH ROW EXECUTE FUNCTION public.sv_set_updated_at();

-- On insert, missing limits come from the tier; on a tier change, all
-- limits follow the new tier (an explicit per-user override must be set
-- after the tier change).
CREATE FUNCTION public.sv_subscription_apply_tier() RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    t public.subscription_tiers%ROWTYPE;
BEGIN
    SELECT * INTO t FROM public.subscription_tiers WHERE tier = NEW.tier;
    IF NOT FOUND THEN
        RETURN NEW;             -- the FK reports the unknown tier
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.tier IS DISTINCT FROM OLD.tier THEN
        NEW.max_handles := t.max_handles;
        NEW.max_syncs_per_month := t.max_syncs_per_month;
        NEW.max_ai_per_month := t.max_ai_per_month;
        NEW.max_indexing_per_month := t.max_indexing_per_month;
    ELSIF TG_OP = 'INSERT' THEN
        NEW.max_handles := coalesce(NEW.max_handles, t.max_handles);
        NEW.max_syncs_per_month := coalesce(NEW.max_syncs_per_month, t.max_syncs_per_month);
        NEW.max_ai_per_month := coalesce(NEW.max_ai_per_month, t.max_ai_per_month);
        NEW.max_indexing_per_month := coalesce(NEW.max_indexing_per_month, t.max_indexing_per_month);
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.sv_subscription_apply_tier() FROM PUBLIC;
CREATE TRIGGER subscription_settings_apply_tier BEFORE INSERT OR UPDATE OF tier ON public.subscription_settings
    FOR EACH ROW EXECUTE FUNCTION public.sv_subscription_apply_tier();

-- Every new user starts on the free tier.
CREATE FUNCTION public.sv_create_subscription_for_user() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
BEGIN
    INSERT INTO public.subscription_settings (user_id) VALUES (NEW.id)
    ON CONFLICT (user_id) DO NOTHING;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION public.sv_create_subscription_for_user() FROM PUBLIC;
CREATE TRIGGER users_create_subscription AFTER INSERT ON auth.users
    FOR EACH ROW EXECUTE FUNCTION public.sv_create_subscription_for_user();

-- Users that predate this migration (upgrade of an existing database).
INSERT INTO public.subscription_settings (user_id)
SELECT u.id FROM auth.users u
ON CONFLICT (user_id) DO NOTHING;

-- Ledger of every spend (+) and refund (−). used_after is the counter after
-- the change, which makes the ledger self-explaining across resets.
CREATE TABLE public.quota_usage_history (
    id          bigserial PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    quota_type  public.quota_type NOT NULL,
    amount      integer NOT NULL CHECK (amount <> 0),
    used_after  integer NOT NULL CHECK (used_after >= 0),
    reason      text,
    job_id      uuid,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quota_usage_history_user_idx ON public.quota_usage_history (user_id, created_at DESC);
CREATE INDEX quota_usage_history_job_idx ON public.quota_usage_history (job_id) WHERE job_id IS NOT NULL;

-- ---------------------------------------------------------------------
-- Internal helpers (no EXECUTE for anyone but the owner).
-- ---------------------------------------------------------------------

-- Text → quota_type with a helpful error; RPC callers send strings.
CREATE FUNCTION public.sv_quota_parse(_quota_type text) RETURNS public.quota_type
LANGUAGE plpgsql IMMUTABLE
SET search_path = ''
AS $$
BEGIN
    IF _quota_type IS NULL OR _quota_type NOT IN ('syncs', 'ai', 'indexing', 'handles') THEN
        RAISE EXCEPTION 'unknown quota type "%"', _quota_type
            USING ERRCODE = '22023',
                  HINT = 'Use one of: syncs, ai, indexing, handles.';
    END IF;
    RETURN _quota_type::public.quota_type;
END
$$;

-- True when the role the request runs as (not the SECURITY DEFINER owner)
-- holds service_role's privileges: superusers, service_role itself, or a
-- login role that inherits it. current_setting('role') is the session's
-- SET ROLE and is not changed by entering a SECURITY DEFINER function.
-- authenticator is NOINHERIT, so it only qualifies after SET ROLE
-- service_role.
CREATE FUNCTION public.sv_caller_is_service() RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = ''
AS $$
DECLARE
    r text := pg_catalog.current_setting('role');
BEGIN
    IF r IS NULL OR r = 'none' OR r = '' THEN
        r := session_user;
    END IF;
    RETURN pg_catalog.pg_has_role(r, 'service_role', 'USAGE');
END
$$;

-- Zero the monthly counters if the period is over. Returns nothing; a
-- concurrent reset is harmless because the WHERE re-checks resets_at.
CREATE FUNCTION public.sv_quota_reset_if_due(_user_id uuid) RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = ''
AS $$
    UPDATE public.subscription_settings s
       SET current_syncs_count = 0,
           current_ai_count = 0,
           current_indexing_count = 0,
           resets_at = public.sv_next_quota_reset(pg_catalog.now())
     WHERE s.user_id = _user_id
       AND s.resets_at <= pg_catalog.now();
$$;

-- Atomic check-and-spend. Returns true and logs a history row when the
-- spend fits, false (and changes nothing) when it would exceed the limit
-- or the user has no subscription row.
CREATE FUNCTION public.sv_quota_spend(_user_id uuid, _quota_type public.quota_type, _amount integer,
                                      _reason text, _job_id uuid) RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    used integer;
BEGIN
    IF _amount IS NULL OR _amount <= 0 THEN
        RAISE EXCEPTION 'quota amount must be a positive integer, got %', _amount USING ERRCODE = '22023';
    END IF;

    -- One statement: lazy reset, limit test and spend happen under the
    -- same row lock.
    UPDATE public.subscription_settings s
       SET current_syncs_count =
               (CASE WHEN s.resets_at <= pg_catalog.now() THEN 0 ELSE s.current_syncs_count END)
               + (CASE WHEN _quota_type = 'syncs' THEN _amount ELSE 0 END),
           current_ai_count =
               (CASE WHEN s.resets_at <= pg_catalog.now() THEN 0 ELSE s.current_ai_count END)
               + (CASE WHEN _quota_type = 'ai' THEN _amount ELSE 0 END),
           current_indexing_count =
               (CASE WHEN s.resets_at <= pg_catalog.now() THEN 0 ELSE s.current_indexing_count END)
               + (CASE WHEN _quota_type = 'indexing' THEN _amount ELSE 0 END),
           current_handles_count =
               s.current_handles_count + (CASE WHEN _quota_type = 'handles' THEN _amount ELSE 0 END),
           resets_at =
               CASE WHEN s.resets_at <= pg_catalog.now()
                    THEN public.sv_next_quota_reset(pg_catalog.now()) ELSE s.resets_at END
     WHERE s.user_id = _user_id
       AND CASE _quota_type
             WHEN 'syncs' THEN
                 (CASE WHEN s.resets_at <= pg_catalog.now() THEN 0 ELSE s.current_syncs_count END)
                 + _amount <= s.max_syncs_per_month
             WHEN 'ai' THEN
                 (CASE WHEN s.resets_at <= pg_catalog.now() THEN 0 ELSE s.current_ai_count END)
                 + _amount <= s.max_ai_per_month
             WHEN 'indexing' THEN
                 (CASE WHEN s.resets_at <= pg_catalog.now() THEN 0 ELSE s.current_indexing_count END)
                 + _amount <= s.max_indexing_per_month
             WHEN 'handles' THEN
                 s.current_handles_count + _amount <= s.max_handles
           END
    RETURNING CASE _quota_type
                WHEN 'syncs' THEN s.current_syncs_count
                WHEN 'ai' THEN s.current_ai_count
                WHEN 'indexing' THEN s.current_indexing_count
                WHEN 'handles' THEN s.current_handles_count
              END
         INTO used;

    IF NOT FOUND THEN
        RETURN false;
    END IF;

    INSERT INTO public.quota_usage_history (user_id, quota_type, amount, used_after, reason, job_id)
    VALUES (_user_id, _quota_type, _amount, used, _reason, _job_id);
    RETURN true;
END
$$;

-- Refund up to _amount, never below zero. With a _job_id, refund at most
-- what that job spent in the current period and has not been refunded
-- yet, so a job refunded twice (supervisor and reconciler) or refunded
-- after a monthly reset cannot eat into new usage. Returns false only when
-- the user has no subscription row.
CREATE FUNCTION public.sv_quota_refund(_user_id uuid, _quota_type public.quota_type, _amount integer,
                                       _reason text, _job_id uuid) RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    s public.subscription_settings%ROWTYPE;
    cur integer;
    refund integer;
    refundable integer;
BEGIN
    IF _amount IS NULL OR _amount <= 0 THEN
        RAISE EXCEPTION 'quota amount must be a positive integer, got %', _amount USING ERRCODE = '22023';
    END IF;

    PERFORM public.sv_quota_reset_if_due(_user_id);
    -- Lock first: spends and refunds of one user serialise on this row, so
    -- the refundable sum below cannot change under us.
    SELECT * INTO s FROM public.subscription_settings WHERE user_id = _user_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;

    cur := CASE _quota_type
             WHEN 'syncs' THEN s.current_syncs_count
             WHEN 'ai' THEN s.current_ai_count
             WHEN 'indexing' THEN s.current_indexing_count
             WHEN 'handles' THEN s.current_handles_count
           END;
    refund := least(_amount, cur);

    IF _job_id IS NOT NULL THEN
        SELECT coalesce(sum(h.amount), 0)::integer INTO refundable
          FROM public.quota_usage_history h
         WHERE h.user_id = _user_id
           AND h.quota_type = _quota_type
           AND h.job_id = _job_id
           AND (_quota_type = 'handles' OR h.created_at >= s.resets_at - interval '1 month');
        refund := least(refund, greatest(refundable, 0));
    END IF;

    IF refund > 0 THEN
        UPDATE public.subscription_settings x
           SET current_syncs_count = x.current_syncs_count - (CASE WHEN _quota_type = 'syncs' THEN refund ELSE 0 END),
               current_ai_count = x.current_ai_count - (CASE WHEN _quota_type = 'ai' THEN refund ELSE 0 END),
               current_indexing_count = x.current_indexing_count - (CASE WHEN _quota_type = 'indexing' THEN refund ELSE 0 END),
               current_handles_count = x.current_handles_count - (CASE WHEN _quota_type = 'handles' THEN refund ELSE 0 END)
         WHERE x.user_id = _user_id;
        INSERT INTO public.quota_usage_history (user_id, quota_type, amount, used_after, reason, job_id)
        VALUES (_user_id, _quota_type, -refund, cur - refund, _reason, _job_id);
    END IF;
    RETURN true;
END
$$;

REVOKE ALL ON FUNCTION public.sv_quota_parse(text), public.sv_caller_is_service(),
    public.sv_quota_reset_if_due(uuid),
    public.sv_quota_spend(uuid, public.quota_type, integer, text, uuid),
    public.sv_quota_refund(uuid, public.quota_type, integer, text, uuid)
    FROM PUBLIC;

-- ---------------------------------------------------------------------
-- Public quota API (names and parameter names as in the V2 document, so
-- supabase.rpc('check_quota', {_user_id, _quota_type, _amount}) works).
-- ---------------------------------------------------------------------

-- Would spending _amount of _quota_type fit right now? Clients
-- (authenticated) may ask only about themselves: any other _user_id raises
-- 42501 (insufficient_privilege) without revealing whether that user
-- exists. service_role may ask about anyone. Performs the lazy monthly
-- reset if it is due, hence VOLATILE.
CREATE FUNCTION public.check_quota(_user_id uuid, _quota_type text, _amount integer DEFAULT 1)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    qt public.quota_type := public.sv_quota_parse(_quota_type);
    s public.subscription_settings%ROWTYPE;
BEGIN
    IF NOT public.sv_caller_is_service() AND _user_id IS DISTINCT FROM auth.uid() THEN
        RAISE EXCEPTION 'permission denied: you can only check your own quota'
            USING ERRCODE = '42501';
    END IF;
    IF _amount IS NULL OR _amount <= 0 THEN
        RAISE EXCEPTION 'quota amount must be a positive integer, got %', _amount USING ERRCODE = '22023';
    END IF;

    PERFORM public.sv_quota_reset_if_due(_user_id);
    SELECT * INTO s FROM public.subscription_settings WHERE user_id = _user_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    RETURN CASE qt
             WHEN 'syncs' THEN s.current_syncs_count + _amount <= s.max_syncs_per_month
             WHEN 'ai' THEN s.current_ai_count + _amount <= s.max_ai_per_month
             WHEN 'indexing' THEN s.current_indexing_count + _amount <= s.max_indexing_per_month
             WHEN 'handles' THEN s.current_handles_count + _amount <= s.max_handles
           END;
END
$$;

-- Atomically spend quota: true when spent (one history row logged), false
-- when it would exceed the limit. service_role only.
CREATE FUNCTION public.increment_quota(_user_id uuid, _quota_type text, _amount integer DEFAULT 1,
                                       _reason text DEFAULT NULL, _job_id uuid DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
BEGIN
    RETURN public.sv_quota_spend(_user_id, public.sv_quota_parse(_quota_type), _amount, _reason, _job_id);
END
$$;

-- Refund quota (never below zero; see sv_quota_refund for the _job_id
-- rule). true when the user has a subscription row. service_role only.
CREATE FUNCTION public.decrement_quota(_user_id uuid, _quota_type text, _amount integer DEFAULT 1,
                                       _reason text DEFAULT NULL, _job_id uuid DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
BEGIN
    RETURN public.sv_quota_refund(_user_id, public.sv_quota_parse(_quota_type), _amount, _reason, _job_id);
END
$$;

-- The caller's tier, limits, usage and next reset as one JSON object:
-- {"user_id", "tier", "resets_at",
--  "quotas": {"syncs": {"used","limit","remaining"}, "ai": …, "indexing": …, "handles": …}}
-- Usage shown is effective usage (0 when the reset is due but has not
-- been written yet), so this stays read-only. NULL for a caller without
-- a user id or without a subscription row.
CREATE FUNCTION public.quota_status() RETURNS jsonb
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = ''
AS $$
    SELECT pg_catalog.jsonb_build_object(
        'user_id', s.user_id,
        'tier', s.tier,
        'resets_at', CASE WHEN due THEN public.sv_next_quota_reset(pg_catalog.now()) ELSE s.resets_at END,
        'quotas', pg_catalog.jsonb_build_object(
            'syncs', pg_catalog.jsonb_build_object(
                'used', syncs, 'limit', s.max_syncs_per_month,
                'remaining', greatest(s.max_syncs_per_month - syncs, 0)),
            'ai', pg_catalog.jsonb_build_object(
                'used', ai, 'limit', s.max_ai_per_month,
                'remaining', greatest(s.max_ai_per_month - ai, 0)),
            'indexing', pg_catalog.jsonb_build_object(
                'used', idx, 'limit', s.max_indexing_per_month,
                'remaining', greatest(s.max_indexing_per_month - idx, 0)),
            'handles', pg_catalog.jsonb_build_object(
                'used', s.current_handles_count, 'limit', s.max_handles,
                'remaining', greatest(s.max_handles - s.current_handles_count, 0))))
      FROM public.subscription_settings s,
           LATERAL (SELECT s.resets_at <= pg_catalog.now() AS due) d,
           LATERAL (SELECT CASE WHEN d.due THEN 0 ELSE s.current_syncs_count END AS syncs,
                           CASE WHEN d.due THEN 0 ELSE s.current_ai_count END AS ai,
                           CASE WHEN d.due THEN 0 ELSE s.current_indexing_count END AS idx) e
     WHERE s.user_id = auth.uid()
$$;

REVOKE ALL ON FUNCTION public.check_quota(uuid, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.increment_quota(uuid, text, integer, text, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.decrement_quota(uuid, text, integer, text, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.quota_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.check_quota(uuid, text, integer) TO authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.quota_status() TO authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.increment_quota(uuid, text, integer, text, uuid) TO service_role;
GRANT EXECUTE ON FUNCTION public.decrement_quota(uuid, text, integer, text, uuid) TO service_role;

-- ---------------------------------------------------------------------
-- Handle count quota, enforced where handles are created so no API path
-- (REST insert, sync, admin) can bypass it.
-- ---------------------------------------------------------------------

-- Raised SQLSTATE PT429 when the user already has max_handles handles:
-- PostgREST's PTnnn convention, i.e. HTTP 429 like the other over-quota
-- answers of the API.
CREATE FUNCTION public.sv_account_handles_quota() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NOT public.sv_quota_spend(NEW.user_id, 'handles', 1, 'handle_added', NULL) THEN
            RAISE EXCEPTION 'handle limit reached for your subscription tier'
                USING ERRCODE = 'PT429',
                      HINT = 'Unlink a handle without content or upgrade your tier.';
        END IF;
        RETURN NULL;
    END IF;
    -- DELETE. When the delete cascades from deleting the user, the user
    -- row is already gone and so is everything a refund would touch.
    IF EXISTS (SELECT 1 FROM auth.users u WHERE u.id = OLD.user_id) THEN
        PERFORM public.sv_quota_refund(OLD.user_id, 'handles', 1, 'handle_removed', NULL);
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION public.sv_account_handles_quota() FROM PUBLIC;
-- AFTER, so RLS and constraints have accepted the row first: a user must
-- not be able to probe another user's handle count through this error.
CREATE TRIGGER account_handles_quota_insert AFTER INSERT ON public.account_handles
    FOR EACH ROW EXECUTE FUNCTION public.sv_account_handles_quota();
CREATE TRIGGER account_handles_quota_delete AFTER DELETE ON public.account_handles
    FOR EACH ROW EXECUTE FUNCTION public.sv_account_handles_quota();

-- Handles that predate this migration.
UPDATE public.subscription_settings s
   SET current_handles_count = (SELECT count(*) FROM public.account_handles h WHERE h.user_id = s.user_id);
