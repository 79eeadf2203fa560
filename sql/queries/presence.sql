-- Named queries for presence (todopy/realtime/presence.py): it writes no table.

-- name: announce
-- This process's people in some lists, to every process's listener.
SELECT pg_notify(%(channel)s, %(payload)s) AS sent
