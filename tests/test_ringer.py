"""The wake-up path: one elected ringer per database, failover, and open transactions that hold nothing back."""
from __future__ import annotations

import os
import signal
import time
import uuid

import psycopg2

from tests.pg import new_database
from tests.storm import Reader, Storm
from tests.support import LIST, Api, Stream, by_id, elected, register, ringer_of, wait_for


def test_exactly_one_process_rings(server, start_server):
    servers = [server, start_server(), start_server()]
    ringer_of(servers)
    assert sum(elected(srv) for srv in servers) == 1


def test_when_the_ringer_is_killed_another_takes_over_and_no_change_is_lost(start_server, postgres, sql):
    dsn = new_database(postgres, sql)      # no other server (the shared one) holds its ringer lock
    servers = [start_server(database=dsn), start_server(database=dsn)]
    holder = ringer_of(servers)
    survivor = next(srv for srv in servers if srv is not holder)
    alice = register(survivor.base_url)
    for i in range(10):
        alice.create_todo(f"seed {i}")
    storm = Storm(alice, dsn)
    storm.ids = [t["id"] for t in alice.list_todos()["todos"]]
    writers = storm.threads()[:4] + storm.threads()[-1:]
    marker = uuid.uuid4().hex
    readers = [Reader(survivor, alice, "", f"end {marker}"),
               Reader(survivor, alice, "?completed=true", f"done {marker}", resume_after=1.5)]
    for thread in writers + readers:
        thread.start()
    try:
        time.sleep(1.0)
        os.killpg(holder.process.pid, signal.SIGKILL)          # the ringer's whole process group, mid-storm
        killed = time.monotonic()
        took_over = wait_for(lambda: elected(survivor), timeout=10, interval=0.05)
        takeover_s = time.monotonic() - killed
        time.sleep(1.5)
    finally:
        storm.stop.set()
        for thread in writers:
            thread.join(15)
    assert took_over and not storm.errors, storm.errors[:5]
    alice.create_todo(f"done {marker}", completed=True)
    alice.create_todo(f"end {marker}")
    for reader in readers:
        reader.join(30)
        assert not reader.is_alive() and reader.error is None, reader.error
        assert reader.replica.todos == by_id(alice.list_todos(reader.query)["todos"]), reader.query

    # After the failover: a change written by plain SQL reaches the survivor's stream promptly.
    s = Stream(survivor.ws_url, LIST, alice.token)
    try:
        s.sync()
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        written = time.monotonic()
        with conn.cursor() as cur:
            cur.execute("INSERT INTO todos (list_id, title) VALUES (personal_list(%s), 'after failover')",
                        (alice.user["id"],))
        conn.close()
        assert s.recv(10)["todo"]["title"] == "after failover"
        delivered = time.monotonic() - written
    finally:
        s.close()
    # How fast the takeover is, is measured by `make bench` (bench/wakeup.py), not asserted here.
    print(f"\nringer killed mid-storm ({storm.writes} writes): survivor elected after {takeover_s:.2f}s; "
          f"a later change delivered in {delivered * 1000:.0f} ms")


def test_an_open_write_transaction_does_not_hold_back_other_lists(server, dsn, alice: Api, bob: Api):
    """A psql session that writes to alice's list and stays open for seconds: bob's changes keep
    flowing, and alice's arrive when it commits."""
    s = Stream(server.ws_url, LIST, bob.token)
    held = psycopg2.connect(dsn)
    try:
        s.sync()
        with held.cursor() as cur:
            cur.execute("INSERT INTO todos (list_id, title) VALUES (personal_list(%s), 'held open')",
                        (alice.user["id"],))
        delays = []
        for i in range(10):
            written = time.monotonic()
            todo = bob.create_todo(f"meanwhile {i}")
            assert s.recv(5)["todo"] == todo
            delays.append(time.monotonic() - written)
            time.sleep(0.2)
        alices = Stream(server.ws_url, LIST, alice.token)
        try:
            (snapshot,), _ = alices.sync()
            assert snapshot["todos"] == []                 # not committed yet: not there
            held.commit()
            assert alices.recv(10)["todo"]["title"] == "held open"
        finally:
            alices.close()
        delays.sort()
        print(f"\nwhile a write transaction stayed open: other lists' write-to-client p50 "
              f"{delays[len(delays) // 2] * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms")
    finally:
        held.close()
        s.close()


def test_the_servers_connections_end_idle_write_transactions(dsn):
    """idle_in_transaction_session_timeout is set on every pooled connection, from the settings."""
    from todopy.app import create_app
    from todopy.settings import Settings

    app = create_app(Settings(idle_in_transaction_timeout_ms=1234), dsn)
    try:
        assert app.services.pool.query_one("SHOW idle_in_transaction_session_timeout") == ("1234ms",)
    finally:
        app.services.pool.close()

