-- 047_tier_limits_follow.sql — a change to a tier's limits reaches the
-- users on that tier. Each user's limits are a copy of their tier's
-- (003), kept in subscription_settings so that an operator can give one
-- user a limit of their own. Until now, raising the free tier's
-- max_syncs_per_month reached only users who joined or changed tier
-- afterwards. Now a user's limit that still equals the tier's old value
-- takes the new one; a limit that differs was set for that user alone
-- and stays. (A limit of their own that happens to equal the tier's
-- old value cannot be told apart, and follows.)
--
-- The function runs as whoever changes the tier (the schema's owner or
-- service_role, the only roles that may), both of which may update every
-- user's settings; it writes nothing a caller names, so it needs no
-- definer's rights.
--
-- A user moved onto the tier (or created on it) by a transaction that
-- read the tier before this change committed, and wrote after this
-- UPDATE had passed, keeps the old limits. Locking the tier row in
-- sv_subscription_apply_tier would close that, but it runs after its
-- own settings row is locked, while this trigger locks the settings
-- rows after the tier row: the two would deadlock. doc/operations.md
-- says to change tiers and move users at different moments.

CREATE FUNCTION public.sv_subscription_tier_limits_follow() RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    UPDATE public.subscription_settings s
       SET max_handles = CASE WHEN s.max_handles = OLD.max_handles
                              THEN NEW.max_handles ELSE s.max_handles END,
           max_syncs_per_month = CASE WHEN s.max_syncs_per_month = OLD.max_syncs_per_month
                                      THEN NEW.max_syncs_per_month ELSE s.max_syncs_per_month END,
           max_ai_per_month = CASE WHEN s.max_ai_per_month = OLD.max_ai_per_month
                                   THEN NEW.max_ai_per_month ELSE s.max_ai_per_month END,
           max_indexing_per_month = CASE WHEN s.max_indexing_per_month = OLD.max_indexing_per_month
                                         THEN NEW.max_indexing_per_month ELSE s.max_indexing_per_month END
     WHERE s.tier = NEW.tier
       AND (   (s.max_handles = OLD.max_handles AND NEW.max_handles <> OLD.max_handles)
            OR (s.max_syncs_per_month = OLD.max_syncs_per_month
                AND NEW.max_syncs_per_month <> OLD.max_syncs_per_month)
            OR (s.max_ai_per_month = OLD.max_ai_per_month AND NEW.max_ai_per_month <> OLD.max_ai_per_month)
            OR (s.max_indexing_per_month = OLD.max_indexing_per_month
                AND NEW.max_indexing_per_month <> OLD.max_indexing_per_month));
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION public.sv_subscription_tier_limits_follow() FROM PUBLIC;

CREATE TRIGGER subscription_tiers_limits_follow
    AFTER UPDATE OF max_handles, max_syncs_per_month, max_ai_per_month, max_indexing_per_month
    ON public.subscription_tiers
    FOR EACH ROW EXECUTE FUNCTION public.sv_subscription_tier_limits_follow();
