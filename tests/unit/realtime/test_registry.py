"""Registry.route and the cursors: each change reaches the streams that want it once, in rev order, never
before the list is positioned; rings mark lists due only past their cursor."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.realtime.rows import CREATED, ChangeRow, member_change, title_change, todo_change
from todopy.realtime.changes import Change
from todopy.realtime.protocol import Moved
from todopy.realtime.registry import LIST_DELETED, Registry
from todopy.realtime.subscription import MEMBER_MESSAGE, TITLE_MESSAGE, ListsSubscription, Subscription


def deletion(rev: int) -> Change:
    change = title_change("gone", rev=rev)
    change.op = "delete"
    return change


def test_nothing_is_routed_before_the_list_is_positioned_and_nothing_twice():
    registry, sub = Registry(), Subscription("l1", "u1")
    registry.subscribe(sub)
    assert registry.route(todo_change("insert", False, rev=1)) == []       # syncing: its sync has this
    assert registry.position("l1", 1) and registry.take_due() == {"l1": 1}
    change = todo_change("update", True, False, rev=2)
    assert registry.route(change) == [(sub, "update")]
    assert registry.route(change) == []                                     # read again after a reconnect
    assert registry.cursor("l1") == 2


def test_each_stream_gets_the_op_its_query_sees_and_a_title_or_membership_only_where_it_belongs():
    registry = Registry()
    everything, done = Subscription("l1", "u1", members=True), Subscription("l1", "u2", predicate=True)
    one = Subscription("l1", "u2", todo_id="t1")
    for sub in (everything, done, one):
        registry.subscribe(sub)
    registry.position("l1", 0)
    assert set(registry.route(todo_change("insert", False, rev=1))) == {(everything, "insert"), (one, "insert")}
    assert set(registry.route(todo_change("update", True, False, rev=2))) == {
        (everything, "update"), (done, "insert"), (one, "update")}
    assert set(registry.route(title_change("New", rev=3))) == {(everything, TITLE_MESSAGE), (done, TITLE_MESSAGE)}
    assert set(registry.route(member_change("u2", None, rev=4))) == {
        (everything, MEMBER_MESSAGE), (done, MEMBER_MESSAGE), (one, MEMBER_MESSAGE)}
    assert set(registry.route(deletion(5))) == {(everything, LIST_DELETED), (done, LIST_DELETED),
                                                (one, LIST_DELETED)}


def test_a_cursor_only_moves_back_and_goes_with_the_lists_last_stream():
    registry, first, second = Registry(), Subscription("l1", "u1"), Subscription("l1", "u1")
    registry.subscribe(first)
    registry.position("l1", 9)
    registry.subscribe(second)
    registry.position("l1", 4)
    registry.position("l1", 7)
    assert registry.cursor("l1") == 4
    registry.unsubscribe(first)
    assert registry.cursor("l1") == 4
    registry.unsubscribe(second)
    assert registry.cursor("l1") is None and not registry.position("l1", 5) and not registry.take_due()


def test_a_ring_marks_due_only_lists_past_their_cursor_and_wakes_the_lists_streams_concerned():
    registry, sub = Registry(), Subscription("l1", "u1")
    registry.subscribe(sub)
    registry.position("l1", 5)
    registry.take_due()
    watcher, member, other = ListsSubscription("u1"), ListsSubscription("u2"), ListsSubscription("u3")
    for lists in (watcher, member, other):
        registry.subscribe_lists(lists)
    registry.watch_lists(watcher, ["l1"])
    assert registry.rung([Moved("l1", 5, False, ())]) == set() and not registry.due
    assert registry.rung([Moved("l1", 6, True, ("u2",)), Moved("l9", 3, False, ())]) == {watcher, member}
    assert registry.due == {"l1"}


def test_a_doorbell_marks_its_list_due_only_once_a_stream_of_it_is_positioned():
    registry, sub = Registry(), Subscription("l1", "u1")
    assert not registry.doorbell("l1") and not registry.due                     # not followed here
    registry.subscribe(sub)
    assert not registry.doorbell("l1") and not registry.due                     # syncing: its sync reads it
    registry.position("l1", 5)
    registry.take_due()
    assert registry.doorbell("l1") and registry.take_due() == {"l1": 5}
    assert not registry.doorbell("l2")


def test_a_session_finds_its_streams_until_they_unsubscribe():
    registry = Registry()
    sub, lists = Subscription("l1", "u1", token_hash=b"t"), ListsSubscription("u1", b"t")
    registry.subscribe(sub)
    registry.subscribe_lists(lists)
    assert set(registry.of_token(b"t")) == {sub, lists} and registry.tokens() == [b"t"]
    registry.unsubscribe(sub)
    registry.unsubscribe_lists(lists)
    assert registry.of_token(b"t") == [] and registry.tokens() == []


# A log read in batches that overlap (re-reads after reconnects), and streams positioning in between.
events = st.lists(st.one_of(st.tuples(st.just("read"), st.integers(1, 40), st.integers(0, 8)),
                            st.tuples(st.just("position"), st.integers(0, 40))), max_size=30)


@given(events)
def test_a_change_is_routed_exactly_when_it_is_past_the_cursor_which_positions_only_move_back(steps):
    """The model: no cursor until the first position; a position takes the cursor back to it (a later
    stream synced earlier: its streams drop what they already sent, by rev); a routed change moves it on."""
    registry, sub = Registry(), Subscription("l1", "u1")
    registry.subscribe(sub)
    cursor = None
    for step in steps:
        if step[0] == "position":
            registry.position("l1", step[1])
            cursor = step[1] if cursor is None else min(cursor, step[1])
            continue
        _, start, count = step
        for rev in range(start, start + count):
            routed = registry.route(todo_change("update", rev % 2 == 0, rev % 2 == 1, rev=rev))
            expected = cursor is not None and rev > cursor
            assert [op for _, op in routed] == (["update"] if expected else [])
            if expected:
                cursor = rev
        assert registry.cursor("l1") == cursor


def written(list_id: str, rev: int) -> ChangeRow:
    """A change-log row as a writer of this process reads back its own change (todos.sql's `written`)."""
    return ChangeRow(list_id, rev, "todo", "update", "t1", "milk", True, CREATED, False, None, None, CREATED,
                     "alice", None)


def test_a_writers_own_changes_go_at_once_only_where_they_follow_the_cursor():
    registry = Registry()
    for list_id in ("l1", "l2", "l3"):
        registry.subscribe(Subscription(list_id, "u1"))
    registry.position("l1", 4), registry.position("l2", 4), registry.position("l3", 4)
    registry.take_due()
    rows = [written("l1", 6), written("l1", 5), written("l2", 4), written("l2", 5), written("l3", 7),
            written("unfollowed", 1)]
    assert [(row.list_id, row.rev) for row in registry.follow_on(rows)] == [("l1", 5), ("l1", 6), ("l2", 5)]
    # l3's rev 5 and 6 are not here: the list is read instead, and nothing of it goes at once.
    assert registry.due == {"l3"}
    assert registry.cursor("l1") == 4          # `route` moves the cursor, as the rows are delivered


def test_a_writers_change_already_delivered_or_of_a_list_not_positioned_goes_nowhere():
    registry = Registry()
    registry.subscribe(Subscription("l1", "u1"))
    assert registry.follow_on([written("l1", 1)]) == [] and registry.due == set()    # still syncing
    registry.position("l1", 3)
    registry.take_due()
    assert registry.follow_on([written("l1", 2), written("l1", 3)]) == [] and registry.due == set()
