"""PostgreSQL stops under load: REST fails fast with 503, then everything recovers by itself, losing nothing."""
from __future__ import annotations

import threading
import time

import requests

from tests.fleet import Fleet
from tests.pg import lock_todo, new_database, server_backends, waiting_for
from tests.support import by_id, register, start_postgres, wait_for
from todopy.migrate import migrate

USERS, STREAMS_PER_USER = 4, 50


def test_database_restart_under_200_streams_and_writes(tmp_path, start_server):
    cluster = start_postgres(tmp_path / "pg")
    migrate(cluster.dsn())
    try:
        server = start_server(database=cluster.dsn())
        users = [register(server.base_url) for _ in range(USERS)]
        todos = [user.create_todo("first") for user in users]
        fleet = Fleet(server.ws_url)
        for user in users:
            for _ in range(STREAMS_PER_USER):
                fleet.open(user.token)
        fleet.start()

        outcomes: list[tuple[int, float]] = []
        stop = threading.Event()

        def write_continuously() -> None:
            n = 0
            while not stop.is_set():
                user, todo = users[n % USERS], todos[n % USERS]
                started = time.monotonic()
                try:
                    status = user.patch(f"/api/todos/{todo['id']}/", {"title": f"write {n}"}).status_code
                except requests.RequestException:
                    status = 0
                outcomes.append((status, time.monotonic() - started))
                n += 1
                time.sleep(0.02)

        thread = threading.Thread(target=write_continuously)
        thread.start()
        try:
            time.sleep(1)
            cluster.stop()
            time.sleep(0.5)
            down = requests.get(server.base_url + "/healthz", timeout=5)
            assert down.status_code == 503 and down.json()["status"] == "unavailable"
            time.sleep(2)
            cluster.start()
            restarted = time.monotonic()
            while requests.get(server.base_url + "/healthz", timeout=5).status_code != 200:
                assert time.monotonic() - restarted < 30, "the server did not recover"
                time.sleep(0.05)
            recovered_after = time.monotonic() - restarted
            time.sleep(1.5)
        finally:
            stop.set()
            thread.join(30)
        fleet.wait_quiet()
        fleet.stop()

        statuses = {status for status, _ in outcomes}
        assert statuses <= {200, 503}, statuses
        assert 503 in statuses and 200 in statuses
        slowest_failure = max(seconds for status, seconds in outcomes if status == 503)
        assert slowest_failure < 2.0, f"a 503 took {slowest_failure:.2f}s"
        problems = [p for s in fleet.streams for p in s.problems]
        assert problems == []
        assert all(s.close_code is None for s in fleet.streams), "streams must survive the restart"
        expected = {user.token: by_id(user.list_todos()["todos"]) for user in users}
        assert all(s.replica.todos == expected[s.owner_token] for s in fleet.streams)
        writes_ok = sum(1 for status, _ in outcomes if status == 200)
        delivered = sum(s.replica.applied for s in fleet.streams)
        assert delivered == writes_ok * STREAMS_PER_USER, "every change exactly once"
        print(f"\ndatabase restart: healthy again {recovered_after:.2f}s after PostgreSQL started; "
              f"{writes_ok} writes succeeded, {len(outcomes) - writes_ok} got 503 "
              f"(slowest {slowest_failure * 1000:.0f} ms); {fleet.messages} messages checked")
    finally:
        cluster.stop("immediate")


def test_a_blocked_database_answers_503_quickly_and_keeps_its_connections(start_server, postgres, sql):
    import psycopg2

    dsn = new_database(postgres, sql)       # its own: every pool backend in it is this server's
    server = start_server(env={"TODOPY_STATEMENT_TIMEOUT_MS": "300"}, database=dsn)
    user = register(server.base_url)
    user.create_todo("before")
    backends = server_backends(dsn)
    assert backends
    locker = psycopg2.connect(dsn)
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLE todos IN ACCESS EXCLUSIVE MODE")   # held until rollback
        started = time.monotonic()
        blocked = user.get("/api/todos/")
        assert time.monotonic() - started < 2
        assert blocked.status_code == 503
        assert blocked.json()["error"]["code"] == "database_timeout"
    finally:
        locker.rollback()
        locker.close()
    assert [todo["title"] for todo in user.list_todos()["todos"]] == ["before"]
    assert server_backends(dsn) == backends, "the pool kept its connections: a timeout is not a lost connection"


def test_a_request_that_waits_too_long_for_a_pooled_connection_gets_503(start_server, dsn, sql):
    """TODOPY_DB_TIMEOUT bounds the wait for a pooled connection too, not only connecting."""
    import psycopg2

    db_timeout = 1.0
    server = start_server(env={"TODOPY_POOL_SIZE": "1", "TODOPY_DB_TIMEOUT": str(db_timeout)})
    user = register(server.base_url)
    todo = user.create_todo("contended")
    locker = psycopg2.connect(dsn)
    result: dict = {}
    holder = threading.Thread(target=lambda: result.update(
        patch=user.__class__(server.base_url, user.token).patch(f"/api/todos/{todo['id']}/", {"title": "later"})))
    try:
        lock_todo(locker, todo["id"])
        holder.start()          # takes the pool's one connection, and waits on the row lock with it
        wait_for(lambda: waiting_for(sql, locker.get_backend_pid()) == 1, timeout=10, interval=0.02)
        started = time.monotonic()
        response = requests.get(server.base_url + "/api/todos/", headers=user.headers(), timeout=db_timeout + 5)
        waited = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "database_unavailable"
        # It waited for the connection (TODOPY_DB_TIMEOUT), and no longer (plus a busy machine's second).
        assert db_timeout * 0.9 <= waited <= db_timeout + 1.0, f"answered after {waited:.2f}s"
    finally:
        locker.rollback()
        locker.close()
    holder.join(10)
    assert result["patch"].status_code == 200, result["patch"].text
    assert [t["title"] for t in user.list_todos()["todos"]] == ["later"]
