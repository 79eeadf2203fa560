-- The peer's own tables, in schema `peer` beside todopy's (same cluster, same
-- database, so both servers share one PostgreSQL as they share the CPUs).
-- What a developer would write for realtime todos on PostgreSQL: a rev drawn
-- from a sequence by a BEFORE trigger (so psql writers get one too) and one
-- NOTIFY per row from an AFTER trigger, carrying the row itself.
DROP SCHEMA IF EXISTS peer CASCADE;
CREATE SCHEMA peer;

CREATE TABLE peer.sessions (
    token_hash   bytea PRIMARY KEY,
    user_id      uuid NOT NULL,
    expires_time timestamptz NOT NULL
);

CREATE SEQUENCE peer.todo_rev AS bigint;

CREATE TABLE peer.todos (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL,
    title        varchar(512) NOT NULL,
    completed    boolean NOT NULL DEFAULT false,
    created_time timestamptz NOT NULL DEFAULT clock_timestamp(),
    rev          bigint NOT NULL DEFAULT nextval('peer.todo_rev')
);
CREATE INDEX todos_user_order ON peer.todos (user_id, created_time, id);

CREATE FUNCTION peer.todos_bump_rev() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.rev := nextval('peer.todo_rev');
    RETURN NEW;
END $$;

CREATE TRIGGER todos_bump_rev BEFORE UPDATE ON peer.todos
    FOR EACH ROW EXECUTE FUNCTION peer.todos_bump_rev();

-- The payload is the stream's change message, prefixed by what routing needs
-- ("<user id> <todo id> <rev> <message>"): the server routes on the prefix and
-- forwards the message without decoding it.
CREATE FUNCTION peer.todos_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r peer.todos;
BEGIN
    r := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    PERFORM pg_notify('peer_todos', concat_ws(' ', r.user_id, r.id, r.rev, json_build_object(
        'type', 'change', 'op', lower(TG_OP),
        'todo', json_build_object('id', r.id, 'title', r.title, 'completed', r.completed,
                                  'created_time', r.created_time, 'rev', r.rev),
        'rev', r.rev)));
    RETURN NULL;
END $$;

CREATE TRIGGER todos_notify AFTER INSERT OR UPDATE OR DELETE ON peer.todos
    FOR EACH ROW EXECUTE FUNCTION peer.todos_notify();
