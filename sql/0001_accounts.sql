-- Users and their sessions. Tokens are stored only as SHA-256 hashes: a leaked
-- table cannot be replayed, and a random 256-bit token needs no slow hash.

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username      text NOT NULL CHECK (username ~ '^[A-Za-z0-9_.-]{3,64}$'),
    password_hash text NOT NULL,
    created_time  timestamptz NOT NULL DEFAULT now()
);
-- Unique case-insensitively, stored as given.
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TABLE sessions (
    token_hash   bytea PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    created_time timestamptz NOT NULL DEFAULT now(),
    expires_time timestamptz NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_time ON sessions (expires_time);
