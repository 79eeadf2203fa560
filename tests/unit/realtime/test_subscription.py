"""Subscription.wants and put: which changes a stream is sent, through its bounded queue."""
from __future__ import annotations

from typing import Sequence

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.realtime.rows import member_change, title_change, todo_change
from todopy.realtime.changes import Change
from todopy.realtime.subscription import MEMBER_MESSAGE, PEER_GONE, TITLE_MESSAGE, ListsSubscription, Subscription


def offer(sub: Subscription, change: Change) -> bool:
    """What the dispatcher does for one change routed to `sub` (registry.route asks `wants`)."""
    op = sub.wants(change)
    return sub.put([(change, op)]) if op is not None else False


def queued(sub: Subscription) -> list[tuple[str | None, int, str]]:
    return [(change.todo_id, change.rev, op) for change, op in sub.queue]


def test_a_todo_stream_takes_its_todos_changes_as_they_are_whatever_their_state():
    sub = Subscription("l1", "u1", todo_id="t1")
    assert not offer(sub, todo_change("insert", False, todo_id="t2", rev=1))
    offer(sub, todo_change("update", True, False, todo_id="t1", rev=2))
    offer(sub, todo_change("delete", True, todo_id="t1", rev=3))
    assert queued(sub) == [("t1", 2, "update"), ("t1", 3, "delete")]


def test_a_list_stream_takes_each_change_as_its_predicate_sees_it():
    done = Subscription("l1", "u1", predicate=True)
    for change in (todo_change("insert", False, rev=1), todo_change("update", True, False, rev=2),
                   todo_change("update", False, True, rev=3), todo_change("delete", False, rev=4)):
        offer(done, change)
    assert queued(done) == [("t1", 2, "insert"), ("t1", 3, "delete")]
    everything = Subscription("l1", "u1")
    offer(everything, todo_change("delete", False, rev=4))
    assert queued(everything) == [("t1", 4, "delete")]


def test_an_offer_wakes_the_stream_and_says_when_the_queue_is_half_full():
    sub = Subscription("l1", "u1", limit=4)
    assert not sub.wakeup.is_set()
    assert offer(sub, todo_change("insert", False, rev=1)) is False
    assert sub.wakeup.is_set()
    assert offer(sub, todo_change("update", True, False, rev=2)) is True        # 2 of 4
    assert offer(sub, todo_change("update", False, True, rev=3)) is True


def test_a_full_queue_marks_the_stream_too_slow_drops_what_it_held_and_takes_nothing_more():
    sub = Subscription("l1", "u1", limit=3)
    for rev in range(1, 4):
        offer(sub, todo_change("update", rev % 2 == 0, rev % 2 == 1, rev=rev))
    assert len(sub.queue) == 3 and not sub.overflowed
    offer(sub, todo_change("update", True, False, rev=4))
    assert sub.overflowed and not sub.queue
    assert offer(sub, todo_change("update", False, True, rev=5)) is False
    assert not sub.queue


def test_a_new_title_reaches_list_streams_only_and_a_membership_change_those_that_asked_and_its_members_streams():
    title = title_change("Groceries")
    assert Subscription("l1", "u1", todo_id="t1").wants(title) is None
    assert Subscription("l1", "u1").wants(title) == TITLE_MESSAGE
    removal = member_change("u2", None)
    assert Subscription("l1", "u1", members=True).wants(removal) == MEMBER_MESSAGE   # asked: told
    assert Subscription("l1", "u1").wants(removal) is None                  # did not ask
    assert Subscription("l1", "u1", todo_id="t1").wants(removal) is None    # a one-todo stream is not
    assert Subscription("l1", "u2").wants(removal) == MEMBER_MESSAGE
    assert Subscription("l1", "u2", todo_id="t1").wants(removal) == MEMBER_MESSAGE


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
        half = offer(sub, todo_change("update", completed, not completed, rev=rev))
        offered += 1
        assert len(sub.queue) <= limit
        assert sub.overflowed == (offered > limit)
        assert half == (not sub.overflowed and 2 * len(sub.queue) >= limit)
    assert [change.rev for change, _ in sub.queue] == ([] if sub.overflowed else list(range(1, offered + 1)))


def test_while_the_stream_is_parked_the_dispatcher_writes_itself_until_it_cannot():
    sub = Subscription("l1", "u1")
    written: list[list[tuple[int, str]]] = []

    def direct(items: Sequence[tuple[Change, str]]) -> int:
        written.append([(change.rev, op) for change, op in items])
        return 1 if items[0][0].rev < 2 else 0   # the socket takes the first write, not the second

    sub.direct = direct
    assert offer(sub, todo_change("insert", False, rev=1)) is False
    assert written == [[(1, "insert")]] and not sub.queue and not sub.wakeup.is_set()
    offer(sub, todo_change("update", True, False, rev=2))
    assert queued(sub) == [("t1", 2, "update")]
    assert sub.wakeup.is_set() and sub.direct is None     # woken: writing is the stream's again
    offer(sub, todo_change("update", False, True, rev=3))
    assert written == [[(1, "insert")], [(2, "update")]] and len(sub.queue) == 2
    sub.direct = direct
    sub.end(4403)
    assert sub.direct is None                              # asked to end: nothing more is written for it


def test_several_changes_are_offered_to_a_parked_stream_in_one_write_and_what_it_cannot_take_is_queued_in_order():
    sub = Subscription("l1", "u1")
    calls: list[list[int]] = []

    def direct(items: Sequence[tuple[Change, str]]) -> int:
        calls.append([change.rev for change, _ in items])
        return 2                                           # it takes the first two, then must stop

    sub.direct = direct
    changes = [todo_change("update", n % 2 == 0, n % 2 == 1, rev=n) for n in range(1, 6)]
    sub.put([(change, "update") for change in changes])
    assert calls == [[1, 2, 3, 4, 5]]                      # one call for all of them
    assert [change.rev for change, _ in sub.queue] == [3, 4, 5] and sub.wakeup.is_set()


@given(st.integers(min_value=1, max_value=30), st.lists(st.integers(min_value=1, max_value=8), max_size=20))
def test_shares_of_any_size_queue_like_one_change_at_a_time(limit, shares):
    together, alone = Subscription("l1", "u1", limit=limit), Subscription("l1", "u1", limit=limit)
    rev = 0
    for size in shares:
        share = []
        for _ in range(size):
            rev += 1
            share.append((todo_change("update", rev % 2 == 0, rev % 2 == 1, rev=rev), "update"))
        together.put(share)
        for item in share:
            alone.put([item])
        assert together.overflowed == alone.overflowed
        assert [c.rev for c, _ in together.queue] == [c.rev for c, _ in alone.queue]
