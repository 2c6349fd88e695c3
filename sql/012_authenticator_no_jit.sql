-- JIT compilation pays off for long analytical queries; the API's are
-- short and run under row-level security, where plan costs look high
-- enough to trigger it: search_content spent two thirds of ~400 ms per
-- call compiling (bench/run). Off for the server's login role in this
-- database only; a DBA can still turn it on per session.
DO $$
BEGIN
    EXECUTE format('ALTER ROLE authenticator IN DATABASE %I SET jit = off', current_database());
END
$$;
