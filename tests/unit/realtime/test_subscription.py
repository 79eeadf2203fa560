"""Subscription.offer: which changes a stream is sent, through its bounded queue."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.realtime.rows import frame_json, title_change, todo_change
from todopy.realtime.changes import Change
from todopy.realtime.subscription import LIST_MESSAGE, PEER_GONE, ListsSubscription, Subscription


def queued(sub: Subscription) -> list[tuple[str | None, int, str]]:
    return [(change.todo_id, change.rev, op) for change, op in sub.queue]


def test_a_todo_stream_takes_its_todos_changes_as_they_are_whatever_their_state():
    sub = Subscription("l1", "u1", todo_id="t1")
    assert not sub.offer(todo_change("insert", False, todo_id="t2", rev=1))
    sub.offer(todo_change("update", True, False, todo_id="t1", rev=2))
    sub.offer(todo_change("delete", True, todo_id="t1", rev=3))
    assert queued(sub) == [("t1", 2, "update"), ("t1", 3, "delete")]


def test_a_list_stream_takes_each_change_as_its_predicate_sees_it():
    done = Subscription("l1", "u1", predicate=True)
    for change in (todo_change("insert", False, rev=1), todo_change("update", True, False, rev=2),
                   todo_change("update", False, True, rev=3), todo_change("delete", False, rev=4)):
        done.offer(change)
    assert queued(done) == [("t1", 2, "insert"), ("t1", 3, "delete")]
    everything = Subscription("l1", "u1")
    everything.offer(todo_change("delete", False, rev=4))
    assert queued(everything) == [("t1", 4, "delete")]


def test_an_offer_wakes_the_stream_and_says_when_the_queue_is_half_full():
    sub = Subscription("l1", "u1", limit=4)
    assert not sub.wakeup.is_set()
    assert sub.offer(todo_change("insert", False, rev=1)) is False
    assert sub.wakeup.is_set()
    assert sub.offer(todo_change("update", True, False, rev=2)) is True        # 2 of 4
    assert sub.offer(todo_change("update", False, True, rev=3)) is True


def test_a_full_queue_marks_the_stream_too_slow_drops_what_it_held_and_takes_nothing_more():
    sub = Subscription("l1", "u1", limit=3)
    for rev in range(1, 4):
        sub.offer(todo_change("update", rev % 2 == 0, rev % 2 == 1, rev=rev))
    assert len(sub.queue) == 3 and not sub.overflowed
    sub.offer(todo_change("update", True, False, rev=4))
    assert sub.overflowed and not sub.queue
    assert sub.offer(todo_change("update", False, True, rev=5)) is False
    assert not sub.queue


def test_while_the_stream_is_parked_the_dispatcher_writes_itself_until_it_cannot():
    sub = Subscription("l1", "u1")
    written: list[tuple[int, str]] = []

    def direct(change: Change, op: str) -> bool:
        written.append((change.rev, op))
        return change.rev < 2                   # the socket takes the first write, not the second

    sub.direct = direct
    assert sub.offer(todo_change("insert", False, rev=1)) is False
    assert written == [(1, "insert")] and not sub.queue and not sub.wakeup.is_set()
    sub.offer(todo_change("update", True, False, rev=2))
    assert queued(sub) == [("t1", 2, "update")]
    assert sub.wakeup.is_set() and sub.direct is None     # woken: writing is the stream's again
    sub.offer(todo_change("update", False, True, rev=3))
    assert written == [(1, "insert"), (2, "update")] and len(sub.queue) == 2


def test_a_new_title_reaches_list_streams_only_as_the_list_their_member_sees():
    title = title_change("Groceries")
    one_todo = Subscription("l1", "u1", todo_id="t1")
    one_todo.offer_title(title)
    sub = Subscription("l1", "u1", list_view={"id": "l1", "title": "Old", "role": "viewer"})
    sub.offer_title(title)
    assert not one_todo.queue and [op for _, op in sub.queue] == [LIST_MESSAGE]
    assert frame_json(sub.frame(title, LIST_MESSAGE)) == {
        "type": "list", "list": {"id": "l1", "title": "Groceries", "role": "viewer", "rev": 7}, "rev": 7, "by": "alice"}


def test_the_first_reason_to_end_wins():
    for sub in (Subscription("l1", "u1"), ListsSubscription("u1")):
        sub.end(PEER_GONE)
        sub.end(4403)
        assert sub.ending is PEER_GONE and sub.wakeup.is_set()


@given(st.integers(min_value=1, max_value=30), st.lists(st.booleans(), max_size=60))
def test_an_offer_queues_or_overflows_never_more_than_the_limit(limit, states):
    sub = Subscription("l1", "u1", limit=limit)
    offered = 0
    for rev, completed in enumerate(states, start=1):
        half = sub.offer(todo_change("update", completed, not completed, rev=rev))
        offered += 1
        assert len(sub.queue) <= limit
        assert sub.overflowed == (offered > limit)
        assert half == (not sub.overflowed and 2 * len(sub.queue) >= limit)
    assert [change.rev for change, _ in sub.queue] == ([] if sub.overflowed else list(range(1, offered + 1)))
