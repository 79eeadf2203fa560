-- When a name last failed to sign in, so housekeeping can forget names
-- that stopped being tried (random guesses would otherwise pile up rows).
ALTER TABLE login_throttle ADD COLUMN updated_time timestamptz NOT NULL DEFAULT now();
CREATE INDEX login_throttle_updated_time ON login_throttle (updated_time);
