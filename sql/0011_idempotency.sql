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

-- If-Match with a list's ETag on a bulk write (toggle all, clear completed). Called in
-- the writing transaction after the write, once its changes have their revs (and the
-- list's row is locked by this transaction, if it changed anything), so the answer
-- holds until commit: the list's rev before this transaction's own changes must be
-- one of `revs`. Otherwise it raises SQLSTATE TP412, DETAIL that rev (the list's own): the
-- caller answers 412 and the transaction, write included, rolls back. NULL `revs` (no
-- If-Match): no check. Returns the list's rev now; NULL: no such list.
-- It counts this transaction's changes of the list (`changes.xid`), so it holds however
-- revs are assigned, during the statement or at commit (after SET CONSTRAINTS ALL IMMEDIATE).
CREATE FUNCTION expect_list_rev(list uuid, revs bigint[]) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    now_rev bigint;
    mine bigint;
BEGIN
    SELECT l.rev INTO now_rev FROM lists l WHERE l.id = list;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT count(*) INTO mine FROM changes c WHERE c.list_id = list AND c.xid = pg_current_xact_id_if_assigned();
    IF revs IS NOT NULL AND NOT (now_rev - mine) = ANY(revs) THEN
        RAISE EXCEPTION 'the list has changed since the rev If-Match named'
            USING ERRCODE = 'TP412', DETAIL = (now_rev - mine)::text;
    END IF;
    RETURN now_rev;
END $$;
