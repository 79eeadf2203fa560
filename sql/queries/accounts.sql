-- Named queries for users, sessions and sign-in throttling.

-- name: create_user
-- A trigger gives the new user a personal list; `registered` reads the user back with it.
WITH created AS (
    INSERT INTO users (username, password_hash) VALUES (%(username)s, %(password_hash)s)
    ON CONFLICT DO NOTHING
    RETURNING id, username
)
SELECT id, username FROM created

-- name: registered
SELECT id, username, personal_list(id) AS personal_list FROM users WHERE id = %(user_id)s

-- name: user_by_name
SELECT u.id, u.username, u.password_hash, l.id AS personal_list
  FROM users u JOIN lists l ON l.owner = u.id AND l.personal
 WHERE lower(u.username) = lower(%(username)s)

-- name: create_session
INSERT INTO sessions (token_hash, user_id, expires_time)
VALUES (%(token_hash)s, %(user_id)s, now() + make_interval(secs => %(ttl)s))

-- name: session_user
SELECT u.id, u.username, l.id AS personal_list
  FROM sessions s JOIN users u ON u.id = s.user_id JOIN lists l ON l.owner = u.id AND l.personal
 WHERE s.token_hash = %(token_hash)s AND s.expires_time > now()

-- name: invalid_tokens
-- Of these token hashes, those whose session was revoked or expired.
SELECT h AS token_hash FROM unnest(%(token_hashes)s::bytea[]) AS h
 WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.token_hash = h AND s.expires_time > now())

-- name: delete_session
DELETE FROM sessions WHERE token_hash = %(token_hash)s

-- name: forget_old_failures
-- A day without attempts forgets a name's failures (rows for names guessed at random would pile up).
DELETE FROM login_throttle
 WHERE updated_time < now() - interval '1 day' AND (locked_until IS NULL OR locked_until < now())

-- name: delete_expired_sessions
DELETE FROM sessions WHERE expires_time <= now()

-- name: begin_attempt
-- Counts this attempt as a failure *before* its password is checked, in one
-- atomic statement: concurrent guesses queue on the row, so no more than
-- max_failures of them in a row get checked (checking first and counting after
-- let 30 parallel guesses all through). The attempt that reaches max_failures
-- starts the lock; a correct password clears it all (clear_failures).
-- No row returned: the name is locked, refuse without checking.
INSERT INTO login_throttle AS t (name_key, failures, locked_until)
VALUES (lower(%(username)s), 1, CASE WHEN 1 >= %(max_failures)s
        THEN now() + make_interval(secs => %(cooldown)s) END)
ON CONFLICT (name_key) DO UPDATE
   SET failures = t.failures + 1,
       locked_until = CASE WHEN t.failures + 1 >= %(max_failures)s
                           THEN now() + make_interval(secs => %(cooldown)s) END,
       updated_time = now()
 WHERE t.locked_until IS NULL OR t.locked_until <= now()
RETURNING failures

-- name: throttle_state
-- Seconds until sign-in is allowed again for this name (0 or less: allowed).
SELECT extract(epoch FROM locked_until - now()) AS seconds FROM login_throttle WHERE name_key = lower(%(username)s)

-- name: clear_failures
DELETE FROM login_throttle WHERE name_key = lower(%(username)s)
