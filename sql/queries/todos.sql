-- Named queries for todos. Every statement names the list in its WHERE clause.
-- Reads name the user too, and read the membership in the same statement (one
-- snapshot: a removal either precedes the read, and nothing is shown, or follows
-- it). Writes run through todopy.writes, which names the writer to the capture;
-- it assigns the revs, and checks the writer's role, at commit under the list's
-- lock, so a write takes no lock here but the rows it writes.

-- name: list
-- One statement, one snapshot: the rows and the list's rev they reflect, if the user is a member.
SELECT l.rev AS list_rev, t.id::text, t.title, t.completed, t.created_time, t.rev
  FROM lists l
  JOIN memberships m ON m.list_id = l.id AND m.user_id = %(user)s
  LEFT JOIN todos t ON t.list_id = l.id
                   AND (%(completed)s::boolean IS NULL OR t.completed = %(completed)s::boolean)
 WHERE l.id = %(list)s
 ORDER BY t.created_time, t.id

-- name: get
-- The id as text: Python writes it to JSON as it is (no UUID object made and unmade).
SELECT t.id::text, t.title, t.completed, t.created_time, t.rev
  FROM todos t JOIN memberships m ON m.list_id = t.list_id AND m.user_id = %(user)s
 WHERE t.id = %(id)s AND t.list_id = %(list)s

-- name: current_rev
SELECT rev FROM todos WHERE id = %(id)s AND list_id = %(list)s

-- name: find
-- Where a client-chosen id already is: this list's todo (is_retry: a retried create), or another list's.
SELECT list_id = %(list)s AS is_retry, id::text, title, completed, created_time, rev FROM todos WHERE id = %(id)s

-- name: create
-- Nothing is written when the id is taken (the caller finds out where); a full list is
-- refused at commit (the lists_todo_limit constraint). A todo deleted from this list and
-- created again with its id (undo) takes back its created time: its place in the list.
INSERT INTO todos (id, list_id, title, completed, created_time)
VALUES (%(id)s, %(list)s, %(title)s, %(completed)s,
        coalesce((SELECT r.created_time FROM retired_ids r WHERE r.id = %(id)s AND r.list_id = %(list)s),
                 clock_timestamp()))
ON CONFLICT (id) DO NOTHING

-- name: written
-- The change this transaction logged for the todo, with the rev its commit assigned; no row: not
-- written. Its columns are those changes.sql's `after` reads for the dispatcher, so the write's
-- own process hands it to its streams as it commits (todopy.realtime.dispatcher, `committed`);
-- an insert's or update's is also the todo as written (id, title, completed, created_time, rev).
-- Told by the change log's xid, the top transaction's (a row's xmin is a savepoint's own, when
-- an idempotent write runs under savepoints).
SELECT c.list_id::text, c.rev, c.kind, c.op, c.todo_id::text, c.title, c.completed, c.created_time,
       c.was_completed, c.user_id::text, c.role, c.changed_time,
       (SELECT u.username FROM users u WHERE u.id = c.by_user) AS by,
       NULL::text AS member_name, c.todo_id::text AS id
  FROM changes c
 WHERE c.xid = pg_current_xact_id_if_assigned() AND c.list_id = %(list)s AND c.todo_id = %(id)s

-- name: update
-- PUT and PATCH: absent fields (NULL) keep their value; If-Match is checked
-- against the row being updated, so a concurrent write makes it fail.
UPDATE todos
   SET title = coalesce(%(title)s, title), completed = coalesce(%(completed)s::boolean, completed)
 WHERE id = %(id)s AND list_id = %(list)s
   AND (%(if_revs)s::bigint[] IS NULL OR rev = ANY(%(if_revs)s::bigint[]))

-- name: delete
DELETE FROM todos
 WHERE id = %(id)s AND list_id = %(list)s
   AND (%(if_revs)s::bigint[] IS NULL OR rev = ANY(%(if_revs)s::bigint[]))

-- name: set_all_completed
-- Toggle all: only rows whose state differs change. Their rows are locked in id order first:
-- two bulk writes of one list then never wait for each other in a cycle, whatever plan each
-- statement gets (an index scan and a scan of the table visit rows in different orders).
WITH target AS (
    SELECT id FROM todos
     WHERE list_id = %(list)s AND completed <> %(completed)s
       AND (%(filter)s::boolean IS NULL OR completed = %(filter)s::boolean)
     ORDER BY id
       FOR NO KEY UPDATE)
UPDATE todos SET completed = %(completed)s
  FROM target
 WHERE todos.list_id = %(list)s AND todos.id = target.id

-- name: written_in_list
-- The list's rev after this transaction (its changes are the list's latest), and the todos
-- it wrote; the list's row alone when it wrote none, no row when the list is gone.
SELECT l.rev AS list_rev, t.id::text, t.title, t.completed, t.created_time, t.rev
  FROM lists l
  LEFT JOIN todos t ON t.list_id = l.id
                   AND t.id IN (SELECT c.todo_id FROM changes c
                                 WHERE c.xid = pg_current_xact_id_if_assigned() AND c.list_id = l.id)
 WHERE l.id = %(list)s
 ORDER BY t.created_time, t.id

-- name: list_rev
SELECT rev FROM lists WHERE id = %(list)s

-- name: delete_completed
-- Clear completed, its rows locked in id order first (see set_all_completed).
WITH target AS (SELECT id FROM todos WHERE list_id = %(list)s AND completed ORDER BY id FOR UPDATE)
DELETE FROM todos USING target WHERE todos.list_id = %(list)s AND todos.id = target.id

-- name: deleted_in_list
-- Clear completed: how many this transaction deleted, and the list's rev after it.
SELECT l.rev, (SELECT count(*) FROM changes c
                WHERE c.xid = pg_current_xact_id_if_assigned() AND c.list_id = l.id
                  AND c.kind = 'todo' AND c.op = 'delete') AS deleted
  FROM lists l
 WHERE l.id = %(list)s

-- name: expect_list_rev
-- After a bulk write with If-Match, once its revs are assigned: SQLSTATE TP412 when the list had moved on.
SELECT expect_list_rev(%(list)s, %(if_revs)s::bigint[]) AS rev
