-- Pruning the change log. `changelog_horizon.rev` is the highest rev that may
-- have been pruned: a stream can resume from `since` only if since >= horizon;
-- older resumes get a snapshot instead. The latest change is always kept, so
-- max(changes.rev) stays the database's current rev.

CREATE TABLE changelog_horizon (
    single boolean PRIMARY KEY DEFAULT true CHECK (single),
    rev    bigint NOT NULL
);
INSERT INTO changelog_horizon (rev) VALUES (0);

CREATE FUNCTION prune_changes(keep interval, keep_rows bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE latest bigint; cutoff bigint; pruned bigint;
BEGIN
    SELECT max(rev) INTO latest FROM changes;
    IF latest IS NULL THEN
        RETURN 0;
    END IF;
    SELECT greatest(
        coalesce((SELECT max(rev) FROM changes WHERE changed_time < now() - keep), 0),
        latest - keep_rows)
      INTO cutoff;
    cutoff := least(cutoff, latest - 1);
    IF cutoff <= (SELECT rev FROM changelog_horizon) THEN
        RETURN 0;
    END IF;
    UPDATE changelog_horizon SET rev = cutoff;
    DELETE FROM changes WHERE rev <= cutoff;
    GET DIAGNOSTICS pruned = ROW_COUNT;
    RETURN pruned;
END $$;
