-- Named queries over the change log, for the dispatcher, the ringer and streams.
-- `after` and `resume` select a change's columns as todopy.realtime.changes.Change reads them.

-- name: heads
-- The latest rev and the pruning horizon of each of these lists (a missing list is
-- deleted: its last change says so).
SELECT id::text, rev, horizon FROM lists WHERE id = ANY(%(lists)s::uuid[])

-- name: after
-- The dispatcher's batch: the changes after each list's cursor, in rev (= commit) order per list.
-- LATERAL makes each list one range read of the primary key, whatever the log's size: as a
-- plain join, the prepared statement's generic plan became a merge join that walked the
-- whole index (7 ms at 10,000 changes, growing with the log, on every wake-up).
-- `by` (the author's username) and `member_name` (a membership change's member's) are looked up
-- per change read, after the LIMIT: a key look-up each, the range read's plan untouched.
SELECT c.list_id::text, c.rev, c.kind, c.op, c.todo_id::text, c.title, c.completed, c.created_time,
       c.was_completed, c.user_id::text, c.role, c.changed_time,
       (SELECT u.username FROM users u WHERE u.id = c.by_user) AS by,
       (SELECT u.username FROM users u WHERE u.id = c.user_id) AS member_name
  FROM unnest(%(lists)s::uuid[], %(revs)s::bigint[]) AS cursor (list_id, rev)
 CROSS JOIN LATERAL (
       SELECT * FROM changes c WHERE c.list_id = cursor.list_id AND c.rev > cursor.rev
        ORDER BY c.rev LIMIT %(limit)s) c
 ORDER BY c.list_id, c.rev
 LIMIT %(limit)s

-- name: resume
-- A stream's missed changes after `since`, with its list's head and the user's
-- membership, in one snapshot: a removal either precedes it (no member: the stream
-- closes) or follows it (it is one of the changes the stream is then sent).
-- The gap is resumable when the log still holds it, it is not past the head (another
-- database's rev), it holds no change from before the member (last) joined (their
-- history starts with their joining: a snapshot instead), and it is at most `limit` long; else no change
-- comes (a snapshot will), and the rev bound keeps the index scan that short either way.
SELECT l.rev AS head, m.role IS NOT NULL AS member, gap.resumable,
       c.list_id::text, c.rev, c.kind, c.op, c.todo_id::text, c.title, c.completed, c.created_time,
       c.was_completed, c.user_id::text, c.role, c.changed_time,
       (SELECT u.username FROM users u WHERE u.id = c.by_user) AS by,
       (SELECT u.username FROM users u WHERE u.id = c.user_id) AS member_name
  FROM lists l
  LEFT JOIN memberships m ON m.list_id = l.id AND m.user_id = %(user)s
 CROSS JOIN LATERAL (SELECT m.role IS NOT NULL
                            AND %(since)s::bigint BETWEEN greatest(l.horizon, m.joined_rev - 1) AND l.rev
                            AND l.rev - %(since)s::bigint <= %(limit)s AS resumable) gap
  LEFT JOIN changes c ON gap.resumable AND c.list_id = l.id
                     AND c.rev > %(since)s::bigint AND c.rev <= %(since)s::bigint + %(limit)s
 WHERE l.id = %(list)s
 ORDER BY c.rev

-- name: todo_snapshot
-- One todo and its list's rev, if the user is a member (one snapshot, as for `resume`).
SELECT l.rev AS list_rev, t.id::text, t.title, t.completed, t.created_time, t.rev
  FROM lists l
  JOIN memberships m ON m.list_id = l.id AND m.user_id = %(user)s
  JOIN todos t ON t.list_id = l.id
 WHERE l.id = %(list)s AND t.id = %(id)s

-- name: ring
-- The ringer's tick: what committed since the previous snapshot (PgQ's batches:
-- xids at or past its xmax, or in progress then, and visible now), per list its
-- head rev, whether the list itself or its members changed, and whose membership
-- did; one NOTIFY naming them (or '*', "look at every list", past NOTIFY's size
-- limit). One statement, so `pg_current_snapshot()` is the snapshot it reads
-- with, and one round trip per tick. The previous snapshot comes in as its xmax
-- and its in-progress xids, and each half is its own branch: both are index
-- look-ups on changes_xid whatever the log's size (an OR of them, or a join to
-- pg_snapshot_xip(), is planned as a scan of the whole log). The ringer's session
-- turns sequential scans off (todopy/realtime/ringer.py): the prepared statement's
-- generic plan cannot know that `xid >= xmax` is only the last moments' rows.
WITH now_ AS (SELECT pg_current_snapshot() AS snap),
since AS (
    SELECT list_id, rev, kind, user_id, changed_time, xid FROM changes WHERE xid >= %(xmax)s::xid8
    UNION ALL
    SELECT list_id, rev, kind, user_id, changed_time, xid FROM changes WHERE xid = ANY(%(xip)s::xid8[])
),
moved AS (
    SELECT c.list_id, max(c.rev) AS rev, bool_or(c.kind <> 'todo') AS meta,
           array_agg(DISTINCT c.user_id) FILTER (WHERE c.kind = 'member') AS users,
           min(c.changed_time) AS oldest
      FROM since c, now_
     WHERE pg_visible_in_snapshot(c.xid, now_.snap)
     GROUP BY c.list_id
),
payload AS (SELECT json_agg(json_build_array(list_id, rev, meta, users))::text AS lists,
                   extract(epoch FROM min(oldest))::float8 AS oldest FROM moved)
SELECT (SELECT snap::text FROM now_) AS snapshot, payload.oldest,
       CASE WHEN payload.lists IS NOT NULL
            THEN pg_notify('todopy_ring', CASE WHEN length(payload.lists) <= 7000 THEN payload.lists ELSE '*' END)
       END AS rung
  FROM payload

-- name: ring_recent
-- A new ringer's first look: did anything commit in the last seconds (its predecessor
-- may have died before ringing it)? Its snapshot is the next tick's start.
SELECT pg_current_snapshot()::text AS snapshot,
       EXISTS (SELECT 1 FROM changes WHERE changed_time > now() - make_interval(secs => %(seconds)s)) AS recent

-- name: oldest_writer
-- The oldest transaction still open that holds the ringer's horizon back.
SELECT pid, usename, application_name, extract(epoch FROM now() - xact_start)::float8 AS seconds
  FROM pg_stat_activity
 WHERE backend_xid IS NOT NULL AND state <> 'active' AND xact_start < now() - make_interval(secs => %(seconds)s)
 ORDER BY xact_start LIMIT 1

-- name: prune
SELECT prune_changes(make_interval(secs => %(keep_seconds)s)) AS pruned
