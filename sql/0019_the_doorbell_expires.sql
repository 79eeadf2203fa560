-- The doorbell expires (sql/0014_ringer_doorbell.sql, sql/0017_doorbell_names_the_list.sql).
--
-- An idle ringer arms the doorbell and sleeps; a transaction's first change then NOTIFYs it.
-- Armed was a plain 1, left as it was when the ringer stopped: killed, cut off, or every
-- server shut down while SQL writers go on (a migration, a batch job). Every writing
-- transaction then sent a NOTIFY that nobody heard, and NOTIFY serialises commits (measured
-- with the servers stopped, 16 writers over 16 lists, fsync on: 26% of the trigger-free
-- rate, against 41% with a ringer awake).
--
-- The doorbell now holds the time (milliseconds since the epoch, the database's clock) until
-- which it is armed: the sleeping ringer arms it for one lease and arms it again at each
-- renewal (todopy/realtime/ringer.py), so it lapses with the ringer's lease. Writers ring
-- only before that time. Nothing depends on the ring for correctness: a sleeping ringer
-- still ticks at each renewal, and a new ringer reads what it missed.
ALTER SEQUENCE ringer_doorbell AS bigint MAXVALUE 9223372036854775807;

CREATE OR REPLACE FUNCTION capture_count(list uuid, todos int, added int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    pending text := current_setting('todopy.pending', true);
    done text;
BEGIN
    IF pending IS NULL OR pending = '' THEN
        done := set_config('todopy.pending', list::text, true);
        done := set_config('todopy.n', todos::text, true);
        done := set_config('todopy.added', added::text, true);
        -- Armed until a time in the future: ring (NULL or 0: unarmed; a time past: the ringer that
        -- armed it stopped renewing it).
        IF pg_sequence_last_value('ringer_doorbell') > extract(epoch FROM clock_timestamp()) * 1000 THEN
            PERFORM pg_notify('todopy_doorbell', list::text);
        END IF;
    ELSIF pending = list::text THEN
        IF todos <> 0 THEN
            done := set_config('todopy.n', (current_setting('todopy.n')::bigint + todos)::text, true);
        END IF;
        IF added <> 0 THEN
            done := set_config('todopy.added', (current_setting('todopy.added')::bigint + added)::text, true);
        END IF;
    ELSE
        IF pending <> 'many' THEN
            INSERT INTO capture_lists (list_id, todos, added)
            VALUES (pending::uuid, current_setting('todopy.n')::bigint, current_setting('todopy.added')::bigint);
            done := set_config('todopy.pending', 'many', true);
        END IF;
        INSERT INTO capture_lists (list_id, todos, added) VALUES (list, todos, added);
    END IF;
END $$;
