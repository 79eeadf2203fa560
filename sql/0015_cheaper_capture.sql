-- A cheaper capture, the same guarantees (sql/0009_revs_at_commit.sql; docs/design.md,
-- "Where the capture's CPU goes"). Measured as the backend's CPU time per one-todo UPDATE and
-- commit, the capture cost about 20 times the write itself; two parts of it were waste:
--
-- 1. `capture_mark` was a SQL function called from plpgsql. Such a call is not inlined,
--    and its statement is parsed and planned anew in every transaction: a third of the
--    capture's CPU. It is plpgsql now (plans kept for the session), the doorbell read with
--    pg_sequence_last_value (an expression, no statement), and the todos trigger does it
--    inline (no nested call per row).
-- 2. `capture_commit` ran a statement to lock and bump the list, one to log the changes,
--    and one to check the session. The list's bump and the log are one statement now,
--    and the session is checked in the statement that reads the writer's role. That one
--    still runs on its own after the list is locked (a snapshot taken after the lock
--    sees every membership change and sign-out that committed before it); the change
--    log is written before the check, which is harmless: a refusal aborts the
--    transaction, log rows included.

CREATE OR REPLACE FUNCTION capture_mark(list uuid) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    pending text := current_setting('todopy.pending', true);
BEGIN
    IF pending IS NULL OR pending = '' THEN
        pending := set_config('todopy.pending', list::text, true);
        -- The ringer's doorbell (sql/0014_ringer_doorbell.sql): NULL or 0 unarmed, 1 armed.
        IF pg_sequence_last_value('ringer_doorbell') = 1 THEN
            PERFORM pg_notify('todopy_doorbell', '');
        END IF;
    ELSIF pending <> list::text AND pending <> 'many' THEN
        pending := set_config('todopy.pending', 'many', true);
    END IF;
    RETURN pending;
END $$;

CREATE OR REPLACE FUNCTION todos_capture() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    list uuid;
    pending text := current_setting('todopy.pending', true);
BEGIN
    IF TG_OP = 'DELETE' THEN
        list := OLD.list_id;
        INSERT INTO changes_pending (list_id, kind, op, todo_id, title, completed, created_time)
        VALUES (list, 'todo', 'delete', OLD.id, OLD.title, OLD.completed, OLD.created_time);
    ELSIF TG_OP = 'UPDATE' THEN
        IF NEW.list_id <> OLD.list_id OR NEW.id <> OLD.id THEN
            -- A todo's identity is its list's history: moving it would rewrite two lists' logs.
            RAISE check_violation USING MESSAGE = 'a todo cannot change its id or move to another list',
                HINT = 'delete it and insert a new one';
        END IF;
        list := NEW.list_id;
        INSERT INTO changes_pending (list_id, kind, op, todo_id, title, completed, created_time, was_completed)
        VALUES (list, 'todo', 'update', NEW.id, NEW.title, NEW.completed, NEW.created_time, OLD.completed);
    ELSE
        list := NEW.list_id;
        INSERT INTO changes_pending (list_id, kind, op, todo_id, title, completed, created_time)
        VALUES (list, 'todo', 'insert', NEW.id, NEW.title, NEW.completed, NEW.created_time);
    END IF;
    -- capture_mark, inline: this transaction's one list, or 'many'.
    IF pending IS NULL OR pending = '' THEN
        pending := capture_mark(list);
    ELSIF pending <> list::text AND pending <> 'many' THEN
        pending := set_config('todopy.pending', 'many', true);
    END IF;
    RETURN NULL;
END $$;

-- Step 2, at commit (or at SET CONSTRAINTS ... IMMEDIATE): per list, in id order, one statement
-- locks and bumps the list and logs its changes with their revs (and the todos' revs); then,
-- when the writer said who it is, one statement reads its role and session under that lock.
CREATE OR REPLACE FUNCTION capture_commit() RETURNS trigger LANGUAGE plpgsql AS $$
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
    signed_in boolean;
    checked boolean := false;
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
    -- Lists are locked in id order: two transactions never wait for each other's lists in a cycle.
    IF pending = 'many' THEN
        lists := ARRAY(SELECT DISTINCT p.list_id FROM changes_pending p WHERE p.xid = me ORDER BY p.list_id);
    ELSE
        lists := ARRAY[pending::uuid];
    END IF;
    FOREACH list IN ARRAY lists LOOP
        -- The list's lock, from here to the commit: the one point where its revs are taken. Its
        -- staged changes are numbered and logged, and each todo given its latest change's rev,
        -- in the same statement. The changes of one transaction commit together, so only those of
        -- one todo need their written order among themselves; between todos the list's order
        -- (created time, id) is used, so a bulk statement's revs follow the list whatever order
        -- its plan visited the rows in. A list deleted in this transaction is not bumped, and
        -- nothing of it is logged here: its deletion is its last change.
        WITH staged AS (
            DELETE FROM changes_pending p WHERE p.xid = me AND p.list_id = list RETURNING p.*
        ), counts AS (
            SELECT count(*) AS n,
                   count(*) FILTER (WHERE s.kind = 'todo' AND s.op = 'insert')
                   - count(*) FILTER (WHERE s.kind = 'todo' AND s.op = 'delete') AS added,
                   count(*) FILTER (WHERE s.kind = 'member' AND s.op = 'insert') AS joined,
                   bool_or(s.kind = 'member' AND NOT (s.op = 'delete' AND s.user_id = writer)) AS manages,
                   bool_or(s.kind <> 'member') AS edits
              FROM staged s
        ), bumped AS (
            UPDATE lists l SET rev = l.rev + c.n, todo_count = l.todo_count + c.added
              FROM counts c
             WHERE l.id = list AND c.n > 0
            RETURNING l.rev, c.n, c.joined, c.manages, c.edits
        ), logged AS (
            INSERT INTO changes (list_id, rev, kind, op, todo_id, title, completed, created_time, was_completed,
                                 user_id, role, by_user, xid, changed_time)
            SELECT s.list_id, b.rev - b.n + row_number() OVER (ORDER BY s.created_time, s.todo_id, s.seq),
                   s.kind, s.op, s.todo_id, s.title, s.completed, s.created_time, s.was_completed, s.user_id,
                   s.role, s.by_user, s.xid, s.changed_time
              FROM staged s CROSS JOIN bumped b
            RETURNING changes.kind, changes.todo_id, changes.rev
        ), revised AS (
            UPDATE todos t SET rev = latest.rev
              FROM (SELECT g.todo_id, max(g.rev) AS rev FROM logged g WHERE g.kind = 'todo' GROUP BY g.todo_id) latest
             WHERE t.id = latest.todo_id AND t.list_id = list
        )
        SELECT b.rev, b.n, b.joined, b.manages, b.edits INTO last, n, joined, manages, edits FROM bumped b;
        IF NOT FOUND THEN
            CONTINUE;
        END IF;
        IF writer IS NOT NULL OR session IS NOT NULL THEN
            -- A statement of its own: in READ COMMITTED it sees every membership change (and
            -- sign-out) that committed before this transaction took the list's lock.
            SELECT (SELECT m.role FROM memberships m WHERE m.list_id = list AND m.user_id = writer),
                   session IS NULL OR EXISTS (SELECT 1 FROM sessions s
                                               WHERE s.token_hash = session AND s.expires_time > now())
              INTO writer_role, signed_in;
            checked := true;
            IF NOT signed_in THEN
                RAISE insufficient_privilege USING MESSAGE = 'the session was signed out or expired',
                    DETAIL = 'signed_out';
            END IF;
            needed := CASE WHEN writer IS NULL THEN NULL WHEN manages THEN 'owner' WHEN edits THEN 'editor' END;
            IF needed IS NOT NULL AND writer_role IS NULL THEN
                RAISE insufficient_privilege USING MESSAGE = 'not a member of this list', DETAIL = 'not_a_member';
            ELSIF needed = 'owner' AND writer_role <> 'owner' OR needed = 'editor' AND writer_role = 'viewer' THEN
                RAISE insufficient_privilege USING
                    MESSAGE = format('your role in this list (%s) does not allow this', writer_role), DETAIL = 'role';
            END IF;
        END IF;
        IF joined > 0 THEN
            UPDATE memberships m SET joined_rev = j.rev
              FROM (SELECT c.user_id, max(c.rev) AS rev FROM changes c
                     WHERE c.list_id = list AND c.rev > last - n AND c.kind = 'member' AND c.op = 'insert'
                     GROUP BY c.user_id) j
             WHERE m.list_id = list AND m.user_id = j.user_id;
        END IF;
    END LOOP;
    -- A writer whose changes were all of lists it deleted: its session is still checked.
    -- (Nested: a condition with a subquery is run as a statement even when its first part is false.)
    IF session IS NOT NULL AND NOT checked THEN
        IF NOT EXISTS (SELECT 1 FROM sessions s WHERE s.token_hash = session AND s.expires_time > now()) THEN
            RAISE insufficient_privilege USING MESSAGE = 'the session was signed out or expired', DETAIL = 'signed_out';
        END IF;
    END IF;
    done := set_config('todopy.capturing', 'off', true);
    RETURN NULL;
END $$;
