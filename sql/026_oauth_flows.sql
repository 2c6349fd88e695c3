-- 026_oauth_flows.sql — OAuth authorization-code flows in progress.
--
-- GET /functions/v1/oauth/<platform>/start records one row per flow;
-- the provider's redirect to .../callback consumes it (DELETE ...
-- RETURNING: a state works once, whichever worker or host answers).
-- The row is keyed by a hash of the state's random part, never the
-- state itself, and the PKCE verifier is sealed by the server (the
-- flow's id as associated data), so the table holds nothing a reader
-- could finish a flow with. Expired rows are removed as new flows start.
CREATE TABLE auth.platform_oauth_flows (
    id             text PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    platform_id    uuid NOT NULL REFERENCES public.platforms (id),
    redirect_to    text NOT NULL,
    redirect_uri   text NOT NULL,
    code_verifier  text CHECK (code_verifier IS NULL OR public.sv_sealed_key_id(code_verifier) IS NOT NULL),
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);
CREATE INDEX platform_oauth_flows_expires_idx ON auth.platform_oauth_flows (expires_at);

-- Only the server (service_role, which bypasses RLS) touches it; RLS on
-- and no policy means nobody else sees a row even if granted the table.
ALTER TABLE auth.platform_oauth_flows ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON auth.platform_oauth_flows FROM PUBLIC, anon, authenticated;
GRANT SELECT, INSERT, DELETE ON auth.platform_oauth_flows TO service_role;
