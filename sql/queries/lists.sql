-- Named queries for lists and their members. The columns of a list as the API
-- shows it are always: id, title, role, personal, created_time, rev.

-- name: of_user
-- The lists a user is a member of, oldest first.
SELECT l.id::text, l.title, m.role, l.personal, l.created_time, l.rev
  FROM memberships m JOIN lists l ON l.id = m.list_id
 WHERE m.user_id = %(user)s
 ORDER BY l.created_time, l.id

-- name: membership
-- One list as this user sees it; no row: not a member (or no such list).
SELECT l.id::text, l.title, m.role, l.personal, l.created_time, l.rev
  FROM memberships m JOIN lists l ON l.id = m.list_id
 WHERE m.list_id = %(list)s AND m.user_id = %(user)s

-- name: lock_user
-- Every path that adds a membership takes the user's row first, in the transaction
-- that then counts their lists: concurrent creations and adds queue here, and each
-- counts the others (a new statement sees what they committed).
SELECT id FROM users WHERE id = %(user)s FOR NO KEY UPDATE

-- name: create
-- After lock_user. Nothing is written when the id is taken or the user is at the quota.
-- The owner's membership, added by a trigger after the row, is the list's first change:
-- rev 1 (assigned at commit).
INSERT INTO lists (id, owner, title)
SELECT coalesce(%(id)s::uuid, gen_random_uuid()), %(user)s, %(title)s
 WHERE (SELECT count(*) FROM memberships WHERE user_id = %(user)s) < %(max_lists)s
   AND (%(id)s::uuid IS NULL OR NOT EXISTS (SELECT 1 FROM lists WHERE id = %(id)s::uuid))
RETURNING id::text, title, 'owner' AS role, personal, created_time, 1::bigint AS rev

-- name: find
-- A client-chosen list id: whose is it? (is_retry: the user's own list, a retried create; else someone else's)
SELECT l.owner = %(user)s AND m.role IS NOT NULL AS is_retry,
       l.id::text, l.title, m.role, l.personal, l.created_time, l.rev
  FROM lists l LEFT JOIN memberships m ON m.list_id = l.id AND m.user_id = %(user)s
 WHERE l.id = %(id)s

-- name: rename
UPDATE lists SET title = %(title)s
 WHERE id = %(list)s AND (%(if_revs)s::bigint[] IS NULL OR rev = ANY(%(if_revs)s::bigint[]))

-- name: renamed
-- The list as this transaction left it, with the rev its commit assigned; no row: not renamed.
SELECT id::text, title, %(role)s AS role, personal, created_time, rev
  FROM lists
 WHERE id = %(list)s AND xmin = xid(pg_current_xact_id_if_assigned())

-- name: rev
SELECT rev FROM lists WHERE id = %(list)s

-- name: delete
DELETE FROM lists
 WHERE id = %(list)s AND NOT personal AND (%(if_revs)s::bigint[] IS NULL OR rev = ANY(%(if_revs)s::bigint[]))

-- name: members
-- Owner first, then by username.
SELECT u.id::text, u.username, m.role
  FROM memberships m JOIN users u ON u.id = m.user_id
 WHERE m.list_id = %(list)s
 ORDER BY m.role <> 'owner', lower(u.username)

-- name: user_by_name
SELECT id::text, username FROM users WHERE lower(username) = lower(%(username)s)

-- name: member_role
SELECT role FROM memberships WHERE list_id = %(list)s AND user_id = %(user)s

-- name: lock_list
-- Taken before counting a list's members, in the same transaction (then lock_user of the
-- one added: always list, then user, so two adds never wait for each other in a cycle).
SELECT id FROM lists WHERE id = %(list)s FOR NO KEY UPDATE

-- name: member_counts
-- After lock_list and lock_user: the list's members, the user's lists, and their role here.
SELECT (SELECT count(*) FROM memberships WHERE list_id = %(list)s) AS members,
       (SELECT count(*) FROM memberships WHERE user_id = %(user)s) AS lists,
       (SELECT role FROM memberships WHERE list_id = %(list)s AND user_id = %(user)s) AS role

-- name: put_member
-- Add or change a member's role (never the owner's). `added` tells 201 from 200; no
-- row: the role was already that.
INSERT INTO memberships AS m (list_id, user_id, role) VALUES (%(list)s, %(user)s, %(role)s)
ON CONFLICT (list_id, user_id) DO UPDATE SET role = excluded.role
 WHERE m.role <> 'owner' AND m.role <> excluded.role
RETURNING (xmax = 0) AS added

-- name: remove_member
DELETE FROM memberships WHERE list_id = %(list)s AND user_id = %(user)s AND role <> 'owner'
