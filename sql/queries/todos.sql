-- Named queries for todos. Every statement names the list in its WHERE clause
-- (authorization has already checked the user's role in it); writes return the
-- new row, so no write reads before it writes.
--
-- Writes begin by locking their list's row (the `locked` CTE they join): the
-- trigger that gives each change its rev locks that row anyway, and taking it
-- before any todo row gives every writer one lock order (list, then todos), so a
-- toggle-all and a single-todo write of one list queue instead of deadlocking.
-- A row is locked only when the write reaches it, after the join has read the
-- list's row; and one statement is one round trip, prepared once per connection.

-- name: list
-- One statement, one snapshot: the rows and the list's rev they reflect.
SELECT l.rev AS list_rev, t.id::text, t.title, t.completed, t.created_time, t.rev
  FROM lists l
  LEFT JOIN todos t ON t.list_id = l.id
                   AND (%(completed)s::boolean IS NULL OR t.completed = %(completed)s::boolean)
 WHERE l.id = %(list)s
 ORDER BY t.created_time, t.id

-- name: get
-- The id as text: Python writes it to JSON as it is (no UUID object made and unmade).
SELECT id::text, title, completed, created_time, rev FROM todos WHERE id = %(id)s AND list_id = %(list)s

-- name: current_rev
SELECT rev FROM todos WHERE id = %(id)s AND list_id = %(list)s

-- name: find
-- Where a client-chosen id already is: this list's todo (a retried create), or another list's.
SELECT list_id = %(list)s AS here, id::text, title, completed, created_time, rev FROM todos WHERE id = %(id)s

-- name: create
-- Nothing is written when the id is taken or the list is full (the caller finds out which).
WITH locked AS (SELECT id, todo_count FROM lists WHERE id = %(list)s FOR NO KEY UPDATE)
INSERT INTO todos (id, list_id, title, completed)
SELECT coalesce(%(id)s::uuid, gen_random_uuid()), locked.id, %(title)s, %(completed)s
  FROM locked
 WHERE locked.todo_count < %(max_todos)s
   AND (%(id)s::uuid IS NULL OR NOT EXISTS (SELECT 1 FROM todos WHERE id = %(id)s::uuid))
RETURNING id::text, title, completed, created_time, rev

-- name: update
-- PUT and PATCH: absent fields (NULL) keep their value; If-Match is checked
-- against the row being updated, so a concurrent write makes it fail.
WITH locked AS (SELECT id FROM lists WHERE id = %(list)s FOR NO KEY UPDATE)
UPDATE todos
   SET title = coalesce(%(title)s, todos.title),
       completed = coalesce(%(completed)s::boolean, todos.completed)
  FROM locked
 WHERE todos.id = %(id)s AND todos.list_id = locked.id
   AND (%(if_revs)s::bigint[] IS NULL OR todos.rev = ANY(%(if_revs)s::bigint[]))
RETURNING todos.id::text, todos.title, todos.completed, todos.created_time, todos.rev

-- name: delete
WITH locked AS (SELECT id FROM lists WHERE id = %(list)s FOR NO KEY UPDATE)
DELETE FROM todos USING locked
 WHERE todos.id = %(id)s AND todos.list_id = locked.id
   AND (%(if_revs)s::bigint[] IS NULL OR todos.rev = ANY(%(if_revs)s::bigint[]))
RETURNING todos.id

-- name: set_all_completed
-- Toggle all: only rows whose state differs change (and get a new rev, the last
-- of which is the list's rev after this write).
WITH locked AS (SELECT id FROM lists WHERE id = %(list)s FOR NO KEY UPDATE)
UPDATE todos SET completed = %(completed)s
  FROM locked
 WHERE todos.list_id = locked.id AND todos.completed <> %(completed)s
   AND (%(filter)s::boolean IS NULL OR todos.completed = %(filter)s::boolean)
RETURNING todos.id::text, todos.title, todos.completed, todos.created_time, todos.rev

-- name: list_rev
SELECT rev FROM lists WHERE id = %(list)s

-- name: delete_completed
-- Clear completed: how many, and the list's rev after it (the locked row's rev is
-- the one before; each delete took the next).
WITH locked AS (SELECT id, rev FROM lists WHERE id = %(list)s FOR NO KEY UPDATE),
gone AS (DELETE FROM todos USING locked WHERE todos.list_id = locked.id AND todos.completed RETURNING 1)
SELECT (SELECT count(*) FROM gone) AS deleted, (SELECT rev FROM locked) + (SELECT count(*) FROM gone) AS rev

-- name: expect_list_rev
-- After a bulk write with If-Match, in its transaction: SQLSTATE TP412 when the list had moved on.
SELECT expect_list_rev(%(list)s, %(if_revs)s::bigint[]) AS rev
