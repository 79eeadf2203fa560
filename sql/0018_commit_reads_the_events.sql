-- The commit-time step reads each todo's change from its own event; nothing is staged for todos.
--
-- Since sql/0009_revs_at_commit.sql a todo's change was written twice before it reached the
-- log: the row trigger staged a copy in `changes_pending`, and the commit-time step (the
-- deferred constraint trigger `todos_commit`) deleted that copy and logged it. But the deferred
-- trigger fires at commit once per written row anyway, and PostgreSQL hands it that row's own
-- OLD and NEW versions (kept by the event, whatever the transaction did to the row since),
-- exactly what was staged. So the staging row is gone for todos:
--
-- 1. The row trigger only counts: this round's list, its number of todo changes and how
--    many todos they add (`todopy.pending`, `todopy.n`, `todopy.added`, transaction-local
--    settings, so a rolled-back subtransaction takes its counts back with its events). A
--    transaction that writes a second list keeps its counts per list in the unlogged
--    `capture_lists` instead: settings per list would be a new setting per list in every
--    session, and PostgreSQL 15 visits every setting at every commit.
-- 2. The round's first event (todos, memberships or lists: whichever fires first at commit, or
--    at SET CONSTRAINTS ... IMMEDIATE) locks every list of the round in id order, bumps each by
--    its count, logs the staged member and list changes after the todos' revs, and checks the
--    writer's role and session, as before (sql/0015_cheaper_capture.sql).
-- 3. Then every todo event logs its own change at the next rev of its list and gives the todo
--    that rev. Several changes of one list in a round are logged at provisional (negative) revs
--    and the last renumbers them in the list's order, as the staged statement numbered them.
--
-- Measured as the backend's CPU per one-todo UPDATE and commit (docs/design.md, "Where the
-- capture's CPU goes"): 0.17 ms before, 0.13 ms after; WAL per write unchanged.
--
-- The count of a transaction's first change also rings the doorbell; it now lapses (below).

CREATE UNLOGGED TABLE capture_lists (
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    list_id uuid NOT NULL,
    todos bigint NOT NULL,      -- todo changes counted (a round's totals row: how many it numbers)
    added bigint NOT NULL,      -- todos inserted minus todos deleted (a totals row: 0)
    next bigint,                -- a totals row: the rev its list's todo changes took last; NULL while counting
    last bigint,                -- a totals row: the rev its list's last todo change of the round takes
    seq bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (xid, list_id, seq)
);

-- And the doorbell expires (sql/0014_ringer_doorbell.sql, sql/0017_doorbell_names_the_list.sql).
--
-- An idle ringer arms the doorbell and sleeps; a transaction's first change then NOTIFYs it.
-- Armed was a plain 1, left as it was when the ringer stopped: killed, cut off, or every
-- server shut down while SQL writers go on (a migration, a batch job). Every writing
-- transaction then sent a NOTIFY that nobody heard, and NOTIFY serialises commits (measured
-- with the servers stopped, 16 writers over 16 lists, fsync on: 26% of the trigger-free
-- rate, against 41% with a ringer awake).
--
-- The doorbell now holds the time (milliseconds since the epoch, the database's clock) until
-- which it is armed: the sleeping ringer arms it for one lease and arms it again at each
-- renewal (todopy/realtime/ringer.py), so it lapses with the ringer's lease. Writers ring
-- only before that time. Nothing depends on the ring for correctness: a sleeping ringer
-- still ticks at each renewal, and a new ringer reads what it missed.
ALTER SEQUENCE ringer_doorbell AS bigint MAXVALUE 9223372036854775807;

-- Count a change of `list` into this transaction's round: `todos` todo changes adding `added` todos.
CREATE OR REPLACE FUNCTION capture_count(list uuid, todos int, added int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    pending text := current_setting('todopy.pending', true);
    done text;
BEGIN
    IF pending IS NULL OR pending = '' THEN
        done := set_config('todopy.pending', list::text, true);
        done := set_config('todopy.n', todos::text, true);
        done := set_config('todopy.added', added::text, true);
        -- Armed until a time in the future: ring (NULL or 0: unarmed; a time past: the ringer that
        -- armed it stopped renewing it).
        IF pg_sequence_last_value('ringer_doorbell') > extract(epoch FROM clock_timestamp()) * 1000 THEN
            PERFORM pg_notify('todopy_doorbell', list::text);
        END IF;
    ELSIF pending = list::text THEN
        IF todos <> 0 THEN
            done := set_config('todopy.n', (current_setting('todopy.n')::bigint + todos)::text, true);
        END IF;
        IF added <> 0 THEN
            done := set_config('todopy.added', (current_setting('todopy.added')::bigint + added)::text, true);
        END IF;
    ELSE
        IF pending <> 'many' THEN
            INSERT INTO capture_lists (list_id, todos, added)
            VALUES (pending::uuid, current_setting('todopy.n')::bigint, current_setting('todopy.added')::bigint);
            done := set_config('todopy.pending', 'many', true);
        END IF;
        INSERT INTO capture_lists (list_id, todos, added) VALUES (list, todos, added);
    END IF;
END $$;

-- Member and list changes are rare: they are still staged, and counted as no todo change.
CREATE OR REPLACE FUNCTION capture_stage(list uuid, kind text, op text, title text, member uuid, role text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    done text;
BEGIN
    INSERT INTO changes_pending (list_id, kind, op, title, user_id, role)
    VALUES (list, kind, op, title, member, role);
    done := set_config('todopy.staged', 'on', true);
    PERFORM capture_count(list, 0, 0);
END $$;

DROP FUNCTION capture_mark(uuid);

-- Step 1, as each row is written.
CREATE OR REPLACE FUNCTION todos_capture() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    list uuid;
    added int := 0;
    pending text := current_setting('todopy.pending', true);
    done text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        list := OLD.list_id;
        added := -1;
    ELSIF TG_OP = 'UPDATE' THEN
        IF NEW.list_id <> OLD.list_id OR NEW.id <> OLD.id THEN
            -- A todo's identity is its list's history: moving it would rewrite two lists' logs.
            RAISE check_violation USING MESSAGE = 'a todo cannot change its id or move to another list',
                HINT = 'delete it and insert a new one';
        END IF;
        list := NEW.list_id;
    ELSE
        list := NEW.list_id;
        added := 1;
    END IF;
    -- capture_count, inline for the common case: the round's one list counted again.
    IF pending = list::text THEN
        done := set_config('todopy.n', (current_setting('todopy.n')::bigint + 1)::text, true);
        IF added <> 0 THEN
            done := set_config('todopy.added', (current_setting('todopy.added')::bigint + added)::text, true);
        END IF;
    ELSE
        PERFORM capture_count(list, 1, added);
    END IF;
    RETURN NULL;
END $$;

-- Steps 2 and 3, at commit (or at SET CONSTRAINTS ... IMMEDIATE), once per written row.
CREATE OR REPLACE FUNCTION capture_commit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pending text := current_setting('todopy.pending', true);
    me xid8;
    list uuid;
    lists uuid[];
    list_todos bigint[];
    list_added bigint[];
    todos bigint;
    added bigint;
    round_last bigint;
    staged boolean;
    base bigint;
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
    todo_rev bigint;
    done text;
BEGIN
    IF pending IS NOT NULL AND pending <> '' THEN
        -- The round's first event: its lists, in id order (two transactions never wait for each
        -- other's lists in a cycle), each locked from here to the commit: the one point where its
        -- revs are taken.
        me := pg_current_xact_id();
        writer := nullif(current_setting('todopy.user', true), '')::uuid;
        session := decode(nullif(current_setting('todopy.session', true), ''), 'hex');
        staged := current_setting('todopy.staged', true) = 'on';
        done := set_config('todopy.pending', '', true);
        done := set_config('todopy.staged', '', true);
        done := set_config('todopy.round', CASE WHEN pending = 'many' THEN 'many' ELSE '' END, true);
        done := set_config('todopy.capturing', 'on', true);
        IF pending = 'many' THEN
            WITH counted AS (
                DELETE FROM capture_lists c WHERE c.xid = me RETURNING c.list_id, c.todos, c.added, c.next
            ), totals AS (
                SELECT c.list_id, sum(c.todos) AS todos, sum(c.added) AS added
                  FROM counted c WHERE c.next IS NULL GROUP BY c.list_id
            )
            SELECT array_agg(t.list_id ORDER BY t.list_id), array_agg(t.todos ORDER BY t.list_id),
                   array_agg(t.added ORDER BY t.list_id)
              INTO lists, list_todos, list_added FROM totals t;
        ELSE
            lists := ARRAY[pending::uuid];
            list_todos := ARRAY[current_setting('todopy.n')::bigint];
            list_added := ARRAY[current_setting('todopy.added')::bigint];
        END IF;
        FOR i IN 1 .. coalesce(array_length(lists, 1), 0) LOOP
            list := lists[i];
            todos := list_todos[i];
            added := list_added[i];
            IF staged THEN
                -- The staged member and list changes are numbered after the round's todo changes.
                WITH staged AS (
                    DELETE FROM changes_pending p WHERE p.xid = me AND p.list_id = list RETURNING p.*
                ), counts AS (
                    SELECT count(*) AS n,
                           count(*) FILTER (WHERE s.kind = 'member' AND s.op = 'insert') AS joined,
                           bool_or(s.kind = 'member' AND NOT (s.op = 'delete' AND s.user_id = writer)) AS manages,
                           bool_or(s.kind <> 'member') AS edits
                      FROM staged s
                ), bumped AS (
                    UPDATE lists l SET rev = l.rev + todos + c.n, todo_count = l.todo_count + added
                      FROM counts c
                     WHERE l.id = list AND todos + c.n > 0
                    RETURNING l.rev, c.n, c.joined, c.manages, c.edits
                ), logged AS (
                    INSERT INTO changes (list_id, rev, kind, op, todo_id, title, completed, created_time,
                                         was_completed, user_id, role, by_user, xid, changed_time)
                    SELECT s.list_id, b.rev - b.n + row_number() OVER (ORDER BY s.seq), s.kind, s.op, s.todo_id,
                           s.title, s.completed, s.created_time, s.was_completed, s.user_id, s.role, s.by_user,
                           s.xid, s.changed_time
                      FROM staged s CROSS JOIN bumped b
                )
                SELECT b.rev, b.n, b.joined, coalesce(b.manages, false), coalesce(b.edits, false) OR todos > 0
                  INTO last, n, joined, manages, edits FROM bumped b;
                base := CASE WHEN FOUND THEN last - n - todos END;
            ELSE
                UPDATE lists l SET rev = l.rev + todos, todo_count = l.todo_count + added
                 WHERE l.id = list AND todos > 0
                RETURNING l.rev - todos INTO base;
                joined := 0;
                manages := false;
                edits := true;
            END IF;
            IF pending = 'many' THEN
                IF base IS NOT NULL AND todos > 0 THEN
                    INSERT INTO capture_lists (list_id, todos, added, next, last)
                    VALUES (list, todos, 0, base, base + todos);
                END IF;
            ELSE
                done := set_config('todopy.next', coalesce(base::text, ''), true);
                done := set_config('todopy.last', coalesce((base + todos)::text, ''), true);
            END IF;
            -- A list deleted in this transaction is not bumped, and nothing of it is logged
            -- here: its deletion is its last change.
            CONTINUE WHEN base IS NULL;
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
                        MESSAGE = format('your role in this list (%s) does not allow this', writer_role),
                        DETAIL = 'role';
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
                RAISE insufficient_privilege USING MESSAGE = 'the session was signed out or expired',
                    DETAIL = 'signed_out';
            END IF;
        END IF;
        done := set_config('todopy.capturing', 'off', true);
    END IF;
    IF TG_TABLE_NAME <> 'todos' THEN
        RETURN NULL;
    END IF;
    -- Step 3: this event's todo change, at its list's next rev.
    IF TG_OP = 'DELETE' THEN
        list := OLD.list_id;
    ELSE
        list := NEW.list_id;
    END IF;
    -- Its list's next rev, the round's last for it, and how many the round numbers: in the
    -- settings for a round of one list, in its list's totals row for a round of several.
    IF current_setting('todopy.round', true) = 'many' THEN
        UPDATE capture_lists c SET next = c.next + 1
         WHERE c.xid = pg_current_xact_id() AND c.list_id = list AND c.next IS NOT NULL
        RETURNING c.next, c.last, c.todos INTO todo_rev, round_last, n;
        IF todo_rev = round_last THEN
            DELETE FROM capture_lists c
             WHERE c.xid = pg_current_xact_id() AND c.list_id = list AND c.next IS NOT NULL;
        END IF;
    ELSE
        todo_rev := nullif(current_setting('todopy.next', true), '')::bigint + 1;
        IF todo_rev IS NOT NULL THEN
            done := set_config('todopy.next', todo_rev::text, true);
            round_last := current_setting('todopy.last')::bigint;
            n := current_setting('todopy.n')::bigint;
        END IF;
    END IF;
    IF todo_rev IS NULL THEN
        RETURN NULL;
    END IF;
    -- One change of its list in this round: its rev is final. Several: each is logged at a
    -- provisional (negative) rev, and the last renumbers them in the list's order (created time,
    -- id; one todo's changes in their written order), so a bulk statement's revs follow the list
    -- whatever order its plan visited the rows in.
    IF n > 1 THEN
        todo_rev := -todo_rev;
    END IF;
    IF TG_OP = 'DELETE' THEN
        INSERT INTO changes (list_id, rev, kind, op, todo_id, title, completed, created_time, by_user)
        VALUES (list, todo_rev, 'todo', 'delete', OLD.id, OLD.title, OLD.completed, OLD.created_time,
                nullif(current_setting('todopy.user', true), '')::uuid);
    ELSE
        INSERT INTO changes (list_id, rev, kind, op, todo_id, title, completed, created_time, was_completed, by_user)
        VALUES (list, todo_rev, 'todo', CASE WHEN TG_OP = 'INSERT' THEN 'insert' ELSE 'update' END, NEW.id, NEW.title,
                NEW.completed, NEW.created_time, CASE WHEN TG_OP = 'UPDATE' THEN OLD.completed END,
                nullif(current_setting('todopy.user', true), '')::uuid);
        IF n = 1 THEN
            done := set_config('todopy.capturing', 'on', true);
            UPDATE todos t SET rev = todo_rev WHERE t.list_id = list AND t.id = NEW.id;
            done := set_config('todopy.capturing', 'off', true);
        END IF;
    END IF;
    IF n > 1 AND -todo_rev = round_last THEN
        done := set_config('todopy.capturing', 'on', true);
        WITH ranked AS (
            SELECT c.rev, -todo_rev - n + row_number() OVER (ORDER BY c.created_time, c.todo_id, c.rev DESC) AS final
              FROM changes c WHERE c.list_id = list AND c.rev BETWEEN todo_rev AND todo_rev + n - 1
        ), renumbered AS (
            UPDATE changes c SET rev = r.final FROM ranked r WHERE c.list_id = list AND c.rev = r.rev
            RETURNING c.todo_id, c.rev
        )
        UPDATE todos t SET rev = latest.rev
          FROM (SELECT g.todo_id, max(g.rev) AS rev FROM renumbered g GROUP BY g.todo_id) latest
         WHERE t.list_id = list AND t.id = latest.todo_id;
        done := set_config('todopy.capturing', 'off', true);
    END IF;
    RETURN NULL;
END $$;
