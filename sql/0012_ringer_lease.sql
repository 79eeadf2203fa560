-- The ringer's lease: which backend rings for this database, and when it last said so.
-- The ringer is elected with a session advisory lock, but a holder that stops (a frozen
-- process, a host cut off from the network) keeps its session, and the lock, for as long
-- as its kernel answers keepalives. So the holder renews this row several times a second;
-- a row left unrenewed past the lease tells the other processes to end the holder's
-- session (pg_terminate_backend of the lock holder) and take the role over.
-- One row per database: each database has its own ringer.
CREATE TABLE ringer_lease (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    pid integer,                                   -- the holder's backend, for operators
    renewed_time timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO ringer_lease DEFAULT VALUES;
