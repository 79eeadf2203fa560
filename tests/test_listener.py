"""The change listener cut off on its own (a proxy refuses only its connections) while REST keeps working.

README and DESIGN promise: /healthz says so (503, naming the listener), the
listener retries at least every 2 s, streams catch up when it is back, nothing
is lost, and if the change log was pruned past its position meanwhile, the
streams are closed with 4008 and resync. /metrics tells which is which.
"""
from __future__ import annotations

import time
from typing import Iterator

import psycopg2
import pytest
import requests

from tests.dbproxy import DatabaseProxy
from tests.pg import prune_change_log
from tests.support import LIST, Replica, ServerProcess, Stream, by_id, metric, read_until, register, wait_for

LISTENER = "todopy-listener"
MAX_BACKOFF = 2.0       # README/DESIGN: one attempt every 2 s at most, streams resume at most that late
MARGIN = 1.0            # connecting, replaying and sending on two busy cores


@pytest.fixture
def proxy(postgres) -> Iterator[DatabaseProxy]:
    proxy = DatabaseProxy(postgres.port)
    yield proxy
    proxy.close()


def sql_write(dsn: str, statement: str, params: tuple) -> str:
    """One write with psql's means, straight to the database (not through the proxy); its row's first value."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return str(cur.fetchone()[0])


def health(server: ServerProcess) -> requests.Response:
    return requests.get(server.base_url + "/healthz", timeout=5)


def metrics(server: ServerProcess) -> str:
    return requests.get(server.base_url + "/metrics", timeout=5).text


def test_a_cut_off_listener_is_reported_retried_every_2s_and_caught_up(start_server, dsn, proxy):
    server = start_server(database=proxy.dsn(dsn))
    api = register(server.base_url)
    s = Stream(server.ws_url, LIST, api.token)
    try:
        s.sync()
        before = metrics(server)
        assert metric(before, "todopy_listener_up") == 1
        reconnects = metric(before, "todopy_listener_reconnects_total")

        cut = time.monotonic()
        proxy.refuse(LISTENER)
        wait_for(lambda: health(server).status_code == 503, timeout=5, interval=0.05)
        down = health(server)
        assert down.json()["status"] == "unavailable"
        assert down.json()["error"]["code"] == "listener_unavailable"
        assert "listener" in down.json()["error"]["message"]
        assert metric(metrics(server), "todopy_listener_up") == 0
        # Only the listener is down: REST reads and writes go on, and a write through this
        # process reaches its streams all the same (its writer hands it over).
        here = api.create_todo("written here while the listener is away")
        assert s.recv(5) == {"type": "change", "op": "insert", "todo": here, "rev": here["rev"],
                             "by": api.user["username"]}
        # A write from elsewhere (psql here) is heard of through the listener only.
        missed_id = sql_write(dsn, "INSERT INTO todos (list_id, title) VALUES (personal_list(%s), %s) RETURNING id",
                              (api.user["id"], "written elsewhere while the listener is away"))
        missed = api.get(f"/api/todos/{missed_id}/").json()
        assert [t["id"] for t in api.list_todos()["todos"]] == [here["id"], missed_id]

        time.sleep(6.5)                                   # long enough to back off all the way
        attempts = proxy.attempts_of(LISTENER, since=cut)
        gaps = [later - earlier for earlier, later in zip(attempts, attempts[1:])]
        assert len(attempts) >= 4, attempts
        assert max(gaps) <= MAX_BACKOFF + 0.5, f"listener retried after {max(gaps):.2f}s"

        proxy.allow(LISTENER)
        back = time.monotonic()
        (change,) = read_until(s, lambda m: m["type"] == "change", timeout=MAX_BACKOFF + MARGIN + 5)
        caught_up = time.monotonic() - back
        assert change == {"type": "change", "op": "insert", "todo": missed, "rev": missed["rev"], "by": None}
        assert caught_up <= MAX_BACKOFF + MARGIN, f"the stream caught up {caught_up:.2f}s after the database"
        wait_for(lambda: health(server).status_code == 200, timeout=5, interval=0.05)
        after = metrics(server)
        assert metric(after, "todopy_listener_up") == 1
        assert metric(after, "todopy_listener_reconnects_total") == reconnects + 1   # one, however many tries
        print(f"\nlistener cut: {len(attempts)} attempts, gaps up to {max(gaps):.2f}s; "
              f"stream caught up {caught_up:.2f}s after the listener could connect again")
    finally:
        s.close()


def test_a_change_log_pruned_past_the_listener_while_it_was_away_makes_streams_resync(start_server, dsn, proxy):
    server = start_server(database=proxy.dsn(dsn))
    api = register(server.base_url)
    keep = api.create_todo("kept")
    s = Stream(server.ws_url, LIST, api.token)
    replica = Replica()
    try:
        before, ready = s.sync()
        for message in before + [ready]:
            replica.apply(message)
        proxy.refuse(LISTENER)
        wait_for(lambda: health(server).status_code == 503, timeout=5, interval=0.05)
        # Written from elsewhere (a write through this process would reach the stream all the same).
        sql_write(dsn, "UPDATE todos SET completed = true WHERE id = %s RETURNING id", (keep["id"],))
        for title in ("missed", "missed too"):
            sql_write(dsn, "INSERT INTO todos (list_id, title) VALUES (personal_list(%s), %s) RETURNING id",
                      (api.user["id"], title))
        assert prune_change_log(dsn) > 0      # what the stream missed is gone from the log
        proxy.allow(LISTENER)
        while (message := s.recv(MAX_BACKOFF + MARGIN + 5)) is not None:
            replica.apply(message)                         # a change may get through; then the close
        assert s.close_code == 4008, "the stream cannot be caught up from the log: it must resync"
    finally:
        s.close()

    again = Stream(server.ws_url, f"{LIST}?since={replica.rev}", api.token)
    try:
        replica.reconnect()
        before, ready = again.sync()
        assert [m["type"] for m in before] == ["snapshot"], "the log no longer reaches back to `since`"
        for message in before + [ready]:
            replica.apply(message)
        assert replica.todos == by_id(api.list_todos()["todos"])
    finally:
        again.close()
