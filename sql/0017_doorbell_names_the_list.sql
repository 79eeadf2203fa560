-- The doorbell names the list (sql/0014_ringer_doorbell.sql): a lone write reaches streams in one hop.
--
-- While the ringer sleeps, a transaction's first staged change NOTIFYs the doorbell. Its
-- payload was empty: only the ringer heard it, ticked and rang the dispatchers, two more
-- hops between the commit and the streams. It now carries the list of that first change,
-- and every process's dispatcher hears it too and reads that list at once (reading a list
-- after its cursor is always safe: a list's committed revs are a prefix, since its revs are
-- taken under its lock at commit). The ringer still ticks and rings, for the other lists a
-- transaction wrote and for the lists streams; a ring at or below a cursor reads nothing.
-- Writers pay nothing more: the same one NOTIFY, only while the ringer sleeps.
CREATE OR REPLACE FUNCTION capture_mark(list uuid) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    pending text := current_setting('todopy.pending', true);
BEGIN
    IF pending IS NULL OR pending = '' THEN
        pending := set_config('todopy.pending', list::text, true);
        -- NULL or 0 unarmed, 1 armed.
        IF pg_sequence_last_value('ringer_doorbell') = 1 THEN
            PERFORM pg_notify('todopy_doorbell', list::text);
        END IF;
    ELSIF pending <> list::text AND pending <> 'many' THEN
        pending := set_config('todopy.pending', 'many', true);
    END IF;
    RETURN pending;
END $$;
