"""A bounded, gevent-friendly psycopg2 connection pool.

psycopg2's own pools raise when exhausted instead of waiting, which under a burst
of greenlets turns into errors; this one makes callers wait (up to a timeout) on a
gevent queue. psycogreen's wait callback, installed by the entry point, makes the
connections themselves cooperative.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator

import gevent.queue
import psycopg2
import psycopg2.extensions
import psycopg2.extras

from todopy.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

# Errors that mean "the database is not there", as opposed to a bad query.
CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


def connect(dsn: str, *, timeout: float = 2.0, application_name: str = "todopy",
            statement_timeout_ms: int | None = None) -> psycopg2.extensions.connection:
    """Open one connection, failing within `timeout` seconds when the database is unreachable."""
    options = "-c timezone=UTC"
    if statement_timeout_ms:
        options += f" -c statement_timeout={int(statement_timeout_ms)}"
    try:
        # TCP keepalives notice a silently cut network within ~10 s.
        conn = psycopg2.connect(dsn, connect_timeout=max(1, int(timeout)), application_name=application_name,
                                options=options, keepalives=1, keepalives_idle=5, keepalives_interval=2,
                                keepalives_count=3)
    except CONNECTION_ERRORS as error:
        raise DatabaseUnavailable(f"cannot connect to the database: {first_line(error)}") from error
    psycopg2.extras.register_uuid(conn_or_curs=conn)
    return conn


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class Pool:
    """At most `size` connections; `connection()` lends one for one transaction."""

    def __init__(self, dsn: str, size: int = 8, *, timeout: float = 2.0,
                 statement_timeout_ms: int | None = 5000) -> None:
        self.dsn = dsn
        self.size = size
        self.timeout = timeout
        self.statement_timeout_ms = statement_timeout_ms
        # `size` items, each an open connection or None (the right to open one).
        # LIFO, so the busiest connections stay warm and idle ones sit at the bottom.
        self._items: gevent.queue.LifoQueue = gevent.queue.LifoQueue()
        for _ in range(size):
            self._items.put(None)

    @contextlib.contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg2.extensions.connection]:
        """A connection in a transaction: committed on success, rolled back on error.

        `timeout` is how long to wait for a free connection (default: the pool's).
        """
        conn = self._acquire(self.timeout if timeout is None else timeout)
        broken = False
        try:
            yield conn
            conn.commit()
        except CONNECTION_ERRORS as error:
            broken = True
            raise DatabaseUnavailable(f"lost the database connection: {first_line(error)}") from error
        except BaseException:
            try:
                conn.rollback()
            except CONNECTION_ERRORS:
                broken = True
            raise
        finally:
            self._release(conn, broken or conn.closed != 0)

    @contextlib.contextmanager
    def cursor(self, timeout: float | None = None) -> Iterator[psycopg2.extensions.cursor]:
        with self.connection(timeout) as conn, conn.cursor() as cur:
            yield cur

    def query_one(self, sql: str, params: Any = None) -> tuple | None:
        with self.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()

    def execute(self, sql: str, params: Any = None) -> int:
        """Run one statement in its own transaction; return the row count."""
        with self.cursor() as cur:
            cur.execute(sql, params)
            return cur.rowcount

    def query_all(self, sql: str, params: Any = None) -> list[tuple]:
        with self.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def discard_idle(self) -> None:
        """Close idle connections, e.g. after the database restarted under them."""
        drained = []
        while True:
            try:
                drained.append(self._items.get_nowait())
            except gevent.queue.Empty:
                break
        for conn in drained:
            if conn is not None:
                conn.close()
            self._items.put(None)

    close = discard_idle

    # -- internals ----------------------------------------------------------

    def _acquire(self, timeout: float) -> psycopg2.extensions.connection:
        try:
            conn = self._items.get(timeout=timeout)
        except gevent.queue.Empty:
            raise DatabaseUnavailable("the database is too slow: no pooled connection came free") from None
        if conn is not None:
            return conn
        try:
            return connect(self.dsn, timeout=self.timeout, statement_timeout_ms=self.statement_timeout_ms)
        except BaseException:
            self._items.put(None)
            raise

    def _release(self, conn: psycopg2.extensions.connection, broken: bool) -> None:
        if broken:
            try:
                conn.close()
            finally:
                self._items.put(None)
            # The server is likely gone (restart): its other connections are dead too.
            self.discard_idle()
        else:
            self._items.put(conn)
