"""Streams: resume with `since`, race-free start and exactly-once delivery under concurrent writers.

The storm test is the proof docs/design.md asks for ("rev order is not commit
order"): many writers at once, through REST and through plain SQL transactions
that hold their rev for a while before committing, while streams connect,
disconnect and resume; every stream must end up equal to the REST view.
"""
from __future__ import annotations

import random
import threading
import time
import uuid

import psycopg2

from tests.pg import waiting_for
from tests.support import Api, Stream, wait_for
from tests.test_streams import LIST, Replica, by_id, read_until, stream

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
            assert resumed.recv(10) == {"type": "change", "op": "insert", "todo": after, "rev": after["rev"]}
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


def test_writers_that_lock_rows_in_opposite_orders_do_not_deadlock_and_stream_in_commit_order(server, alice, dsn,
                                                                                             sql):
    """A writer holding the rev lock that needs a row another writer holds, while that one waits for the lock."""
    first, second = alice.create_todo("first"), alice.create_todo("second")
    s = stream(server, alice)
    conn = psycopg2.connect(dsn)
    try:
        s.sync()
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout = '10s'")
            cur.execute("UPDATE todos SET title = 'sql, first' WHERE id = %s", (first["id"],))  # takes the rev lock
            result: dict = {}
            patch = threading.Thread(target=lambda: result.update(
                response=Api(alice.base_url, alice.token).patch(f"/api/todos/{second['id']}/", {"completed": True})))
            patch.start()
            # The PATCH must be waiting on this transaction before it asks for the PATCH's row: else
            # the two never cross and there is nothing to deadlock.
            blocker = conn.get_backend_pid()
            wait_for(lambda: waiting_for(sql, blocker) == 1, timeout=10, interval=0.02)
            cur.execute("UPDATE todos SET title = 'sql, second' WHERE id = %s", (second["id"],))
        conn.commit()
        patch.join(15)
        response = result["response"]
        assert response.status_code == 200, response.text
        assert response.json()["title"] == "sql, second"                  # it ran after the SQL transaction
        messages = read_until(s, lambda m: m["rev"] == response.json()["rev"])
        assert [(m["todo"]["id"], m["todo"]["title"]) for m in messages] == [
            (first["id"], "sql, first"), (second["id"], "sql, second"), (second["id"], "sql, second")]
        assert messages[-1]["todo"] == response.json()
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
REST_WRITERS = 8
SQL_WRITERS = 3


class Storm:
    """Writers of one list: REST threads (as `apis`, in turn) and plain-SQL transactions, until `stop`."""

    def __init__(self, api: Api, dsn: str, *, base: str = LIST, list_id: str | None = None,
                 apis: list[Api] | None = None) -> None:
        self.api, self.dsn = api, dsn
        self.base = base                           # the list's todos URL
        self.list_id = list_id                     # None: the api user's personal list
        self.apis = apis or [api]
        self.stop = threading.Event()
        self.ids: list[str] = []
        self.lock = threading.Lock()
        self.errors: list[str] = []
        self.writes = 0

    def _pick(self, rng: random.Random) -> str | None:
        with self.lock:
            return rng.choice(self.ids) if self.ids else None

    def rest_writer(self, seed: int) -> None:
        writer = self.apis[seed % len(self.apis)]
        rng, api, LIST = random.Random(seed), Api(writer.base_url, writer.token), self.base
        while not self.stop.is_set():
            roll, todo_id = rng.random(), self._pick(rng)
            crowded = len(self.ids) > 120
            try:
                if roll < 0.30 and not crowded or todo_id is None:
                    r = api.post(LIST, {"title": f"t{rng.random():.6f}", "completed": rng.random() < 0.3})
                    if r.status_code == 201:
                        with self.lock:
                            self.ids.append(r.json()["id"])
                elif roll < 0.55:
                    r = api.patch(f"{LIST}{todo_id}/", rng.choice([
                        {"completed": rng.random() < 0.5}, {"title": f"edit {rng.random():.6f}"},
                        {"title": "both", "completed": True}]))
                elif roll < 0.65:
                    r = api.put(f"{LIST}{todo_id}/", {"title": "put", "completed": rng.random() < 0.5})
                elif roll < 0.80 or crowded and roll < 0.9:
                    r = api.delete(f"{LIST}{todo_id}/")
                    with self.lock:
                        if todo_id in self.ids:
                            self.ids.remove(todo_id)
                elif roll < 0.93:
                    query = rng.choice(["", "?completed=true", "?completed=false"])
                    r = api.patch(LIST + query, {"completed": rng.random() < 0.5})
                else:
                    r = api.delete(LIST + "?completed=true")
                if r.status_code not in (200, 201, 204, 404):
                    self.errors.append(f"{r.request.method} {r.request.path_url}: {r.status_code} {r.text[:200]}")
                self.writes += 1
            except Exception as error:  # noqa: BLE001 - reported by the test
                self.errors.append(f"writer: {error!r}")

    def sql_writer(self, seed: int) -> None:
        """Transactions that take a rev, then dawdle before committing: the rev/commit-order trap."""
        rng = random.Random(seed)
        conn = psycopg2.connect(self.dsn)
        list_id = self.list_id
        try:
            if list_id is None:
                with conn, conn.cursor() as cur:
                    cur.execute("SELECT personal_list(%s)", (self.api.user["id"],))
                    (list_id,) = cur.fetchone()
            while not self.stop.is_set():
                try:
                    with conn, conn.cursor() as cur:
                        cur.execute("INSERT INTO todos (list_id, title) VALUES (%s, 'from sql') RETURNING id",
                                    (list_id,))
                        (todo_id,) = cur.fetchone()
                        cur.execute("SELECT pg_sleep(%s)", (rng.random() * 0.004,))
                        cur.execute("UPDATE todos SET completed = true, title = 'from sql, done' WHERE id = %s",
                                    (todo_id,))
                        if rng.random() < 0.5:
                            cur.execute("DELETE FROM todos WHERE id = %s", (todo_id,))
                    self.writes += 1
                    time.sleep(rng.random() * 0.01)
                except psycopg2.Error as error:
                    self.errors.append(f"sql writer: {error!r}")
        finally:
            conn.close()

    def threads(self) -> list[threading.Thread]:
        return ([threading.Thread(target=self.rest_writer, args=(i,), daemon=True) for i in range(REST_WRITERS)]
                + [threading.Thread(target=self.sql_writer, args=(100 + i,), daemon=True)
                   for i in range(SQL_WRITERS)])


class Reader(threading.Thread):
    """Reads one stream into a Replica until it sees `last_title`; optionally drops and resumes once."""

    def __init__(self, server, api: Api, query: str, last_title: str, *, resume_after: float | None = None,
                 base: str = LIST) -> None:
        super().__init__(daemon=True)
        self.server, self.api, self.query, self.last_title = server, api, query, last_title
        self.base = base
        self.resume_after = resume_after
        self.replica = Replica()
        self.error: BaseException | None = None
        self.resumed_with: str | None = None

    def run(self) -> None:
        try:
            self._read(stream(self.server, self.api, self.base + self.query), self.resume_after)
            if self.resume_after is not None:
                time.sleep(0.3)
                self.replica.reconnect()
                sep = "&" if self.query else "?"
                self.resumed_with = f"{self.query}{sep}since={self.replica.rev}"
                self._read(stream(self.server, self.api, self.base + self.resumed_with), None)
        except BaseException as error:  # noqa: BLE001 - re-raised by the test
            self.error = error

    def _read(self, s: Stream, for_seconds: float | None) -> None:
        deadline = time.monotonic() + (for_seconds if for_seconds is not None else 60)
        try:
            while time.monotonic() < deadline:
                message = s.recv(20)
                assert message is not None, f"closed with {s.close_code}"
                self.replica.apply(message)
                if message["type"] == "change" and message["todo"].get("title") == self.last_title:
                    assert self.replica.ready
                    return
        finally:
            s.close()


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
        assert s.recv(10) == {"type": "change", "op": "insert", "todo": created, "rev": created["rev"]}
        assert one.recv(10)["todo"] == created
        on_other = Api(other.base_url, alice.token).patch(f"/api/todos/{created['id']}/", {"title": "via other"})
        assert s.recv(10)["todo"] == on_other.json()
    finally:
        s.close(), one.close()
