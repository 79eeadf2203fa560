-- The parts of a write's one transaction that are not the write itself (todopy/writes.py).

-- name: as_writer
-- Who writes, for the capture's access check at commit and the changes' `by_user`.
SELECT set_config('todopy.user', %(writer)s, true) AS writer, set_config('todopy.session', %(session)s, true) AS session

-- name: assign_revs
-- Run the capture's commit-time step now, at the end of the write: the read-back then sees the revs.
SET CONSTRAINTS ALL IMMEDIATE

-- name: wrote
-- Whether this transaction changed anything (a write with nothing else to read back): one row, or none.
SELECT true AS wrote FROM changes WHERE xid = pg_current_xact_id_if_assigned() LIMIT 1
