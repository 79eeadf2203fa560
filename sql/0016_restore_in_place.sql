-- Undo restores a deleted todo in its place: a todo created again, with its id, in the list
-- it was deleted from takes back its created time, and so its place in the list's order
-- (created time, then id). The server remembers that time itself: a client cannot move a
-- todo by claiming a created time, and nothing new is accepted from it.

ALTER TABLE retired_ids ADD COLUMN created_time timestamptz;    -- a deleted todo's; NULL for a list

-- What the change log still remembers of todos deleted before this migration.
UPDATE retired_ids r SET created_time = gone.created_time
  FROM (SELECT DISTINCT ON (c.todo_id) c.todo_id, c.list_id, c.created_time
          FROM changes c WHERE c.kind = 'todo' AND c.op = 'delete'
         ORDER BY c.todo_id, c.changed_time DESC) gone
 WHERE r.id = gone.todo_id AND r.list_id = gone.list_id;

CREATE OR REPLACE FUNCTION todos_retire_ids() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO retired_ids (id, list_id, created_time) SELECT id, list_id, created_time FROM gone
    ON CONFLICT (id) DO UPDATE SET list_id = excluded.list_id, created_time = excluded.created_time;
    RETURN NULL;
END $$;
