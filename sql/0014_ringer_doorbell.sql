-- The ringer's doorbell: a lone write reaches streams without waiting for an idle tick.
--
-- While changes flow the ringer ticks every few milliseconds and nobody rings. Once it has
-- been idle for a while it arms the doorbell and waits; a transaction's first staged change
-- then NOTIFYs it. Under load the doorbell stays unarmed, so writers never take NOTIFY's
-- commit-time lock (what serialised every commit before the ringer existed).
--
-- A sequence, not a row: its value is read live, whatever the reader's snapshot (sequences
-- are updated in place), so a repeatable-read writer cannot see a stale "unarmed". The
-- ringer arms it before a tick and sleeps only when that tick found no transaction in
-- progress: any writer that read "unarmed" had its xid by then, so it is either rung by that
-- tick or still in progress and keeps the ringer ticking (todopy/realtime/ringer.py).
CREATE SEQUENCE ringer_doorbell AS integer MINVALUE 0 MAXVALUE 1 START 0;    -- 1: armed

CREATE OR REPLACE FUNCTION capture_mark(list uuid) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN pending.value = '' THEN set_config('todopy.pending', list::text, true)
                     || CASE WHEN (SELECT last_value FROM ringer_doorbell) = 1
                             THEN (SELECT '' FROM pg_notify('todopy_doorbell', '')) ELSE '' END
                WHEN pending.value = list::text THEN pending.value
                ELSE set_config('todopy.pending', 'many', true) END
      FROM (SELECT coalesce(current_setting('todopy.pending', true), '') AS value) pending
$$;
