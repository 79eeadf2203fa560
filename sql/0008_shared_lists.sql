-- Shared lists, per-list revisions, and a change log without NOTIFY.
--
-- The list is the unit of sharing, ordering and streaming. Every todo belongs to
-- exactly one list; people are members of a list with a role (owner, editor,
-- viewer); every user has one personal list, made with the account.
--
-- Order per list, no cluster-wide lock: a list's `rev` is a column of its row.
-- Every change in the list (a todo's insert, update or delete, a membership
-- change, a new title) bumps it inside the writing statement, so writers of one
-- list queue on that row until they commit (rev order is commit order within
-- the list) and writers of different lists never wait for each other.
--
-- No NOTIFY in any writing transaction: NOTIFY takes a cluster-wide lock from
-- pre-commit through the WAL flush, so notifying commits go one at a time.
-- Writers only bump their list's rev and append to `changes`; each row records
-- the writer's transaction id (xid8), and one elected process (the ringer, see
-- todopy/realtime/ringer.py) finds what committed since its last look and sends
-- one NOTIFY per tick, in a transaction of its own.
--
-- Existing data: every user gets a personal list holding their todos, with its
-- rev and pruning horizon at the old global head. A stream resuming with an old
-- `since` equal to that head resumes exactly (nothing changed in its list since);
-- any older `since` is behind the horizon and gets a snapshot.

-- The old write path: a global sequence under an advisory lock, and NOTIFY per statement.
DROP TRIGGER todos_lock_revs ON todos;
DROP TRIGGER todos_assign_rev ON todos;
DROP TRIGGER todos_log_insert ON todos;
DROP TRIGGER todos_log_update ON todos;
DROP TRIGGER todos_log_delete ON todos;
DROP FUNCTION todos_lock_revs(), todos_assign_rev(), todos_log_insert(), todos_log_update(),
              todos_log_delete(), todos_notify(text, bigint, bigint, bigint, uuid, uuid), todo_rev_lock(),
              prune_changes(interval, bigint);

CREATE TABLE lists (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner         uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    title         varchar(512) NOT NULL CHECK (title <> ''),
    personal      boolean NOT NULL DEFAULT false,
    created_time  timestamptz NOT NULL DEFAULT clock_timestamp(),
    rev           bigint NOT NULL DEFAULT 0,       -- the list's latest change
    todo_count    integer NOT NULL DEFAULT 0,      -- kept by the todos trigger, for the quota
    horizon       bigint NOT NULL DEFAULT 0        -- the highest rev that may have been pruned
);
CREATE UNIQUE INDEX lists_personal ON lists (owner) WHERE personal;
CREATE INDEX lists_owner ON lists (owner);

CREATE TABLE memberships (
    list_id  uuid NOT NULL REFERENCES lists ON DELETE CASCADE,
    user_id  uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    role     text NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    PRIMARY KEY (list_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

-- Every existing user's personal list, at the old global head.
CREATE TEMPORARY TABLE old_head ON COMMIT DROP AS
SELECT greatest((SELECT coalesce(max(rev), 0) FROM changes), (SELECT coalesce(max(rev), 0) FROM todos),
                (SELECT last_value FROM todo_rev)) AS rev;
INSERT INTO lists (owner, title, personal, rev, horizon, created_time, todo_count)
SELECT u.id, 'Todos', true, h.rev, h.rev, u.created_time,
       (SELECT count(*) FROM todos t WHERE t.owner = u.id)
  FROM users u CROSS JOIN old_head h;
INSERT INTO memberships (list_id, user_id, role) SELECT id, owner, 'owner' FROM lists;

ALTER TABLE todos ADD COLUMN list_id uuid;
UPDATE todos t SET list_id = l.id FROM lists l WHERE l.owner = t.owner AND l.personal;
ALTER TABLE todos ALTER COLUMN list_id SET NOT NULL,
    ADD FOREIGN KEY (list_id) REFERENCES lists ON DELETE CASCADE;
DROP INDEX todos_owner_order;
ALTER TABLE todos DROP COLUMN owner;
CREATE INDEX todos_list_order ON todos (list_id, created_time, id);

-- The change log, keyed by (list, rev). Old rows were numbered by the global
-- sequence; every list's horizon is past them, so nothing reads them again.
DROP TABLE changes, changelog_horizon;
DROP SEQUENCE todo_rev;
CREATE TABLE changes (
    list_id        uuid NOT NULL,
    rev            bigint NOT NULL,
    -- todo: a todo's insert/update/delete; list: the list's title changed or it was
    -- deleted; member: user_id's membership was inserted/updated/deleted (role after).
    kind           text NOT NULL CHECK (kind IN ('todo', 'list', 'member')),
    op             text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    todo_id        uuid,
    title          varchar(512),
    completed      boolean,
    created_time   timestamptz,
    -- `completed` before the change (todo updates only): lets live queries tell a
    -- row entering or leaving their predicate without remembering rows.
    was_completed  boolean,
    user_id        uuid,
    role           text,
    -- The writer's transaction: the ringer finds what committed since its last tick by it.
    xid            xid8 NOT NULL DEFAULT pg_current_xact_id(),
    changed_time   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (list_id, rev)
);
-- The ringer's look-up: transactions newer than its last snapshot, or in progress then.
CREATE INDEX changes_xid ON changes (xid);
-- Pruning by age: rows are appended in time order, so a BRIN index (a few pages)
-- finds old rows without the cost of a btree on every insert.
CREATE INDEX changes_changed_time ON changes USING brin (changed_time);

-- A change in a list: bump its rev (locking its row until commit) and log the change.
CREATE FUNCTION todos_log() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE next_rev bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE lists SET rev = rev + 1, todo_count = todo_count - 1 WHERE id = OLD.list_id
        RETURNING rev INTO next_rev;
        -- Not found: the list itself is being deleted (its own change says so).
        IF FOUND THEN
            INSERT INTO changes (list_id, rev, kind, op, todo_id, title, completed, created_time)
            VALUES (OLD.list_id, next_rev, 'todo', 'delete', OLD.id, OLD.title, OLD.completed, OLD.created_time);
        END IF;
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        -- Identity never changes; a todo cannot move to another list.
        NEW.id := OLD.id;
        NEW.list_id := OLD.list_id;
        NEW.created_time := OLD.created_time;
        UPDATE lists SET rev = rev + 1 WHERE id = NEW.list_id RETURNING rev INTO next_rev;
    ELSE
        UPDATE lists SET rev = rev + 1, todo_count = todo_count + 1 WHERE id = NEW.list_id
        RETURNING rev INTO next_rev;
    END IF;
    IF NOT FOUND THEN
        RAISE foreign_key_violation USING MESSAGE = format('list %s does not exist', NEW.list_id);
    END IF;
    NEW.rev := next_rev;
    INSERT INTO changes (list_id, rev, kind, op, todo_id, title, completed, created_time, was_completed)
    VALUES (NEW.list_id, next_rev, 'todo', lower(TG_OP), NEW.id, NEW.title, NEW.completed, NEW.created_time,
            CASE WHEN TG_OP = 'UPDATE' THEN OLD.completed END);
    RETURN NEW;
END $$;

-- One row trigger does it all: a plpgsql call per row is the trigger's main cost,
-- so there is no second (statement) trigger and no transition table.
CREATE TRIGGER todos_log BEFORE INSERT OR UPDATE OR DELETE ON todos
    FOR EACH ROW EXECUTE FUNCTION todos_log();

CREATE FUNCTION lists_log_title() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.rev := OLD.rev + 1;
    INSERT INTO changes (list_id, rev, kind, op, title) VALUES (NEW.id, NEW.rev, 'list', 'update', NEW.title);
    RETURN NEW;
END $$;
-- Only a new title is a change of the list; rev bumps by the other triggers are not.
CREATE TRIGGER lists_log_title BEFORE UPDATE ON lists
    FOR EACH ROW WHEN (OLD.title IS DISTINCT FROM NEW.title) EXECUTE FUNCTION lists_log_title();

-- Logged before the row goes: the cascade to todos and memberships then finds
-- no list to bump and logs nothing more.
CREATE FUNCTION lists_log_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO changes (list_id, rev, kind, op, title) VALUES (OLD.id, OLD.rev + 1, 'list', 'delete', OLD.title);
    RETURN OLD;
END $$;
CREATE TRIGGER lists_log_delete BEFORE DELETE ON lists
    FOR EACH ROW EXECUTE FUNCTION lists_log_delete();

-- Whoever creates a list owns it.
CREATE FUNCTION lists_add_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO memberships (list_id, user_id, role) VALUES (NEW.id, NEW.owner, 'owner');
    RETURN NULL;
END $$;
CREATE TRIGGER lists_add_owner AFTER INSERT ON lists
    FOR EACH ROW EXECUTE FUNCTION lists_add_owner();

CREATE FUNCTION memberships_log() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE next_rev bigint; list uuid; member uuid; new_role text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        list := OLD.list_id; member := OLD.user_id;
    ELSE
        list := NEW.list_id; member := NEW.user_id; new_role := NEW.role;
    END IF;
    UPDATE lists SET rev = rev + 1 WHERE id = list RETURNING rev INTO next_rev;
    IF FOUND THEN
        INSERT INTO changes (list_id, rev, kind, op, user_id, role)
        VALUES (list, next_rev, 'member', lower(TG_OP), member, new_role);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER memberships_log AFTER INSERT OR UPDATE OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION memberships_log();

-- Every account comes with its personal list, whoever inserts the user.
CREATE FUNCTION users_add_personal_list() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO lists (owner, title, personal) VALUES (NEW.id, 'Todos', true);
    RETURN NULL;
END $$;
CREATE TRIGGER users_add_personal_list AFTER INSERT ON users
    FOR EACH ROW EXECUTE FUNCTION users_add_personal_list();

-- For psql users and scripts: INSERT INTO todos (list_id, title) VALUES (personal_list(<user id>), '...').
CREATE FUNCTION personal_list(user_id uuid) RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT id FROM lists WHERE owner = user_id AND personal $$;

-- Pruning by age, list by list's horizon: a stream can resume from `since` only
-- when since >= its list's horizon; older resumes get a snapshot.
CREATE FUNCTION prune_changes(keep interval) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE pruned bigint;
BEGIN
    WITH gone AS (
        DELETE FROM changes WHERE changed_time < now() - keep RETURNING list_id, rev
    ), per_list AS (
        SELECT list_id, max(rev) AS rev, count(*) AS n FROM gone GROUP BY list_id
    ), moved AS (
        UPDATE lists l SET horizon = p.rev FROM per_list p WHERE l.id = p.list_id AND l.horizon < p.rev
    )
    SELECT coalesce(sum(n), 0) INTO pruned FROM per_list;
    RETURN pruned;
END $$;
