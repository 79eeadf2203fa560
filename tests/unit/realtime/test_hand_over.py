"""The dispatcher's hand-over: each subscription gets its share of one read at once, in the list's order."""
from __future__ import annotations

from typing import Sequence

from tests.unit.realtime.rows import CREATED, ChangeRow
from todopy.metrics import Metrics
from todopy.realtime.changes import Change
from todopy.realtime.dispatcher import Dispatcher
from todopy.realtime.protocol import Close
from todopy.realtime.subscription import Subscription


def todo_row(rev: int, completed: bool) -> ChangeRow:
    return ChangeRow("l1", rev, "todo", "update", "t1", "milk", completed, CREATED, not completed, None, None,
                     CREATED, "alice", None)


def list_deleted(rev: int) -> ChangeRow:
    return ChangeRow("l1", rev, "list", "delete", None, "Groceries", None, None, None, None, None, CREATED,
                     "alice", None)


def dispatcher_following(subs: list[Subscription], stream_queue_size: int = 1000) -> Dispatcher:
    """A dispatcher (never started: no database) whose registry has `subs` synced up to rev 0."""
    dispatcher = Dispatcher("postgresql://unused", None, None, Metrics(),  # type: ignore[arg-type]
                            stream_queue_size=stream_queue_size)
    for sub in subs:
        dispatcher.registry.subscribe(sub)
    dispatcher.registry.position("l1", 0)
    return dispatcher


def recording(sub: Subscription, calls: list[list[int]]) -> None:
    def direct(items: Sequence[tuple[Change, str]]) -> int:
        calls.append([change.rev for change, _ in items])
        return len(items)
    sub.direct = direct


def test_a_parked_stream_gets_all_its_changes_of_one_read_in_one_write_and_a_busy_one_in_its_queue():
    parked, busy, done_only = Subscription("l1", "u1"), Subscription("l1", "u2"), Subscription("l1", "u3", predicate=True)
    calls: list[list[int]] = []
    recording(parked, calls)
    rows = [todo_row(rev, rev % 2 == 1) for rev in range(1, 6)]
    dispatcher_following([parked, busy, done_only]).hand_over.deliver(rows)
    assert calls == [[1, 2, 3, 4, 5]]
    assert [change.rev for change, _ in busy.queue] == [1, 2, 3, 4, 5]
    # Its share is what it wants of each change: completed -> insert, uncompleted -> delete.
    assert [(change.rev, op) for change, op in done_only.queue] == [(1, "insert"), (2, "delete"), (3, "insert"),
                                                                     (4, "delete"), (5, "insert")]


def test_a_read_is_handed_over_a_quarter_of_the_stream_queue_at_a_time():
    parked = Subscription("l1", "u1", limit=8)
    calls: list[list[int]] = []
    recording(parked, calls)
    dispatcher_following([parked], stream_queue_size=8).hand_over.deliver([todo_row(rev, True) for rev in range(1, 6)])
    assert calls == [[1, 2], [3, 4], [5]]


def test_the_lists_deletion_ends_its_streams_after_the_changes_before_it():
    parked, busy = Subscription("l1", "u1"), Subscription("l1", "u2")
    calls: list[list[int]] = []
    recording(parked, calls)
    dispatcher_following([parked, busy]).hand_over.deliver([todo_row(1, True), todo_row(2, False), list_deleted(3)])
    assert calls == [[1, 2]] and [change.rev for change, _ in busy.queue] == [1, 2]
    assert parked.ending == Close.LIST_DELETED and busy.ending == Close.LIST_DELETED
