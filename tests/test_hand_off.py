"""A write's own process hands its change to its streams as it commits (todopy.realtime.dispatcher,
`committed`): the same frames as the change log gives another process, exactly once and in order
however many writers race it, and nothing for a write that did not commit."""
from __future__ import annotations

import threading
import uuid

import requests

from tests.support import LIST, Api, ServerProcess, Stream, metric, register

WRITERS = 6
WRITES_EACH = 40


def handed(server: ServerProcess) -> float:
    return metric(requests.get(server.base_url + "/metrics", timeout=5).text, "todopy_changes_handed_total")


def next_change(s: Stream) -> dict:
    message = s.recv(10)
    assert message is not None and message["type"] == "change", message
    return message


def test_a_write_reaches_its_own_processs_streams_as_the_log_gives_them_to_another(server, start_server):
    other = start_server()
    alice = register(server.base_url)
    here = Stream(server.ws_url, LIST, alice.token)
    there = Stream(other.ws_url, LIST, alice.token)
    try:
        here.sync(), there.sync()
        before = handed(server)
        todo = alice.create_todo("handed over")
        path = f"/api/todos/{todo['id']}/"
        writes = [
            lambda: alice.put(path, {"title": "put", "completed": True}),
            lambda: alice.patch(path, {"title": "patched"}),
            lambda: alice.patch(path, {"completed": False}, headers={"Idempotency-Key": uuid.uuid4().hex}),
            lambda: alice.delete(path, headers={"Idempotency-Key": uuid.uuid4().hex}),
        ]
        frames = [next_change(here)]
        assert frames[0] == next_change(there) == {"type": "change", "op": "insert", "todo": todo,
                                                  "rev": todo["rev"], "by": alice.user["username"]}
        for write in writes:
            response = write()
            assert response.status_code in (200, 204), response.text
            frame = next_change(here)
            assert frame == next_change(there)
            if response.status_code == 200:
                assert frame["todo"] == response.json()
            frames.append(frame)
        assert [f["op"] for f in frames] == ["insert", "update", "update", "update", "delete"]
        # They came from the writes' own read-backs (a doorbell's read of the log may win a race to
        # one now and then: either way each frame came once).
        assert 1 <= handed(server) - before <= 5, handed(server) - before
        assert handed(other) == 0            # the other process read them from the log
    finally:
        here.close(), there.close()


def test_a_refused_write_hands_nothing_over(server):
    alice = register(server.base_url)
    todo = alice.create_todo("kept")
    s = Stream(server.ws_url, LIST, alice.token)
    try:
        s.sync()
        before = handed(server)
        stale = alice.put(f"/api/todos/{todo['id']}/", {"title": "lost", "completed": False},
                          headers={"If-Match": '"999"', "Idempotency-Key": uuid.uuid4().hex})
        assert stale.status_code == 412, stale.text
        s.expect_silence(0.5)
        assert handed(server) == before
    finally:
        s.close()


def test_racing_writers_of_one_list_reach_every_stream_exactly_once_in_order(server, start_server):
    """Writers of one list commit in rev order but come back in any order: a write handed over
    out of turn must leave its change to the log read. Each stream here must get every rev of
    the list once, in order, with the frames another process reads from the log."""
    other = start_server()
    alice = register(server.base_url)
    ids = [alice.create_todo(f"todo {n}")["id"] for n in range(WRITERS)]
    here = Stream(server.ws_url, LIST, alice.token)
    there = Stream(other.ws_url, LIST, alice.token)
    errors: list[str] = []

    def writer(n: int) -> None:
        api = Api(server.base_url, alice.token, alice.user)
        for i in range(WRITES_EACH):
            response = api.patch(f"/api/todos/{ids[n]}/", {"title": f"writer {n} write {i}"})
            if response.status_code != 200:
                errors.append(response.text)

    try:
        _, ready = here.sync()
        there.sync()
        before = handed(server)
        threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors[:3]
        total = WRITERS * WRITES_EACH
        got_here = [next_change(here) for _ in range(total)]
        got_there = [next_change(there) for _ in range(total)]
        revs = [f["rev"] for f in got_here]
        assert revs == list(range(ready["rev"] + 1, ready["rev"] + 1 + total)), "a rev missing, repeated or late"
        assert got_here == got_there
        here.expect_silence(0.3)
        # Both ways took part: writes handed over in turn, and writes left to the log read.
        assert 0 < handed(server) - before < total, handed(server) - before
        final = {t["id"]: t["title"] for t in alice.list_todos()["todos"]}
        assert final == {ids[n]: f"writer {n} write {WRITES_EACH - 1}" for n in range(WRITERS)}
    finally:
        here.close(), there.close()
