-- Idempotency keys (issue 20; the IETF httpapi Idempotency-Key draft): a write sent
-- with a key is performed once per user and key, and its first response is kept
-- so that a retry gets it again instead of writing twice.
--
-- A row is inserted by the transaction that performs the write, at its end, with
-- the response: the key and the write commit together or not at all. Two requests
-- with one key never both write: the server holds a transaction-scoped advisory
-- lock on (user, key) from its look-up to its commit, and the second is refused
-- (409) while the first holds it.
CREATE TABLE idempotency_keys (
    user_id      uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    key          text NOT NULL,
    fingerprint  bytea NOT NULL,            -- sha256 of the request (method, path, query, If-Match, body)
    created_time timestamptz NOT NULL DEFAULT now(),
    status       smallint NOT NULL,
    headers      jsonb NOT NULL,            -- [[name, value], ...] as first answered
    body         bytea NOT NULL,
    PRIMARY KEY (user_id, key)
);

-- A user's live keys, counted against their bound (and the oldest of them, for Retry-After).
CREATE INDEX idempotency_keys_user_time ON idempotency_keys (user_id, created_time);
-- Housekeeping deletes expired keys of every user at once.
CREATE INDEX idempotency_keys_time ON idempotency_keys (created_time);
