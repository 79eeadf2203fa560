-- Todos and the change log that feeds every stream.
--
-- Every insert, update and delete of a todo, whoever makes it (the server, psql,
-- a migration), takes the next value of one global sequence as its `rev`, is
-- recorded in `changes` with the row as it was right after the change, and is
-- announced with pg_notify. Listeners read the rows from `changes`, so the
-- notification carries identifiers only and never nears the 8000-byte limit.
--
-- rev order must be commit order, or a reader that saw rev 11 before rev 10
-- committed would skip 10 forever. So a writer takes a transaction-level
-- advisory lock before it draws its first rev and holds it until commit: revs
-- are drawn by one transaction at a time, in commit order. Commits that NOTIFY
-- are serialised by PostgreSQL anyway (the notify queue lock), so the lock
-- costs only the statement's own run time inside that critical section.

CREATE SEQUENCE todo_rev AS bigint;

CREATE TABLE todos (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner        uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    title        varchar(512) NOT NULL,
    completed    boolean NOT NULL DEFAULT false,
    created_time timestamptz NOT NULL DEFAULT clock_timestamp(),
    rev          bigint NOT NULL
);
CREATE INDEX todos_owner_order ON todos (owner, created_time, id);

CREATE TABLE changes (
    rev            bigint PRIMARY KEY,
    op             text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    todo_id        uuid NOT NULL,
    owner          uuid NOT NULL,
    title          varchar(512) NOT NULL,
    completed      boolean NOT NULL,
    created_time   timestamptz NOT NULL,
    -- `completed` before the change (updates only): lets live queries tell
    -- a row entering or leaving their predicate without remembering rows.
    was_completed  boolean,
    changed_time   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX changes_owner_rev ON changes (owner, rev);
CREATE INDEX changes_changed_time ON changes (changed_time);

-- The lock key every writer of todos shares ('todo' in ASCII).
CREATE FUNCTION todo_rev_lock() RETURNS void LANGUAGE sql AS
$$ SELECT pg_advisory_xact_lock(1953457263) $$;

CREATE FUNCTION todos_assign_rev() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM todo_rev_lock();
    NEW.rev := nextval('todo_rev');
    IF TG_OP = 'UPDATE' THEN
        -- Identity never changes; a client cannot move a todo to another owner.
        NEW.id := OLD.id;
        NEW.owner := OLD.owner;
        NEW.created_time := OLD.created_time;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER todos_assign_rev BEFORE INSERT OR UPDATE ON todos
    FOR EACH ROW EXECUTE FUNCTION todos_assign_rev();

-- One notification per statement, not per row: NOTIFY cost grows with the
-- number of notifications, and listeners read the rows from the log anyway.
CREATE FUNCTION todos_notify(op text, first_rev bigint, last_rev bigint, n bigint,
                             todo_id uuid, todo_owner uuid) RETURNS void LANGUAGE sql AS $$
    SELECT pg_notify('todo_changes', json_build_object(
        'op', op, 'rev', last_rev, 'first_rev', first_rev, 'count', n,
        'id', CASE WHEN n = 1 THEN todo_id END,
        'owner', CASE WHEN n = 1 THEN todo_owner END)::text)
$$;

CREATE FUNCTION todos_log_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE first_rev bigint; last_rev bigint; n bigint; one_id uuid; one_owner uuid;
BEGIN
    INSERT INTO changes (rev, op, todo_id, owner, title, completed, created_time)
    SELECT rev, 'insert', id, owner, title, completed, created_time FROM new_rows;
    SELECT min(rev), max(rev), count(*), min(id::text)::uuid, min(owner::text)::uuid
      INTO first_rev, last_rev, n, one_id, one_owner FROM new_rows;
    IF n > 0 THEN
        PERFORM todos_notify('insert', first_rev, last_rev, n, one_id, one_owner);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION todos_log_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE first_rev bigint; last_rev bigint; n bigint; one_id uuid; one_owner uuid;
BEGIN
    INSERT INTO changes (rev, op, todo_id, owner, title, completed, created_time, was_completed)
    SELECT n.rev, 'update', n.id, n.owner, n.title, n.completed, n.created_time, o.completed
      FROM new_rows n JOIN old_rows o USING (id);
    SELECT min(rev), max(rev), count(*), min(id::text)::uuid, min(owner::text)::uuid
      INTO first_rev, last_rev, n, one_id, one_owner FROM new_rows;
    IF n > 0 THEN
        PERFORM todos_notify('update', first_rev, last_rev, n, one_id, one_owner);
    END IF;
    RETURN NULL;
END $$;

-- A delete's rev is drawn here, after the rows are gone; the lock comes first.
CREATE FUNCTION todos_log_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE first_rev bigint; last_rev bigint; n bigint; one_id uuid; one_owner uuid;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM old_rows) THEN
        RETURN NULL;
    END IF;
    PERFORM todo_rev_lock();
    WITH logged AS (
        INSERT INTO changes (rev, op, todo_id, owner, title, completed, created_time)
        SELECT nextval('todo_rev'), 'delete', id, owner, title, completed, created_time
          FROM (SELECT * FROM old_rows ORDER BY created_time, id) AS ordered
        RETURNING rev, todo_id, owner
    )
    SELECT min(rev), max(rev), count(*), min(todo_id::text)::uuid, min(owner::text)::uuid
      INTO first_rev, last_rev, n, one_id, one_owner FROM logged;
    PERFORM todos_notify('delete', first_rev, last_rev, n, one_id, one_owner);
    RETURN NULL;
END $$;

CREATE TRIGGER todos_log_insert AFTER INSERT ON todos
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION todos_log_insert();
CREATE TRIGGER todos_log_update AFTER UPDATE ON todos
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION todos_log_update();
CREATE TRIGGER todos_log_delete AFTER DELETE ON todos
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION todos_log_delete();
