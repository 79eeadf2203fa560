"""The benchmark's own PostgreSQL: started in a temp dir, migrated, seeded with users by SQL.

Signing up 10,000 users through the API would spend minutes in scrypt; a benchmark
may write users and sessions directly (token_hash = sha256(token), as
todopy.accounts.hash_token stores them).
"""
from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from pathlib import Path

import psycopg2

from bench.report import percentile
from todopy.embedded import EmbeddedPostgres
from todopy.migrate import migrate

SEED_USERS = """
INSERT INTO users (username, password_hash)
SELECT %(prefix)s || lpad(g::text, 6, '0'), '!' FROM generate_series(1, %(count)s) AS g
"""
SEED_SESSIONS = """
INSERT INTO sessions (token_hash, user_id, expires_time)
SELECT sha256(convert_to(%(secret)s || username, 'UTF8')), id, now() + interval '1 day'
  FROM users WHERE username LIKE %(prefix)s || '%%'
"""
SEED_TODOS = """
INSERT INTO todos (list_id, title)
SELECT personal_list(u.id), 'todo ' || n FROM users u CROSS JOIN generate_series(1, %(per_user)s) AS n
 WHERE u.username LIKE %(prefix)s || '%%'
 ORDER BY u.username, n
"""
SEEDED = """
SELECT u.username, array_agg(t.id::text ORDER BY t.created_time)
  FROM users u JOIN lists l ON l.owner = u.id AND l.personal JOIN todos t ON t.list_id = l.id
 WHERE u.username LIKE %(prefix)s || '%%'
 GROUP BY u.username ORDER BY u.username
"""
COUNT_CONNECTIONS = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'todopy%'"


@dataclasses.dataclass(frozen=True)
class BenchUser:
    token: str
    todo_ids: list[str]


class Database:
    """An embedded cluster for one run, and a connection of our own (application_name 'bench')."""

    def __init__(self, data_dir: Path) -> None:
        self.cluster = EmbeddedPostgres(data_dir)
        self.dsn = self.cluster.start()
        migrate(self.dsn)
        self.conn = psycopg2.connect(self.dsn, application_name="bench")
        self.conn.autocommit = True
        self._secret = secrets.token_urlsafe(16)

    def seed(self, prefix: str, count: int, todos_per_user: int) -> list[BenchUser]:
        """`count` users named prefix000001..., each with a session and `todos_per_user` todos, in order."""
        return seed_users(self.conn, prefix, count, todos_per_user, f"{self._secret}-")

    def scratch(self, name: str) -> str:
        """A migrated, empty database `name` beside the main one (made anew if left from a failed run); its DSN."""
        self.drop(name)
        with self.conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")       # a constant of the bench, not data
        dsn = self.cluster.dsn(name)
        migrate(dsn)
        return dsn

    def drop(self, name: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def durable_commit_ms(self, count: int, rate: float) -> dict[str, float]:
        """p50/p99 of one durable single-row UPDATE and its commit, from a client on this machine,
        `count` of them at `rate` a second, in a table of its own (no trigger): what a durable write
        costs before any server does anything with it (the paced latency rows' floor)."""
        conn = psycopg2.connect(self.cluster.dsn())
        conn.autocommit = True
        times = []
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE IF NOT EXISTS bench_commit (id int PRIMARY KEY, title text);"
                            " INSERT INTO bench_commit VALUES (1, '') ON CONFLICT DO NOTHING")
                for n in range(count):
                    time.sleep(1.0 / rate)
                    started = time.perf_counter()
                    cur.execute("UPDATE bench_commit SET title = %s WHERE id = 1", (f"commit {n}",))
                    times.append(time.perf_counter() - started)
        finally:
            conn.close()          # psycopg2's `with` ends the transaction, not the connection
        return {f"p{p}": round((percentile(times, p) or 0.0) * 1000.0, 3) for p in (50, 99)}

    def todopy_connections(self) -> int:
        with self.conn.cursor() as cur:
            cur.execute(COUNT_CONNECTIONS)
            row = cur.fetchone()
            assert row is not None          # count(*) always returns one row
            return row[0]

    def stop(self) -> None:
        self.conn.close()
        self.cluster.stop("immediate")


def seed_users(conn: psycopg2.extensions.connection, prefix: str, count: int, todos_per_user: int,
               secret: str) -> list[BenchUser]:
    """Users, sessions (token = secret + username) and todos, on an autocommit connection to any database."""
    with conn.cursor() as cur:
        params = {"prefix": prefix, "count": count, "secret": secret, "per_user": todos_per_user}
        cur.execute(SEED_USERS, params)
        cur.execute(SEED_SESSIONS, params)
        cur.execute(SEED_TODOS, params)
        cur.execute(SEEDED, params)
        return [BenchUser(secret + username, list(ids)) for username, ids in cur.fetchall()]


class ConnectionSampler:
    """Samples todopy's PostgreSQL connections in a thread; `peak` is the most seen at once."""

    def __init__(self, database: Database, interval: float = 0.2) -> None:
        self.conn = psycopg2.connect(database.dsn, application_name="bench-sampler")
        self.conn.autocommit = True
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "ConnectionSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.conn.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self.conn.cursor() as cur:
                cur.execute(COUNT_CONNECTIONS)
                row = cur.fetchone()
                assert row is not None      # count(*) always returns one row
                self.peak = max(self.peak, row[0])
            self.samples += 1
            self._stop.wait(self.interval)
