"""A bounded, gevent-friendly psycopg2 connection pool.

psycopg2's own pools raise when exhausted instead of waiting, which under a burst
of greenlets turns into errors; this one makes callers wait (up to a timeout) on a
gevent queue. psycogreen's wait callback, installed by the entry point, makes the
connections themselves cooperative.
"""
from __future__ import annotations

import collections
import contextlib
import logging
from typing import Any, Callable, Iterator, TypeAlias

import gevent.queue
import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras

from todopy import prepared
from todopy.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

# Errors that mean "the database is not there", as opposed to a bad query.
CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)
IDLE = psycopg2.extensions.TRANSACTION_STATUS_IDLE

# A result row: a named tuple whose fields are the columns as the query names them
# (`row.rev`; `SELECT id::text` is `row.id`, an expression needs `AS name`).
Row: TypeAlias = Any
_ROW_TYPES: dict[str, type] = {}        # the query's text -> its row class


def connect(dsn: str, *, timeout: float = 2.0, application_name: str = "todopy",
            statement_timeout_ms: int | None = None,
            idle_in_transaction_ms: int | None = None) -> psycopg2.extensions.connection:
    """Open one connection, failing within `timeout` seconds when the database is unreachable."""
    options = "-c timezone=UTC"
    if statement_timeout_ms:
        options += f" -c statement_timeout={int(statement_timeout_ms)}"
    if idle_in_transaction_ms:
        # An open write transaction holds back the ringer's horizon (and its list's row
        # lock): a connection left idle inside one is ended instead of stalling others.
        options += f" -c idle_in_transaction_session_timeout={int(idle_in_transaction_ms)}"
    try:
        # TCP keepalives notice a silently cut network within ~10 s.
        conn = psycopg2.connect(dsn, connection_factory=prepared.Connection, cursor_factory=NamedRowCursor,
                                connect_timeout=max(1, int(timeout)), application_name=application_name,
                                options=options, keepalives=1, keepalives_idle=5, keepalives_interval=2,
                                keepalives_count=3)
    except CONNECTION_ERRORS as error:
        # PostgreSQL's own text (host names, roles, file paths) goes to the log, not to clients.
        log.warning("cannot connect to the database: %s", first_line(error))
        raise DatabaseUnavailable("cannot connect to the database; try again shortly") from error
    psycopg2.extras.register_uuid(conn_or_curs=conn)
    return conn


class NamedRowCursor(psycopg2.extensions.cursor):
    """A cursor whose rows are named tuples (`Row`): code reads columns by name, never by position.

    psycopg2's NamedTupleCursor reads the column names out of every result (3 µs a
    statement here); a fixed query always has the same columns, so the row class is
    made once per query text, from its first result, and each row costs one `_make`.
    """

    _text = ""

    def execute(self, query, vars=None):  # noqa: A002 - psycopg2's signature
        self._text = query
        return super().execute(query, vars)

    def fetchone(self) -> Row | None:
        row = super().fetchone()
        return None if row is None else self._row_type()._make(row)

    def fetchall(self) -> list[Row]:
        rows = super().fetchall()
        return list(map(self._row_type()._make, rows))

    def __next__(self) -> Row:
        row = super().__next__()
        return self._row_type()._make(row)

    def _row_type(self) -> Any:
        row_type = _ROW_TYPES.get(self._text)
        if row_type is None:
            if len(_ROW_TYPES) >= 1024:     # fixed queries are far fewer: a guard, not a cache policy
                _ROW_TYPES.clear()
            row_type = _ROW_TYPES[self._text] = _row_class([column.name for column in self.description or ()])
        return row_type


def _row_class(names: list[str]) -> type:
    try:
        return collections.namedtuple("Row", names)
    except ValueError as error:
        raise ValueError(f"give every column of this query its own name (AS name): {names}") from error


def _run(conn: psycopg2.extensions.connection, statement: str) -> None:
    """One statement outside any TransactionCursor (COMMIT, ROLLBACK)."""
    with conn.cursor(cursor_factory=psycopg2.extensions.cursor) as cur:
        cur.execute(statement)


def _unavailable(error: BaseException, conn: psycopg2.extensions.connection) -> tuple[DatabaseUnavailable, bool]:
    """The DatabaseUnavailable for a database error, and whether the connection is unusable now.

    psycopg2 raises OperationalError both for a lost connection and for errors the
    server reports on a healthy one (statement timeout, deadlock, serialization
    failure); only the first kind should cost the pool its connections.
    """
    pgcode = getattr(error, "pgcode", None)
    # The client gets a fixed message; PostgreSQL's own text (which may name tables,
    # constraints, roles or hosts) is for the server log only.
    log.warning("database error %s: %s", pgcode or type(error).__name__, first_line(error))
    # 08: connection exceptions; 57P: the server shutting down or not accepting connections.
    if conn.closed or pgcode is None or pgcode.startswith(("08", "57P")):
        return DatabaseUnavailable("lost the database connection; try again shortly"), True
    if isinstance(error, psycopg2.errors.QueryCanceled):
        return DatabaseUnavailable("the database did not answer in time; try again", code="database_timeout"), False
    return DatabaseUnavailable("the database could not complete the request; try again",
                               code="database_busy"), False


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class TransactionCursor(NamedRowCursor):
    """The cursor of a pooled transaction: its first statement carries the BEGIN.

    Pooled connections are in autocommit mode, so psycopg2 sends no BEGIN of its
    own (a round trip before every transaction); the transaction starts with the
    first statement instead, in the same message, and `ConnectionPool.connection` ends it.
    """

    def execute(self, query, vars=None):  # noqa: A002 - psycopg2's signature
        if isinstance(query, str) and self.connection.info.transaction_status == IDLE:
            query = "BEGIN;" + query
        return super().execute(query, vars)


class ConnectionPool:
    """At most `size` connections; `connection()` lends one for one transaction.

    `query_one`, `query_all` and `execute` run a single statement, which is its own
    transaction: sent alone in autocommit mode, with no BEGIN and COMMIT round trips
    around it (three round trips become one).
    """

    def __init__(self, dsn: str, size: int = 8, *, timeout: float = 2.0,
                 statement_timeout_ms: int | None = 5000, idle_in_transaction_ms: int | None = None) -> None:
        self.dsn = dsn
        self.idle_in_transaction_ms = idle_in_transaction_ms
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
            yield conn                  # its cursors are TransactionCursors: the first statement BEGINs
            if conn.info.transaction_status != IDLE:
                _run(conn, "COMMIT")
        except CONNECTION_ERRORS as error:
            unavailable, broken = _unavailable(error, conn)
            if not broken:
                try:
                    _run(conn, "ROLLBACK")
                except CONNECTION_ERRORS:
                    broken = True
            raise unavailable from error
        except BaseException:
            try:
                if conn.info.transaction_status != IDLE:
                    _run(conn, "ROLLBACK")
            except CONNECTION_ERRORS:
                broken = True
            raise
        finally:
            self._release(conn, broken or conn.closed != 0)

    @contextlib.contextmanager
    def cursor(self, timeout: float | None = None) -> Iterator[NamedRowCursor]:
        with self.connection(timeout) as conn, conn.cursor(cursor_factory=TransactionCursor) as cur:
            yield cur

    @contextlib.contextmanager
    def _statement(self, timeout: float | None) -> Iterator[NamedRowCursor]:
        """A cursor for one statement in autocommit mode: the statement is the whole transaction."""
        conn = self._acquire(self.timeout if timeout is None else timeout)
        broken = False
        try:
            with conn.cursor(cursor_factory=NamedRowCursor) as cur:
                yield cur
        except CONNECTION_ERRORS as error:
            unavailable, broken = _unavailable(error, conn)
            raise unavailable from error
        finally:
            self._release(conn, broken or conn.closed != 0)

    def query_one(self, sql: str, params: Any = None, *, timeout: float | None = None) -> Row | None:
        with self._statement(timeout) as cur:
            prepared.execute(cur, sql, params)
            return cur.fetchone()

    def execute(self, sql: str, params: Any = None, *, timeout: float | None = None) -> int:
        """Run one statement in its own transaction; return the row count."""
        with self._statement(timeout) as cur:
            prepared.execute(cur, sql, params)
            return cur.rowcount

    def query_all(self, sql: str, params: Any = None, *, timeout: float | None = None) -> list[Row]:
        with self._statement(timeout) as cur:
            prepared.execute(cur, sql, params)
            return cur.fetchall()

    def script(self, statements: list[str], params: Any, *, timeout: float | None = None) -> list[Row]:
        """Several statements in one message, so one round trip and one transaction; the last one's rows."""
        with self._statement(timeout) as cur:
            prepared.execute_script(cur, statements, params)
            return cur.fetchall()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once what this pool last wrote is committed: here at once, each
        statement (or script) being its own transaction, committed when it returns."""
        callback()

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
            conn = connect(self.dsn, timeout=self.timeout, statement_timeout_ms=self.statement_timeout_ms,
                           idle_in_transaction_ms=self.idle_in_transaction_ms)
        except BaseException:
            self._items.put(None)
            raise
        conn.autocommit = True                      # transactions are begun by their first statement
        conn.cursor_factory = TransactionCursor
        return conn

    def _release(self, conn: psycopg2.extensions.connection, broken: bool) -> None:
        if not broken and conn.info.transaction_status != IDLE:
            # Left inside a transaction (its COMMIT or ROLLBACK failed): not reusable, but the
            # database is there; close this one alone.
            conn.close()
            self._items.put(None)
            return
        if broken:
            try:
                conn.close()
            finally:
                self._items.put(None)
            # The server is likely gone (restart): its other connections are dead too.
            self.discard_idle()
        else:
            self._items.put(conn)


class SavepointCursor(NamedRowCursor):
    """A cursor whose every statement is sent after a savepoint, in the same message (as
    TransactionCursor sends BEGIN), so that a failed one can be undone alone."""

    def execute(self, query, vars=None):  # noqa: A002 - psycopg2's signature
        if isinstance(query, str):
            query = "SAVEPOINT todopy_statement;" + query
        return super().execute(query, vars)


class PinnedPool(ConnectionPool):
    """A pool whose every statement runs in one transaction already open on `conn`.

    For code written against a pool (the views) that must write inside a larger
    transaction: an idempotent write commits its key with the write. Statements
    run as text: a PREPARE inside a transaction that rolls back would leave the
    connection's record of its prepared statements wrong.

    A statement refused by the database (a unique violation the caller answers as
    a retry) aborts the transaction, where on an autocommit connection it would
    not: `failed` says so, and the transaction's owner runs the work again with
    `savepoints`, each statement under a savepoint sent with it (no extra round
    trip), so that a refused one is undone alone. Not by default: rows written in
    a subtransaction carry its xid, not the transaction's, and so do not pass for
    this transaction's in queries that tell them by `xmin`.
    """

    def __init__(self, conn: psycopg2.extensions.connection, *, savepoints: bool = False) -> None:
        self._conn = conn
        self.savepoints = savepoints
        self.failed = False
        self._after_commit: list[Callable[[], None]] = []

    @contextlib.contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg2.extensions.connection]:
        """The pinned connection; with savepoints, its work since this call is undone on error."""
        if self.savepoints:
            _run(self._conn, "SAVEPOINT todopy_nested")
        try:
            yield self._conn
        except BaseException as error:
            self._refused(error, "ROLLBACK TO SAVEPOINT todopy_nested")
            raise
        if self.savepoints:
            _run(self._conn, "RELEASE SAVEPOINT todopy_nested")

    def _run_statement(self, sql: str, params: Any) -> NamedRowCursor:
        cur = self._conn.cursor(cursor_factory=SavepointCursor if self.savepoints else NamedRowCursor)
        try:
            cur.execute(sql, params)
        except psycopg2.Error as error:
            self._refused(error, "ROLLBACK TO SAVEPOINT todopy_statement")
            raise
        return cur

    def _refused(self, error: BaseException, rollback: str) -> None:
        """After an error in the transaction: undo to its savepoint (`rollback`), or note that the
        transaction is lost."""
        if isinstance(error, CONNECTION_ERRORS) or not isinstance(error, psycopg2.Error) or self._conn.closed:
            return                  # the transaction's owner decides (ConnectionPool.connection)
        if self.savepoints:
            _run(self._conn, rollback)
        else:
            self.failed = True

    def query_one(self, sql: str, params: Any = None, *, timeout: float | None = None) -> Row | None:
        return self._run_statement(sql, params).fetchone()

    def query_all(self, sql: str, params: Any = None, *, timeout: float | None = None) -> list[Row]:
        return self._run_statement(sql, params).fetchall()

    def execute(self, sql: str, params: Any = None, *, timeout: float | None = None) -> int:
        return self._run_statement(sql, params).rowcount

    def script(self, statements: list[str], params: Any, *, timeout: float | None = None) -> list[Row]:
        """The statements as one text (not prepared, as every statement here), in the pinned transaction."""
        return self._run_statement(";\n".join(statements), params).fetchall()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` when the transaction's owner commits it (`committed`); never if it does not."""
        self._after_commit.append(callback)

    def committed(self) -> None:
        """The owner committed the transaction: what waited for it runs now."""
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def discard_idle(self) -> None:
        """Nothing idle here: the connection belongs to the transaction's owner."""

    close = discard_idle
