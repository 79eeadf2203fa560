"""Periodic housekeeping: prune the change log, forget expired sessions, old sign-in failures and idempotency keys."""
from __future__ import annotations

import logging

import gevent

from todopy.db import ConnectionPool
from todopy.errors import DatabaseUnavailable
from todopy.settings import Settings
from todopy.sqlfiles import queries

log = logging.getLogger(__name__)
CHANGES_SQL = queries("changes")
ACCOUNTS_SQL = queries("accounts")
IDEMPOTENCY_SQL = queries("idempotency")


def run_once(pool: ConnectionPool, settings: Settings) -> int:
    """Prune what retention allows; return the number of change-log rows removed."""
    row = pool.query_one(CHANGES_SQL["prune"], {"keep_seconds": settings.changelog_retention_s})
    pool.execute(ACCOUNTS_SQL["delete_expired_sessions"])
    pool.execute(ACCOUNTS_SQL["forget_old_failures"])
    pool.execute(IDEMPOTENCY_SQL["prune"], {"keep_seconds": settings.idempotency_ttl})
    return row.pruned if row else 0


def run_forever(pool: ConnectionPool, settings: Settings, interval: float = 60.0) -> None:
    while True:
        gevent.sleep(interval)
        try:
            pruned = run_once(pool, settings)
            if pruned:
                log.info("pruned %d change-log rows", pruned)
        except DatabaseUnavailable as error:
            log.warning("housekeeping skipped: %s", error.message)
