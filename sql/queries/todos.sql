-- Named queries for todos. Every statement names the owner in its WHERE
-- clause; writes return the new row, so no write reads before it writes.

-- name: list
-- One statement, one snapshot: the rows and the latest rev they reflect.
WITH head AS (SELECT coalesce(max(rev), 0) AS rev FROM changes)
SELECT head.rev, t.id, t.title, t.completed, t.created_time, t.rev
  FROM head
  LEFT JOIN todos t ON t.owner = %(owner)s
                   AND (%(completed)s::boolean IS NULL OR t.completed = %(completed)s::boolean)
 ORDER BY t.created_time, t.id

-- name: get
-- The id as text: Python writes it to JSON as it is (no UUID object made and unmade).
SELECT id::text, title, completed, created_time, rev FROM todos WHERE id = %(id)s AND owner = %(owner)s

-- name: current_rev
SELECT rev FROM todos WHERE id = %(id)s AND owner = %(owner)s

-- name: create
INSERT INTO todos (owner, title, completed) VALUES (%(owner)s, %(title)s, %(completed)s)
RETURNING id::text, title, completed, created_time, rev

-- name: update
-- PUT and PATCH: absent fields (NULL) keep their value; If-Match is checked
-- against the row being updated, so a concurrent write makes it fail.
UPDATE todos
   SET title = coalesce(%(title)s, title),
       completed = coalesce(%(completed)s::boolean, completed)
 WHERE id = %(id)s AND owner = %(owner)s
   AND (%(if_rev)s::bigint IS NULL OR rev = %(if_rev)s::bigint)
RETURNING id::text, title, completed, created_time, rev

-- name: delete
DELETE FROM todos
 WHERE id = %(id)s AND owner = %(owner)s
   AND (%(if_rev)s::bigint IS NULL OR rev = %(if_rev)s::bigint)
RETURNING id

-- name: set_all_completed
-- Toggle all: only rows whose state differs change (and get a new rev).
WITH changed AS (
    UPDATE todos SET completed = %(completed)s
     WHERE owner = %(owner)s AND completed <> %(completed)s
       AND (%(filter)s::boolean IS NULL OR completed = %(filter)s::boolean)
    RETURNING id, title, completed, created_time, rev
)
SELECT (SELECT coalesce(max(rev), 0) FROM changes), c.id, c.title, c.completed, c.created_time, c.rev
  FROM (SELECT 1) AS one LEFT JOIN changed c ON true
 ORDER BY c.created_time, c.id

-- name: delete_completed
-- Clear completed: (deleted, rev). Two statements in one message run as one
-- implicit transaction, so this is one round trip holding the rev lock only while
-- it runs. The rev must include the delete's own changes, which its AFTER
-- STATEMENT trigger logs when the first statement ends: the second statement
-- reads it, still under the lock (so it is exactly this delete's last rev), and
-- the count comes along in a transaction-local setting.
WITH gone AS (DELETE FROM todos WHERE owner = %(owner)s AND completed RETURNING 1)
SELECT set_config('todopy.deleted', count(*)::text, true) FROM gone;
SELECT current_setting('todopy.deleted')::bigint, coalesce(max(rev), 0) FROM changes
