-- Named queries for idempotency keys (todopy/idempotency.py). `keep_seconds` is
-- how long a key is remembered: an older row is as good as absent, before and
-- after housekeeping deletes it.

-- name: lock
-- Held until the transaction ends: one request at a time per (user, key). The
-- two-key form is its own space, apart from the server's one-key advisory locks.
SELECT pg_try_advisory_xact_lock(20, hashtext(%(user)s::text || ':' || %(key)s)) AS locked

-- name: find
-- The key's first response if it is live; else how many live keys the user has
-- (counted up to the bound) and when the oldest of them expires.
SELECT k.fingerprint, k.status, k.headers, k.body,
       (SELECT count(*) FROM (SELECT 1 FROM idempotency_keys
                               WHERE user_id = %(user)s AND created_time > now() - make_interval(secs => %(keep_seconds)s)
                               LIMIT %(max_keys)s) live) AS live,
       (SELECT ceil(extract(epoch FROM min(created_time) + make_interval(secs => %(keep_seconds)s) - now()))::integer
          FROM idempotency_keys
         WHERE user_id = %(user)s AND created_time > now() - make_interval(secs => %(keep_seconds)s)) AS oldest_expires_in
  FROM (SELECT 1) one
  LEFT JOIN idempotency_keys k ON k.user_id = %(user)s AND k.key = %(key)s
                              AND k.created_time > now() - make_interval(secs => %(keep_seconds)s)

-- name: store
-- In the write's own transaction, under the lock: an expired row of the same key is replaced.
INSERT INTO idempotency_keys (user_id, key, fingerprint, status, headers, body)
VALUES (%(user)s, %(key)s, %(fingerprint)s, %(status)s, %(headers)s, %(body)s)
ON CONFLICT (user_id, key) DO UPDATE
   SET fingerprint = EXCLUDED.fingerprint, created_time = EXCLUDED.created_time, status = EXCLUDED.status,
       headers = EXCLUDED.headers, body = EXCLUDED.body

-- name: prune
DELETE FROM idempotency_keys WHERE created_time <= now() - make_interval(secs => %(keep_seconds)s)
