"""Deadlocks the capture adds (issue 20), on todopy's tables and on the peer's, with their servers running.

1. multi-row SQL writers: 4 autocommit connections on one 40-todo list, each
   statement toggling 2 to 8 random todos of it, for `deadlock_seconds` with the
   triggers and as long without them (`DISABLE TRIGGER USER`): the deadlock
   counts and their ratio (issue 20: no worse than without the triggers);
2. 3 single-row autocommit SQL writers beside 2 REST toggle-alls of the same
   list for `toggle_seconds`: deadlocks and failed requests (issue 20: none).
   A one-row statement holds one lock and waits for nothing else: without a
   capture that locks more, this workload cannot deadlock.
"""
from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any, Callable

import psycopg2
import psycopg2.errors
import requests

from bench.database import Database, seed_users
from bench.peer import seed as peer_seed
from bench.plan import Plan
from bench.servers import Server, start_peer, start_todopy

SCRATCH = "bench_deadlocks"
TODOS = 40
MULTI_ROW_WRITERS = 4
SQL_WRITERS, TOGGLERS = 3, 2
MULTI_ROW = "UPDATE {table} SET completed = NOT completed WHERE id = ANY(%s::uuid[])"
SINGLE_ROW = "UPDATE {table} SET title = %s WHERE id = %s"
TABLES = {"todopy": "todos", "peer": "peer.todos"}


class Tally:
    """Counts shared by the worker threads of one workload."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts = {"statements": 0, "deadlocks": 0, "other_errors": 0, "requests": 0, "failed_requests": 0}
        self.errors: list[str] = []

    def add(self, key: str, error: str | None = None) -> None:
        with self.lock:
            self.counts[key] += 1
            if error is not None and len(self.errors) < 5:
                self.errors.append(error)

    def result(self) -> dict[str, Any]:
        return {**self.counts, "errors": self.errors}


def _sql_writer(dsn: str, statement: str, arguments: Callable[[], tuple], until: float, tally: Tally) -> None:
    conn = psycopg2.connect(dsn, application_name="bench-deadlocks")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            while time.monotonic() < until:
                try:
                    cur.execute(statement, arguments())
                    tally.add("statements")
                except psycopg2.errors.DeadlockDetected:
                    tally.add("deadlocks")
                except psycopg2.Error as error:
                    tally.add("other_errors", f"{type(error).__name__}: {error}".strip())
    finally:
        conn.close()


def _toggler(server: Server, token: str, until: float, tally: Tally) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    completed = False
    while time.monotonic() < until:
        completed = not completed
        try:
            response = session.patch(f"{server.base_url}/api/todos/", json={"completed": completed}, timeout=30)
        except requests.RequestException as error:
            tally.add("failed_requests", f"{type(error).__name__}: {error}")
            continue
        tally.add("requests")
        if response.status_code >= 300:
            tally.add("failed_requests", f"PATCH {response.status_code}: {response.text[:200]}")
    session.close()


def _run(workers: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=work) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _multi_row(dsn: str, table: str, ids: list[str], seconds: float) -> dict[str, Any]:
    tally = Tally()
    until = time.monotonic() + seconds
    statement = MULTI_ROW.format(table=table)
    _run([lambda: _sql_writer(dsn, statement, lambda: (random.sample(ids, random.randint(2, 8)),), until, tally)
          for _ in range(MULTI_ROW_WRITERS)])
    return tally.result()


def _set_triggers(dsn: str, table: str, enabled: bool) -> None:
    conn = psycopg2.connect(dsn, application_name="bench")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f"ALTER TABLE {table} {'ENABLE' if enabled else 'DISABLE'} TRIGGER USER")
    finally:
        conn.close()


def multi_row(dsn: str, table: str, ids: list[str], seconds: float) -> dict[str, Any]:
    """Deadlocks of the multi-row writers with `table`'s triggers and without; their ratio."""
    with_triggers = _multi_row(dsn, table, ids, seconds)
    _set_triggers(dsn, table, False)
    try:
        without = _multi_row(dsn, table, ids, seconds)
    finally:
        _set_triggers(dsn, table, True)
    return {"with_triggers": with_triggers, "without_triggers": without,
            "ratio": with_triggers["deadlocks"] / max(1, without["deadlocks"])}


def toggles(dsn: str, table: str, server: Server, token: str, ids: list[str], seconds: float) -> dict[str, Any]:
    """Single-row SQL writers beside REST toggle-alls on one list: deadlocks and failed requests."""
    tally = Tally()
    until = time.monotonic() + seconds
    statement = SINGLE_ROW.format(table=table)
    writers: list[Callable[[], None]] = [
        lambda: _sql_writer(dsn, statement, lambda: (f"sql {random.random():.6f}", random.choice(ids)), until, tally)
        for _ in range(SQL_WRITERS)]
    writers += [lambda: _toggler(server, token, until, tally) for _ in range(TOGGLERS)]
    _run(writers)
    result = tally.result()
    return {**result, "failures": result["deadlocks"] + result["failed_requests"] + result["other_errors"]}


def measure(database: Database, plan: Plan, log_dir: Path, pool_size: int) -> dict[str, Any]:
    dsn = database.scratch(SCRATCH)
    conn = psycopg2.connect(dsn, application_name="bench")
    conn.autocommit = True
    try:
        (user,) = seed_users(conn, "deadlock", 1, TODOS, "deadlock-secret-")
    finally:
        conn.close()
    peer_seed.install(dsn)
    servers = {"todopy": start_todopy(dsn, log_dir, pool_size, name="todopy-deadlocks")}
    results: dict[str, Any] = {"multi_row": {}, "toggle": {}}
    try:
        servers["peer"] = start_peer(dsn, log_dir, pool_size, name="peer-deadlocks")
        for subject, table in TABLES.items():
            found = results["multi_row"][subject] = multi_row(dsn, table, user.todo_ids, plan.deadlock_seconds)
            print(f"[bench]   {subject} multi-row SQL writers, one list: {found['with_triggers']['deadlocks']} "
                  f"deadlocks in {found['with_triggers']['statements']} statements with the triggers, "
                  f"{found['without_triggers']['deadlocks']} in {found['without_triggers']['statements']} "
                  f"without", flush=True)
            found = results["toggle"][subject] = toggles(dsn, table, servers[subject], user.token,
                                                         user.todo_ids, plan.toggle_seconds)
            print(f"[bench]   {subject} SQL writers beside REST toggle-alls: {found['deadlocks']} deadlocks, "
                  f"{found['failed_requests']} failed of {found['requests']} requests, "
                  f"{found['statements']} statements", flush=True)
    finally:
        for server in servers.values():
            server.stop()
        database.drop(SCRATCH)
    return results
