-- Revs at commit: the capture takes no lock a writer did not choose, logs only what
-- happened, and decides the writer's access in the list's own order.
--
-- Before: BEFORE row triggers bumped the list's row in the middle of the writing
-- statement. A plain `UPDATE todos ... WHERE id = $1` locked the todo, then (in
-- the trigger) its list; the API's writes locked the list, then the todos. Two
-- lock orders: plain SQL writers beside a toggle-all deadlocked, a cycle the
-- triggers added to a workload that cannot deadlock without them. BEFORE INSERT
-- triggers also fire for `INSERT ... ON CONFLICT DO NOTHING` rows that are never
-- inserted, so the log told of inserts that did not happen.
--
-- Now a change is captured in two steps:
-- 1. AFTER row triggers (they fire only for rows really written; a rolled-back
--    subtransaction takes its rows and queued events with it) stage the change in
--    `changes_pending`, and lock nothing.
-- 2. At commit, a deferred constraint trigger (`capture_commit`) takes every list
--    the transaction changed, in list id order, and numbers its changes from the
--    list's counter: rev order is commit order within a list, and the list's row
--    is locked only from then to the commit. Nothing waits for a row lock while
--    holding a list's, and list locks are always taken in one order: no cycle.
--    Todos and memberships get their final revs in the same step.
--
-- Access in the list's order: a writer that says who it is (`todopy.user`, and
-- `todopy.session`, set for its transaction; the server always does) is checked at
-- that point, under the list's lock, against the memberships as of then. A removal,
-- a downgrade or a sign-out that committed first refuses the write (SQLSTATE 42501,
-- DETAIL not_a_member, role or signed_out); one that commits after it sees the write
-- as history before it.

-- Who made each change: the user id the writer named (NULL: a database writer that did not say).
ALTER TABLE changes ADD COLUMN by_user uuid;

-- The rev at which each member (last) joined: a member's history starts there.
ALTER TABLE memberships ADD COLUMN joined_rev bigint NOT NULL DEFAULT 0;

-- A todo's rev is its latest change's, assigned when its transaction commits; until
-- then (inside the writing transaction only) a new todo's is 0.
ALTER TABLE todos ALTER COLUMN rev SET DEFAULT 0;

-- Changes staged by a transaction that has not committed yet. Rows live only inside
-- their transaction (moved to `changes` at its commit, gone with its rollback), so
-- the table is UNLOGGED: staging costs no WAL, and a crash loses nothing committed.
CREATE UNLOGGED TABLE changes_pending (
    xid            xid8 NOT NULL DEFAULT pg_current_xact_id(),
    seq            bigint GENERATED ALWAYS AS IDENTITY,      -- the order written
    list_id        uuid NOT NULL,
    kind           text NOT NULL,
    op             text NOT NULL,
    todo_id        uuid,
    title          varchar(512),
    completed      boolean,
    created_time   timestamptz,
    was_completed  boolean,
    user_id        uuid,
    role           text,
    by_user        uuid DEFAULT nullif(current_setting('todopy.user', true), '')::uuid,
    changed_time   timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Found by transaction, then list (capture_commit); the list is in the key, as in every
    -- per-list table's (docs/design.md, "Beyond one PostgreSQL").
    PRIMARY KEY (xid, list_id, seq)
);

-- The quota is a rule of the database, kept at commit (NOT VALID: lists that SQL
-- writers filled past it before this migration keep their todos).
ALTER TABLE lists ADD CONSTRAINT lists_todo_limit CHECK (todo_count <= 5000) NOT VALID;

DROP TRIGGER todos_log ON todos;
DROP TRIGGER lists_log_title ON lists;
DROP TRIGGER lists_log_delete ON lists;
DROP TRIGGER memberships_log ON memberships;
DROP FUNCTION todos_log(), lists_log_title(), lists_log_delete(), memberships_log();

-- Step 1: stage a change; `capture_commit` numbers it at commit. (The todos trigger
-- writes its INSERT itself: a nested plpgsql call per row is a measurable share of a write.)
-- Which lists this transaction has staged changes of, for `capture_commit`: the one list's
-- id (nearly every transaction), or 'many'. A transaction-local setting, so a rolled-back
-- savepoint takes its part back with it.
CREATE FUNCTION capture_mark(list uuid) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN coalesce(current_setting('todopy.pending', true), '') IN ('', list::text)
                THEN set_config('todopy.pending', list::text, true)
                ELSE set_config('todopy.pending', 'many', true) END
$$;

CREATE FUNCTION capture_stage(list uuid, kind text, op text, title text, member uuid, role text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO changes_pending (list_id, kind, op, title, user_id, role)
    VALUES (list, kind, op, title, member, role);
    PERFORM capture_mark(list);
END $$;

CREATE FUNCTION todos_capture() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE marked text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO changes_pending (list_id, kind, op, todo_id, title, completed, created_time)
        VALUES (OLD.list_id, 'todo', 'delete', OLD.id, OLD.title, OLD.completed, OLD.created_time);
    ELSIF TG_OP = 'UPDATE' THEN
        IF NEW.list_id <> OLD.list_id OR NEW.id <> OLD.id THEN
            -- A todo's identity is its list's history: moving it would rewrite two lists' logs.
            RAISE check_violation USING MESSAGE = 'a todo cannot change its id or move to another list',
                HINT = 'delete it and insert a new one';
        END IF;
        INSERT INTO changes_pending (list_id, kind, op, todo_id, title, completed, created_time, was_completed)
        VALUES (NEW.list_id, 'todo', 'update', NEW.id, NEW.title, NEW.completed, NEW.created_time, OLD.completed);
    ELSE
        INSERT INTO changes_pending (list_id, kind, op, todo_id, title, completed, created_time)
        VALUES (NEW.list_id, 'todo', 'insert', NEW.id, NEW.title, NEW.completed, NEW.created_time);
    END IF;
    marked := capture_mark(coalesce(NEW.list_id, OLD.list_id));
    RETURN NULL;
END $$;

-- Our own rev bookkeeping at commit (`todopy.capturing`) is not a change.
CREATE TRIGGER todos_capture AFTER INSERT OR UPDATE OR DELETE ON todos FOR EACH ROW
    WHEN (current_setting('todopy.capturing', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION todos_capture();

CREATE FUNCTION lists_capture() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM capture_stage(NEW.id, 'list', 'update', NEW.title, NULL, NULL);
    RETURN NULL;
END $$;
-- Only a new title is a change of the list; rev bumps at commit are not.
CREATE TRIGGER lists_capture AFTER UPDATE ON lists FOR EACH ROW
    WHEN (OLD.title IS DISTINCT FROM NEW.title) EXECUTE FUNCTION lists_capture();

-- A deleted list's last change, numbered at once: its row is locked by the DELETE
-- itself, and no change can follow it. Its cascaded todo and member changes are
-- dropped at commit (the list's deletion says it all).
CREATE FUNCTION lists_capture_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO changes (list_id, rev, kind, op, title, by_user)
    VALUES (OLD.id, OLD.rev + 1, 'list', 'delete', OLD.title, nullif(current_setting('todopy.user', true), '')::uuid);
    RETURN NULL;
END $$;
CREATE TRIGGER lists_capture_delete AFTER DELETE ON lists FOR EACH ROW EXECUTE FUNCTION lists_capture_delete();

-- A membership change, as what it means to each user it touches: an UPDATE that
-- moves a membership to another user (or list) is one member leaving and another joining.
CREATE FUNCTION memberships_capture() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') AND
       (TG_OP = 'DELETE' OR NEW.user_id <> OLD.user_id OR NEW.list_id <> OLD.list_id) THEN
        PERFORM capture_stage(OLD.list_id, 'member', 'delete', NULL, OLD.user_id, NULL);
    END IF;
    IF TG_OP = 'INSERT' OR (NEW.user_id <> OLD.user_id OR NEW.list_id <> OLD.list_id) THEN
        PERFORM capture_stage(NEW.list_id, 'member', 'insert', NULL, NEW.user_id, NEW.role);
    ELSIF TG_OP = 'UPDATE' AND NEW.role IS DISTINCT FROM OLD.role THEN
        PERFORM capture_stage(NEW.list_id, 'member', 'update', NULL, NEW.user_id, NEW.role);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER memberships_capture AFTER INSERT OR UPDATE OR DELETE ON memberships FOR EACH ROW
    WHEN (current_setting('todopy.capturing', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION memberships_capture();

-- TRUNCATE fires no row trigger, so alone it would empty lists behind every stream's
-- back. Here TRUNCATE todos (or memberships) means DELETE FROM it: each row's deletion
-- is logged and streamed as any DELETE's, in the time a DELETE takes.
CREATE FUNCTION truncate_as_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DELETE FROM %I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
    -- Number the deletions now: at commit their rows' files are truncated, and the
    -- queued commit-time events could no longer read them.
    SET CONSTRAINTS todos_commit, memberships_commit IMMEDIATE;
    SET CONSTRAINTS todos_commit, memberships_commit DEFERRED;
    RETURN NULL;
END $$;
CREATE TRIGGER todos_truncate BEFORE TRUNCATE ON todos EXECUTE FUNCTION truncate_as_delete();
CREATE TRIGGER memberships_truncate BEFORE TRUNCATE ON memberships EXECUTE FUNCTION truncate_as_delete();

-- Step 2, at commit (or at SET CONSTRAINTS ... IMMEDIATE): number every staged change.
-- Its cost is most of what the capture adds to a write: one statement locks and bumps the
-- list, one logs the changes (a SQL writer's two), and settings are read and set as plain
-- expressions, never as queries.
CREATE FUNCTION capture_commit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pending text := current_setting('todopy.pending', true);
    me xid8;
    lists uuid[];
    list uuid;
    last bigint;
    n bigint;
    joined bigint;
    manages boolean;
    edits boolean;
    writer uuid;
    session bytea;
    writer_role text;
    needed text;
    done text;
BEGIN
    -- One event per written row is queued; the first does the work for all of them.
    IF pending IS NULL OR pending = '' THEN
        RETURN NULL;
    END IF;
    done := set_config('todopy.pending', '', true);
    done := set_config('todopy.capturing', 'on', true);
    me := pg_current_xact_id();
    writer := nullif(current_setting('todopy.user', true), '')::uuid;
    session := decode(nullif(current_setting('todopy.session', true), ''), 'hex');
    IF session IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.token_hash = session AND s.expires_time > now()) THEN
        RAISE insufficient_privilege USING MESSAGE = 'the session was signed out or expired', DETAIL = 'signed_out';
    END IF;
    -- Lists are locked in id order: two transactions never wait for each other's lists in a cycle.
    IF pending = 'many' THEN
        lists := ARRAY(SELECT DISTINCT p.list_id FROM changes_pending p WHERE p.xid = me ORDER BY p.list_id);
    ELSE
        lists := ARRAY[pending::uuid];
    END IF;
    FOREACH list IN ARRAY lists LOOP
        -- The list's lock, from here to the commit: the one point where its revs are taken.
        UPDATE lists l SET rev = l.rev + staged.n, todo_count = l.todo_count + staged.added
          FROM (SELECT count(*) AS n,
                       count(*) FILTER (WHERE p.kind = 'todo' AND p.op = 'insert')
                       - count(*) FILTER (WHERE p.kind = 'todo' AND p.op = 'delete') AS added,
                       count(*) FILTER (WHERE p.kind = 'member' AND p.op = 'insert') AS joined,
                       bool_or(p.kind = 'member' AND NOT (p.op = 'delete' AND p.user_id = writer)) AS manages,
                       bool_or(p.kind <> 'member') AS edits
                  FROM changes_pending p WHERE p.xid = me AND p.list_id = list) staged
         WHERE l.id = list AND staged.n > 0
        RETURNING l.rev, staged.n, staged.joined, staged.manages, staged.edits INTO last, n, joined, manages, edits;
        IF NOT FOUND THEN
            -- Deleted in this transaction: its deletion is its last change.
            DELETE FROM changes_pending WHERE xid = me AND list_id = list;
            CONTINUE;
        END IF;
        IF writer IS NOT NULL THEN
            -- A statement of its own: in READ COMMITTED it sees every membership change
            -- that committed before this transaction took the list's lock.
            SELECT m.role INTO writer_role FROM memberships m WHERE m.list_id = list AND m.user_id = writer;
            needed := CASE WHEN manages THEN 'owner' WHEN edits THEN 'editor' END;
            IF needed IS NOT NULL AND writer_role IS NULL THEN
                RAISE insufficient_privilege USING MESSAGE = 'not a member of this list', DETAIL = 'not_a_member';
            ELSIF needed = 'owner' AND writer_role <> 'owner' OR needed = 'editor' AND writer_role = 'viewer' THEN
                RAISE insufficient_privilege USING
                    MESSAGE = format('your role in this list (%s) does not allow this', writer_role), DETAIL = 'role';
            END IF;
        END IF;
        -- Number the list's staged changes, log them, and give each todo its latest change's
        -- rev: one statement. The changes of one transaction commit together, so only those of
        -- one todo need their written order among themselves; between todos the list's order
        -- (created time, id) is used, so a bulk statement's revs follow the list whatever
        -- order its plan visited the rows in.
        WITH staged AS (
            DELETE FROM changes_pending p WHERE p.xid = me AND p.list_id = list RETURNING p.*
        ), logged AS (
            INSERT INTO changes (list_id, rev, kind, op, todo_id, title, completed, created_time, was_completed,
                                 user_id, role, by_user, xid, changed_time)
            SELECT s.list_id, last - n + row_number() OVER (ORDER BY s.created_time, s.todo_id, s.seq), s.kind, s.op,
                   s.todo_id, s.title, s.completed, s.created_time, s.was_completed, s.user_id, s.role, s.by_user,
                   s.xid, s.changed_time
              FROM staged s
            RETURNING changes.kind, changes.todo_id, changes.rev
        )
        UPDATE todos t SET rev = latest.rev
          FROM (SELECT l.todo_id, max(l.rev) AS rev FROM logged l WHERE l.kind = 'todo' GROUP BY l.todo_id) latest
         WHERE t.id = latest.todo_id AND t.list_id = list;
        IF joined > 0 THEN
            UPDATE memberships m SET joined_rev = j.rev
              FROM (SELECT c.user_id, max(c.rev) AS rev FROM changes c
                     WHERE c.list_id = list AND c.rev > last - n AND c.kind = 'member' AND c.op = 'insert'
                     GROUP BY c.user_id) j
             WHERE m.list_id = list AND m.user_id = j.user_id;
        END IF;
    END LOOP;
    done := set_config('todopy.capturing', 'off', true);
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER todos_commit AFTER INSERT OR UPDATE OR DELETE ON todos
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (current_setting('todopy.capturing', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION capture_commit();
CREATE CONSTRAINT TRIGGER lists_commit AFTER UPDATE ON lists
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.title IS DISTINCT FROM NEW.title)
    EXECUTE FUNCTION capture_commit();
CREATE CONSTRAINT TRIGGER memberships_commit AFTER INSERT OR UPDATE OR DELETE ON memberships
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (current_setting('todopy.capturing', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION capture_commit();
