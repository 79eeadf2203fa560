-- Named queries of the ringer's election and lease (todopy/realtime/ringer.py).
-- The lease is renewed on the server's clock and judged on it, so hosts' clocks never matter.

-- name: elect
-- Stand for election: take the session advisory lock if free and, in the same statement,
-- renew the lease, so a new holder is never judged by its predecessor's stale lease.
WITH vote AS (SELECT pg_try_advisory_lock(%(lock)s) AS elected),
renewed AS (
    INSERT INTO ringer_lease (id, pid, renewed_time)
    SELECT true, pg_backend_pid(), now() FROM vote WHERE vote.elected
        ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, renewed_time = excluded.renewed_time
    RETURNING pid)
SELECT vote.elected FROM vote

-- name: renew
-- The holder's heartbeat, every quarter lease: the lease renewed, and an empty ring that
-- tells every listener the ringer is alive although nothing moved (no tick for a while
-- makes them read the log on their own).
WITH renewed AS (UPDATE ringer_lease SET pid = pg_backend_pid(), renewed_time = now() WHERE id RETURNING pid)
SELECT count(*) AS renewed, pg_notify('todopy_ring', '[]') AS rung FROM renewed

-- name: depose
-- A candidate's look at the lease: when it went unrenewed past `lease_s`, end the session
-- that holds the election's lock (the stalled holder; never a backend that merely reuses an
-- old pid), so the lock is free for the next election. The holder's silence and pid come back.
SELECT l.pid, pg_terminate_backend(l.pid) AS deposed,
       extract(epoch FROM now() - lease.renewed_time)::float8 AS silent_s
  FROM ringer_lease lease
  JOIN pg_locks l ON l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                 AND l.classid::int8 = %(lock)s::int8 >> 32 AND l.objid::int8 = %(lock)s::int8 & 4294967295
 WHERE lease.renewed_time < now() - make_interval(secs => %(lease_s)s)

-- name: arm_doorbell
-- The ringer goes to sleep: until `for_s` from now a transaction's first change rings it
-- (sql/0014_ringer_doorbell.sql). Armed again at each renewal, it lapses with the lease
-- (sql/0018_commit_reads_the_events.sql).
SELECT setval('ringer_doorbell', (extract(epoch FROM clock_timestamp()) * 1000)::bigint + (%(for_s)s * 1000)::bigint)

-- name: disarm_doorbell
-- The ringer is awake and ticking: writers need not ring.
SELECT setval('ringer_doorbell', 0)

-- name: listen_doorbell
-- The ringer hears its doorbell on its own connection (todopy.realtime.protocol.DOORBELL_CHANNEL).
LISTEN todopy_doorbell
