"""Stream.send_now: the dispatcher's own write to a parked stream, several changes in one write."""
from __future__ import annotations

from tests.unit.realtime.rows import frame_json, member_change, title_change, todo_change
from todopy.metrics import Metrics
from todopy.realtime.connection import Stream
from todopy.realtime.subscription import MEMBER_MESSAGE, TITLE_MESSAGE, Subscription


class FakeSocket:
    """What send_now uses of a Socket: try_send, which takes whole writes or none."""

    def __init__(self, takes: bool = True) -> None:
        self.takes = takes
        self.writes: list[bytes] = []
        self.unsent = b""

    def try_send(self, data: bytes) -> bool:
        if self.takes:
            self.writes.append(data)
        return self.takes


def split_frames(data: bytes) -> list[dict]:
    """The messages of back-to-back text frames (under 64 KiB each)."""
    messages = []
    while data:
        length, start = (int.from_bytes(data[2:4], "big"), 4) if data[1] == 126 else (data[1], 2)
        messages.append(frame_json(data[:start + length]))
        data = data[start + length:]
    return messages


def stream_of(sub: Subscription, socket: FakeSocket) -> Stream:
    return Stream(socket, sub, Metrics(), opened=0.0)   # type: ignore[arg-type]


def test_changes_read_together_leave_in_one_write_in_order_and_the_stream_remembers_the_last():
    sub, socket = Subscription("l1", "u1"), FakeSocket()
    items = [(todo_change("insert", False, rev=3), "insert"), (todo_change("update", True, False, rev=4), "update"),
             (title_change("Groceries", rev=5), TITLE_MESSAGE)]
    assert stream_of(sub, socket).send_now(items) == 3
    assert len(socket.writes) == 1
    messages = split_frames(socket.writes[0])
    assert [(m["type"], m.get("op"), m["rev"]) for m in messages][:2] == [("change", "insert", 3), ("change", "update", 4)]
    assert messages[2]["type"] == "list" and messages[2]["list"]["title"] == "Groceries"
    assert sub.sent_rev == 5 and sub.list_as_seen["title"] == "Groceries"


def test_what_was_already_sent_is_skipped_and_a_membership_change_stops_the_write_for_the_greenlet():
    sub, socket = Subscription("l1", "u1"), FakeSocket()
    sub.sent_rev = 3
    items = [(todo_change("update", True, False, rev=3), "update"), (todo_change("update", False, True, rev=4), "update"),
             (member_change("u1", None, rev=5), MEMBER_MESSAGE), (todo_change("insert", False, rev=6), "insert")]
    assert stream_of(sub, socket).send_now(items) == 2       # rev 3 skipped, rev 4 written; the rest queued
    assert [m["rev"] for m in split_frames(socket.writes[0])] == [4]
    assert sub.sent_rev == 4


def test_a_socket_that_cannot_take_the_write_takes_none_of_it():
    sub, socket = Subscription("l1", "u1"), FakeSocket(takes=False)
    items = [(todo_change("insert", False, rev=1), "insert"), (todo_change("delete", False, rev=2), "delete")]
    assert stream_of(sub, socket).send_now(items) == 0
    assert sub.sent_rev == 0


def test_a_one_todo_streams_delete_is_left_to_its_greenlet_which_closes_it():
    sub, socket = Subscription("l1", "u1", todo_id="t1"), FakeSocket()
    items = [(todo_change("update", True, False, rev=1), "update"), (todo_change("delete", True, rev=2), "delete")]
    assert stream_of(sub, socket).send_now(items) == 1
    assert sub.sent_rev == 1
