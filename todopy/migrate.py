"""Apply the numbered migrations in sql/, once each, safe against concurrent runs."""
from __future__ import annotations

import logging

from todopy import db, sqlfiles

log = logging.getLogger(__name__)

# Held for the whole run, so two processes starting at once apply each migration once.
MIGRATION_LOCK = 7_401_330_001


def migrate(dsn: str, timeout: float = 10.0) -> list[str]:
    """Apply pending migrations, each in its own transaction; return the names applied."""
    conn = db.connect(dsn, timeout=timeout, application_name="todopy-migrate")
    applied: list[str] = []
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " name text PRIMARY KEY, applied_time timestamptz NOT NULL DEFAULT now())"
                )
                cur.execute("SELECT name FROM schema_migrations")
                done = {name for (name,) in cur.fetchall()}
                for name, text in sqlfiles.migrations():
                    if name in done:
                        continue
                    conn.autocommit = False
                    cur.execute(text)
                    cur.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
                    conn.commit()
                    conn.autocommit = True
                    log.info("applied migration %s", name)
                    applied.append(name)
            finally:
                conn.rollback()
                conn.autocommit = True
                cur.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    finally:
        conn.close()
    if not applied:
        log.info("database schema is up to date")
    return applied
