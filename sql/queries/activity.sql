-- Named queries for a list's activity: its change log as one member may read it.

-- name: page
-- One page of a list's changes, newest first, as this user may see them: nothing when they
-- are not a member, nothing from before they (last) joined (their history starts there),
-- nothing the log no longer keeps. One statement, one snapshot: a removal either precedes
-- the read (no row at all: a 404) or follows it. The membership's row comes once with no
-- change columns when the page is empty, so a member is told from a stranger.
-- `limit` is the page's size plus one: the extra row says there is a next page.
SELECT c.rev, c.kind, c.op, c.todo_id::text AS id, c.title, c.completed, c.created_time, c.changed_time,
       c.role, (SELECT u.username FROM users u WHERE u.id = c.by_user) AS by,
       (SELECT u.username FROM users u WHERE u.id = c.user_id) AS member_name
  FROM memberships m
  LEFT JOIN LATERAL (
       SELECT * FROM changes c
        WHERE c.list_id = m.list_id AND c.rev >= m.joined_rev
          AND (%(before)s::bigint IS NULL OR c.rev < %(before)s::bigint)
        ORDER BY c.rev DESC
        LIMIT %(limit)s) c ON true
 WHERE m.list_id = %(list)s AND m.user_id = %(user)s
 ORDER BY c.rev DESC
