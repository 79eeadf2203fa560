-- Failed sign-ins per username (existing or not), shared by every server
-- process so that N workers do not allow N times the attempts.
CREATE TABLE login_throttle (
    name_key     text PRIMARY KEY,
    failures     integer NOT NULL,
    locked_until timestamptz
);

-- Revoking a session tells every server process, so cached tokens and open
-- streams of that session end at once.
CREATE FUNCTION sessions_notify_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('todopy_sessions', encode(OLD.token_hash, 'hex'));
    RETURN NULL;
END $$;
CREATE TRIGGER sessions_notify_revoked AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION sessions_notify_revoked();
