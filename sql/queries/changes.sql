-- Named queries over the change log, for the dispatcher and for streams.
-- Columns after the first ones are always those of todopy.realtime.changes.Change.

-- name: head_rev
SELECT coalesce(max(rev), 0) FROM changes

-- name: horizon
SELECT rev FROM changelog_horizon

-- name: after
-- The dispatcher's batch: everything committed after `rev`, in rev (= commit) order.
SELECT rev, op, todo_id, owner, title, completed, created_time, was_completed, changed_time
  FROM changes WHERE rev > %(rev)s ORDER BY rev LIMIT %(limit)s

-- name: resume
-- A stream's missed changes, with the log's bounds, in one snapshot.
WITH head AS (SELECT coalesce(max(rev), 0) AS rev FROM changes)
SELECT head.rev, h.rev,
       c.rev, c.op, c.todo_id, c.owner, c.title, c.completed, c.created_time, c.was_completed, c.changed_time
  FROM head CROSS JOIN changelog_horizon h
  LEFT JOIN changes c ON c.owner = %(owner)s AND c.rev > %(since)s
 ORDER BY c.rev

-- name: todo_snapshot
SELECT (SELECT coalesce(max(rev), 0) FROM changes), id, title, completed, created_time, rev
  FROM todos WHERE id = %(id)s AND owner = %(owner)s

-- name: prune
SELECT prune_changes(make_interval(secs => %(keep_seconds)s), %(keep_rows)s)
