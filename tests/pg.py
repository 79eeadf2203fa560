"""The few things tests need to see or do inside PostgreSQL, in one place (easy to adapt to the schema).

Everything else is black-box, through HTTP and WebSocket. What is here is about
PostgreSQL itself (backends, lock waits) or a state no client can reach in time
(an expired session); the change log's columns are read in one function only,
`logged_revs`, the ground truth a soak checks streams against.
"""
from __future__ import annotations

import uuid
from typing import Callable

import psycopg2
import psycopg2.sql

from todopy import maintenance
from todopy.accounts import hash_token
from todopy.db import ConnectionPool
from todopy.embedded import EmbeddedPostgres
from todopy.migrate import migrate
from todopy.settings import Settings

Sql = Callable[..., list[tuple]]   # the `sql` fixture: one statement, autocommit, returns rows


def new_database(postgres: EmbeddedPostgres, sql: Sql) -> str:
    """A migrated database of its own in the test cluster, so its backends are one server's; its DSN."""
    name = f"own_{uuid.uuid4().hex[:10]}"
    sql(psycopg2.sql.SQL("CREATE DATABASE {}").format(psycopg2.sql.Identifier(name)))
    dsn = postgres.dsn(name)
    migrate(dsn)
    return dsn


def server_backends(dsn: str) -> set[int]:
    """Backend pids of the server's connection pool in `dsn`'s database (not its listener)."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = 'todopy'")
        return {row[0] for row in cur.fetchall()}


def waiting_for(sql: Sql, blocker_pid: int) -> int:
    """How many backends are waiting for a lock that `blocker_pid` holds."""
    return sql("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (blocker_pid,))[0][0]


def lock_todo(conn: psycopg2.extensions.connection, todo_id: str) -> None:
    """Hold `todo_id`'s row lock in `conn`'s open transaction: writes to that todo wait until it ends."""
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM todos WHERE id = %s FOR UPDATE", (todo_id,))


def lock_sessions(conn: psycopg2.extensions.connection) -> None:
    """Hold the sessions table in `conn`'s open transaction: resolving an uncached token waits."""
    with conn.cursor() as cur:
        cur.execute("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")


def expire_session(dsn: str, token: str) -> None:
    """Make the token's session expired, as if its TTL had passed (the TTL is at least a minute)."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("UPDATE sessions SET expires_time = now() - interval '1 second' WHERE token_hash = %s",
                    (hash_token(token),))
        assert cur.rowcount == 1


def prune_change_log(dsn: str) -> int:
    """Age every change-log row past retention and run the server's own housekeeping; the number removed."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("UPDATE changes SET changed_time = changed_time - interval '1 hour'")
    pool = ConnectionPool(dsn, 1)
    try:
        return maintenance.run_once(pool, Settings(changelog_retention_s=60))
    finally:
        pool.close()


def logged_revs(dsn: str, list_ids: list[str]) -> dict[str, list[tuple[int, str | None]]]:
    """Per list, in rev order, what its todo streams must carry: (rev, None) for a todo's change or a
    new title, and (rev, user_id) for the end of a member's access (their removal, or None when the
    list itself was deleted: a `list` row with op `delete`, marked with the user id `*`)."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT list_id::text, rev, kind, op, user_id::text FROM changes"
                    " WHERE list_id = ANY(%s::uuid[]) ORDER BY list_id, rev", (list_ids,))
        rows = cur.fetchall()
    conn.close()
    revs: dict[str, list[tuple[int, str | None]]] = {list_id: [] for list_id in list_ids}
    for list_id, rev, kind, op, user_id in rows:
        if kind == "todo" or kind == "list" and op == "update":
            revs[list_id].append((rev, None))
        elif kind == "list" and op == "delete":
            revs[list_id].append((rev, "*"))
        elif kind == "member" and op == "delete":
            revs[list_id].append((rev, user_id))
    return revs


def change_log_size(dsn: str) -> tuple[int, int]:
    """The change log's rows and bytes on disk (indexes included)."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), pg_total_relation_size('changes') FROM changes")
        rows, size = cur.fetchone()
    conn.close()
    return rows, size


def server_connections(dsn: str) -> int:
    """Connections the todopy servers hold to `dsn`'s cluster (pools, listeners, ringer candidates)."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'todopy%%'")
        (count,) = cur.fetchone()
    conn.close()
    return count
