-- Ids are not reused across lists (docs/api.md, "Client-chosen ids").
--
-- A client that chose an id for a list or a todo may retry with it, and undo may
-- put a deleted todo back in its list with its id; but nobody may give a deleted
-- list's id, or a deleted todo's id, to something in another list: a stream or an
-- offline client still holding the old one would take the newcomer for it. The
-- live ids are in their tables; the deleted ones are kept here, for good.
--
-- Triggers of their own, one call per statement (transition tables), beside the
-- change-log triggers rather than in them: whoever writes (the server, psql) is
-- held to the rule, and the capture can change without touching it.

CREATE TABLE retired_ids (
    id       uuid PRIMARY KEY,
    list_id  uuid NOT NULL     -- the list it last belonged to; a list's own id names itself
);

-- What the change log still remembers of deleted lists and todos.
INSERT INTO retired_ids (id, list_id)
SELECT DISTINCT ON (todo_id) todo_id, list_id FROM changes
 WHERE kind = 'todo' AND op = 'delete' AND NOT EXISTS (SELECT 1 FROM todos t WHERE t.id = changes.todo_id)
 ORDER BY todo_id, changed_time DESC
ON CONFLICT DO NOTHING;
INSERT INTO retired_ids (id, list_id)
SELECT DISTINCT list_id, list_id FROM changes WHERE kind = 'list' AND op = 'delete'
ON CONFLICT (id) DO UPDATE SET list_id = excluded.list_id;

CREATE FUNCTION todos_retire_ids() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO retired_ids (id, list_id) SELECT id, list_id FROM gone
    ON CONFLICT (id) DO UPDATE SET list_id = excluded.list_id;
    RETURN NULL;
END $$;
-- Also fires for the todos a list's delete cascades to: they stay out of other lists too.
CREATE TRIGGER todos_retire_ids AFTER DELETE ON todos REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION todos_retire_ids();

CREATE FUNCTION lists_retire_ids() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO retired_ids (id, list_id) SELECT id, id FROM gone
    ON CONFLICT (id) DO UPDATE SET list_id = excluded.list_id;
    RETURN NULL;
END $$;
CREATE TRIGGER lists_retire_ids AFTER DELETE ON lists REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION lists_retire_ids();

-- A unique_violation, as a live id taken would raise: writers already handle that one.
CREATE FUNCTION todos_refuse_retired_ids() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE taken uuid;
BEGIN
    SELECT a.id INTO taken FROM added a JOIN retired_ids r ON r.id = a.id AND r.list_id <> a.list_id LIMIT 1;
    IF FOUND THEN
        RAISE unique_violation USING MESSAGE = format('id %s is taken: it belonged to another list', taken),
                                     CONSTRAINT = 'retired_ids_pkey';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER todos_refuse_retired_ids AFTER INSERT ON todos REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION todos_refuse_retired_ids();

CREATE FUNCTION lists_refuse_retired_ids() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE taken uuid;
BEGIN
    SELECT a.id INTO taken FROM added a JOIN retired_ids r ON r.id = a.id LIMIT 1;
    IF FOUND THEN
        RAISE unique_violation USING MESSAGE = format('id %s is taken: a deleted list or todo had it', taken),
                                     CONSTRAINT = 'retired_ids_pkey';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER lists_refuse_retired_ids AFTER INSERT ON lists REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION lists_refuse_retired_ids();
