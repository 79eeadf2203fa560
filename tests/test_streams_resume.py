"""Streams: resume with `since`, race-free start and exactly-once delivery under concurrent writers.

The storm test is the proof docs/design.md asks for ("rev order is not commit
order"): many writers at once, through REST and through plain SQL transactions
that hold their rev for a while before committing, while streams connect,
disconnect and resume; every stream must end up equal to the REST view.
"""
from __future__ import annotations

import time
import uuid

import psycopg2

from tests.storm import REST_WRITERS, SQL_WRITERS, Reader, Storm
from tests.support import LIST, Api, Replica, Stream, by_id, read_until, stream, wait_for

# -- resume ---------------------------------------------------------------------------


def test_since_delivers_exactly_the_missed_changes_then_ready(server, alice):
    keep, gone = alice.create_todo("keep"), alice.create_todo("gone")
    witness = stream(server, alice)             # stays connected: it sees every change live
    s = stream(server, alice)
    try:
        witness.sync()
        replica = Replica()
        before, ready = s.sync()
        for message in before + [ready]:
            replica.apply(message)
        s.close()                               # offline from here

        written = [alice.create_todo("new while away")["rev"],
                   alice.patch(f"/api/todos/{keep['id']}/", {"title": "kept, renamed"}).json()["rev"]]
        alice.delete(f"/api/todos/{gone['id']}/")
        toggled = alice.patch(LIST, {"completed": True}).json()
        cleared = alice.delete(LIST + "?completed=true").json()
        assert cleared["deleted"] == 2
        missed = read_until(witness, lambda m: m["rev"] == cleared["rev"])
        assert len(missed) == 2 + 1 + len(toggled["todos"]) + 2
        assert set(written) <= {m["rev"] for m in missed}

        resumed = stream(server, alice, f"{LIST}?since={replica.rev}")
        try:
            before, ready = resumed.sync()
            assert before == missed                  # exactly those, in order, deletes included
            assert ready["rev"] >= cleared["rev"]
            replica.reconnect()
            for message in before + [ready]:
                replica.apply(message)
            assert replica.todos == by_id(alice.list_todos()["todos"]) == {}

            after = alice.create_todo("live again")      # and live from there
            assert resumed.recv(10) == {"type": "change", "op": "insert", "todo": after, "rev": after["rev"],
                                        "by": alice.user["username"]}
        finally:
            resumed.close()
    finally:
        witness.close()


def test_since_with_nothing_missed_sends_only_ready(server, alice):
    todo = alice.create_todo()
    s = stream(server, alice, f"{LIST}?since={todo['rev']}")
    try:
        before, ready = s.sync()
        assert before == [] and ready["rev"] >= todo["rev"]
        s.expect_silence()
    finally:
        s.close()


def test_since_with_a_live_query_sends_each_missed_change_by_whether_the_row_now_matches(server, alice):
    a, b = alice.create_todo("a"), alice.create_todo("b", completed=True)
    replica = Replica()
    s = stream(server, alice, LIST + "?completed=true")
    try:
        before, ready = s.sync()
        for message in before + [ready]:
            replica.apply(message)
    finally:
        s.close()
    assert list(replica.todos) == [b["id"]]

    c = alice.create_todo("c")                                          # never matched
    a1 = alice.patch(f"/api/todos/{a['id']}/", {"completed": True}).json()   # enters
    b1 = alice.patch(f"/api/todos/{b['id']}/", {"completed": False}).json()  # leaves
    c1 = alice.patch(f"/api/todos/{c['id']}/", {"title": "c renamed"}).json()
    a2 = alice.patch(f"/api/todos/{a['id']}/", {"title": "a, done"}).json()
    d = alice.create_todo("d", completed=True)                          # born matching
    alice.delete(f"/api/todos/{d['id']}/")

    s = stream(server, alice, f"{LIST}?completed=true&since={replica.rev}")
    try:
        before, ready = s.sync()
        got = [(m["op"], m["todo"]["id"], m["rev"]) for m in before]
        assert got[:6] == [("delete", c["id"], c["rev"]), ("update", a["id"], a1["rev"]),
                           ("delete", b["id"], b1["rev"]), ("delete", c["id"], c1["rev"]),
                           ("update", a["id"], a2["rev"]), ("insert", d["id"], d["rev"])]
        assert got[6][:2] == ("delete", d["id"]) and len(got) == 7
        for message in before:
            if message["op"] != "delete":
                assert message["todo"]["completed"] is True
        replica.reconnect()
        for message in before + [ready]:
            replica.apply(message)
        assert replica.todos == by_id(alice.list_todos("?completed=true")["todos"]) == {a["id"]: a2}
    finally:
        s.close()


def test_since_older_than_the_kept_log_sends_a_snapshot(server, alice, sql):
    old = alice.create_todo("before the prune")
    for i in range(3):
        alice.patch(f"/api/todos/{old['id']}/", {"title": f"edit {i}"})
    latest = alice.create_todo("latest")
    sql("UPDATE changes SET changed_time = now() - interval '1 hour' WHERE list_id = personal_list(%s)"
        " AND rev < %s", (alice.user["id"], latest["rev"]))
    sql("SELECT prune_changes(interval '1 minute')")
    s = stream(server, alice, f"{LIST}?since={old['rev']}")
    try:
        before, ready = s.sync()
        assert len(before) == 1 and before[0]["type"] == "snapshot"
        assert before[0]["todos"] == alice.list_todos()["todos"]
        assert [t["title"] for t in before[0]["todos"]] == ["edit 2", "latest"]
        assert ready["rev"] >= before[0]["rev"] >= latest["rev"]
    finally:
        s.close()


def test_since_from_the_future_sends_a_snapshot(server, alice):
    alice.create_todo()
    head = alice.list_todos()["rev"]
    s = stream(server, alice, f"{LIST}?since={head + 10_000}")
    try:
        before, ready = s.sync()
        assert [m["type"] for m in before] == ["snapshot"] and ready["rev"] >= before[0]["rev"]
    finally:
        s.close()


# -- concurrent writers -------------------------------------------------------------------


def test_an_open_sql_writer_holds_back_no_rest_write_of_another_row_and_streams_follow_commit_order(server, alice,
                                                                                                    dsn, sql):
    """Revs are taken at commit: a SQL transaction left open on one todo neither blocks a PATCH of
    another (no list lock mid-transaction, so no lock order to cross) nor reorders the stream."""
    first, second = alice.create_todo("first"), alice.create_todo("second")
    s = stream(server, alice)
    conn = psycopg2.connect(dsn)
    try:
        s.sync()
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout = '10s'")
            cur.execute("UPDATE todos SET title = 'sql, first' WHERE id = %s", (first["id"],))
            patched = Api(alice.base_url, alice.token).patch(f"/api/todos/{second['id']}/", {"completed": True})
            assert patched.status_code == 200, patched.text           # answered while the SQL writer is open
            cur.execute("UPDATE todos SET title = 'sql, second' WHERE id = %s", (second["id"],))
        conn.commit()
        head = sql("SELECT max(rev) FROM todos WHERE id IN (%s, %s)", (first["id"], second["id"]))[0][0]
        messages = read_until(s, lambda m: m["rev"] == head)
        assert [(m["todo"]["id"], m["todo"]["title"], m["todo"]["completed"]) for m in messages] == [
            (second["id"], "second", True), (first["id"], "sql, first", False), (second["id"], "sql, second", True)]
        assert [m["rev"] for m in messages] == [patched.json()["rev"], patched.json()["rev"] + 1, head]
    finally:
        s.close(), conn.close()


def test_a_resume_carries_only_the_users_own_changes_while_another_user_writes(server, alice, bob):
    """Resume isolation: from the user's own recent rev, with someone else writing all along."""
    mine = alice.create_todo("mine")
    since = alice.list_todos()["rev"]
    bobs = [bob.create_todo(f"bob {i}") for i in range(3)]       # interleaved with alice's writes
    edited = alice.patch(f"/api/todos/{mine['id']}/", {"title": "mine, edited"}).json()
    bobs.append(bob.patch(f"/api/todos/{bobs[0]['id']}/", {"completed": True}).json())
    added = alice.create_todo("mine too")
    s = stream(server, alice, f"{LIST}?since={since}")
    try:
        missed, ready = s.sync()
        assert [m["type"] for m in missed] == ["change", "change"], "a resume, not a snapshot"
        assert [m["todo"] for m in missed] == [edited, added]
        assert not {m["todo"]["id"] for m in missed} & {b["id"] for b in bobs}
        assert ready["rev"] == added["rev"]
    finally:
        s.close()


# -- a write storm ---------------------------------------------------------------------

STORM_SECONDS = 4.0


def test_streams_started_during_a_write_storm_end_up_exactly_right(server, alice, dsn):
    for i in range(30):
        alice.create_todo(f"seed {i}", completed=i % 3 == 0)
    storm = Storm(alice, dsn)
    storm.ids = [t["id"] for t in alice.list_todos()["todos"]]
    writers = storm.threads()
    marker = uuid.uuid4().hex
    done_title, open_title = f"last done {marker}", f"last open {marker}"
    plan = [  # (start after seconds, query, last title, resume_after)
        (0.4, "", open_title, None),
        (0.8, "?completed=true", done_title, None),
        (0.8, "?completed=false", open_title, None),
        (1.2, "", open_title, 1.0),
        (1.6, "?completed=true", done_title, 0.8),
        (2.0, "?completed=false", open_title, 1.2),
        (2.5, "", open_title, None),
    ]
    readers = []
    started = time.monotonic()
    for thread in writers:
        thread.start()
    try:
        for at, query, last_title, resume_after in plan:
            time.sleep(max(0.0, started + at - time.monotonic()))
            reader = Reader(server, alice, query, last_title, resume_after=resume_after)
            reader.start()
            readers.append(reader)
        time.sleep(max(0.0, started + STORM_SECONDS - time.monotonic()))
    finally:
        storm.stop.set()
        for thread in writers:
            thread.join(15)
    assert not storm.errors, storm.errors[:10]
    done_last = alice.create_todo(done_title, completed=True)
    open_last = alice.create_todo(open_title)
    for reader in readers:
        reader.join(30)
        assert not reader.is_alive(), f"reader {reader.query} still waiting"
        if reader.error is not None:
            raise reader.error

    views = {query: by_id(alice.list_todos(query)["todos"]) for query in ("", "?completed=true", "?completed=false")}
    assert open_last["id"] in views[""] and done_last["id"] in views["?completed=true"]
    for reader in readers:
        assert reader.replica.todos == views[reader.query], (reader.query, reader.resumed_with)
    changes = sum(r.replica.applied for r in readers)
    print(f"\nstorm: {storm.writes} writes by {REST_WRITERS} REST and {SQL_WRITERS} SQL writers in "
          f"{STORM_SECONDS:.0f}s; {len(readers)} streams, {changes} changes checked; "
          f"{len(views[''])} todos at the end")
    assert storm.writes > 100


# -- several processes ---------------------------------------------------------------------


def test_a_write_through_one_server_reaches_a_stream_on_another(server, alice, start_server):
    other = start_server()
    s = Stream(other.ws_url, LIST, alice.token)
    one = Stream(other.ws_url, LIST + "?completed=true", alice.token)
    try:
        s.sync(), one.sync()
        created = alice.create_todo("through the first server", completed=True)
        assert s.recv(10) == {"type": "change", "op": "insert", "todo": created, "rev": created["rev"],
                              "by": alice.user["username"]}
        assert one.recv(10)["todo"] == created
        on_other = Api(other.base_url, alice.token).patch(f"/api/todos/{created['id']}/", {"title": "via other"})
        assert s.recv(10)["todo"] == on_other.json()
    finally:
        s.close(), one.close()
