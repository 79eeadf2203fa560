-- Take the rev lock before a statement touches any row, not after.
--
-- 0002 takes the transaction-level rev lock in a row trigger (after UPDATE has
-- locked its first row) or in DELETE's statement trigger (after every row is
-- locked). Two concurrent writers of one user's todos then deadlock: a toggle-all
-- holds the rev lock and waits for a row that a single-todo PATCH or DELETE has
-- locked, while that writer waits for the rev lock. PostgreSQL aborts one of them
-- ("deadlock detected"), and the client gets an error for an ordinary write.
--
-- A BEFORE STATEMENT trigger runs before any row is read for writing, so every
-- writer of todos takes the rev lock first and row locks after: one lock order,
-- no cycle. The row-level calls in 0002 stay; re-taking a lock the transaction
-- already holds is a no-op.

CREATE FUNCTION todos_lock_revs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM todo_rev_lock();
    RETURN NULL;
END $$;

CREATE TRIGGER todos_lock_revs BEFORE INSERT OR UPDATE OR DELETE ON todos
    FOR EACH STATEMENT EXECUTE FUNCTION todos_lock_revs();
