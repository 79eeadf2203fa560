"""Change.op_for and op_for_resume: how a live query (`completed=true|false`) sees each todo change."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.realtime.rows import CREATED, frame_json, title_change, todo_change
from todopy.realtime.changes import Change


# (op, completed before, completed after, predicate) -> what a stream of `completed == predicate` is sent.
TRUTH_TABLE = [
    # An insert enters the view when it matches.
    ("insert", None, True, True, "insert"),
    ("insert", None, False, True, None),
    ("insert", None, False, False, "insert"),
    ("insert", None, True, False, None),
    # An update: in before and after is an update; entering, an insert; leaving, a delete.
    ("update", True, True, True, "update"),
    ("update", False, True, True, "insert"),
    ("update", True, False, True, "delete"),
    ("update", False, False, True, None),
    ("update", False, False, False, "update"),
    ("update", True, False, False, "insert"),
    ("update", False, True, False, "delete"),
    ("update", True, True, False, None),
    # A delete leaves the view only if the todo was in it.
    ("delete", None, True, True, "delete"),
    ("delete", None, False, True, None),
    ("delete", None, False, False, "delete"),
    ("delete", None, True, False, None),
]


@pytest.mark.parametrize("op, before, after, predicate, expected", TRUTH_TABLE)
def test_op_for_a_live_query(op, before, after, predicate, expected):
    # A delete's `completed` is the row as it was; an update's `was_completed` is the value before it.
    change = todo_change(op, after, before if op == "update" else None)
    assert change.op_for(predicate) == expected


@pytest.mark.parametrize("op", ["insert", "update", "delete"])
@pytest.mark.parametrize("completed", [True, False])
def test_a_stream_without_a_predicate_sees_every_op_as_it_is(op, completed):
    assert todo_change(op, completed, not completed if op == "update" else None).op_for(None) == op


@pytest.mark.parametrize("op, completed, predicate, expected", [
    ("insert", True, True, "insert"), ("insert", False, True, "delete"),
    ("update", True, True, "update"), ("update", False, True, "delete"),
    ("update", False, False, "update"), ("update", True, False, "delete"),
    ("delete", True, True, "delete"), ("delete", False, True, "delete"),
    ("insert", False, None, "insert"), ("update", True, None, "update"),
])
def test_op_for_resume_sends_what_the_row_is_now(op, completed, predicate, expected):
    assert todo_change(op, completed, not completed).op_for_resume(predicate) == expected


def test_a_frame_is_the_change_message_and_is_encoded_once_per_op():
    change = todo_change("update", True, False)
    frame = change.frame("insert")
    assert change.frame("insert") is frame
    assert frame_json(frame) == {
        "type": "change", "op": "insert", "rev": 7, "by": "alice",
        "todo": {"id": "t1", "title": "milk", "completed": True, "created_time": CREATED.isoformat(), "rev": 7}}
    assert change.frame("delete") != frame


def test_a_change_by_a_database_writer_that_did_not_say_names_no_author():
    assert frame_json(todo_change("insert", False, by=None).frame("insert"))["by"] is None


def test_a_list_message_names_its_author():
    message = frame_json(title_change("Shop", by="bob").list_frame({"id": "l1", "title": "Old", "rev": 3}))
    assert message == {"type": "list", "list": {"id": "l1", "title": "Shop", "rev": 7}, "rev": 7, "by": "bob"}


# -- the property behind the table: a filtered stream mirrors the filtered list --------------------

# A todo's life as steps on a few ids: (todo, completed after; None deletes it).
steps = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.one_of(st.none(), st.booleans())), max_size=40)


def changes_of(plan: list[tuple[str, bool | None]]) -> list[tuple[Change, dict[str, bool]]]:
    """The changes a sequence of writes logs, each with the whole list (todo -> completed) after it."""
    todos: dict[str, bool] = {}
    logged = []
    for rev, (todo_id, completed) in enumerate(plan, start=1):
        before = todos.get(todo_id)
        if completed is None:
            if before is None:
                continue                                       # nothing to delete
            del todos[todo_id]
            change = todo_change("delete", before, todo_id=todo_id, rev=rev)
        elif before is None:
            todos[todo_id] = completed
            change = todo_change("insert", completed, todo_id=todo_id, rev=rev)
        else:
            todos[todo_id] = completed
            change = todo_change("update", completed, before, todo_id=todo_id, rev=rev)
        logged.append((change, dict(todos)))
    return logged


def apply(view: dict[str, bool], change: Change, op: str | None) -> None:
    """What docs/api.md tells a client to do with a change: upsert, or delete if present."""
    if op == "delete":
        view.pop(change.todo_id, None)
    elif op is not None:
        assert change.todo_id is not None and change.completed is not None
        view[change.todo_id] = change.completed


@given(steps, st.booleans())
def test_a_live_query_applied_change_by_change_is_always_the_filtered_list(plan, predicate):
    view: dict[str, bool] = {}
    for change, todos in changes_of(plan):
        op = change.op_for(predicate)
        if op == "insert":
            assert change.todo_id not in view, "an insert of a todo the view already shows"
        elif op in ("update", "delete"):
            assert change.todo_id in view, f"an {op} of a todo the view does not show"
        apply(view, change, op)
        assert view == {todo: done for todo, done in todos.items() if done == predicate}


@given(steps, st.integers(min_value=0, max_value=40), st.one_of(st.none(), st.booleans()))
def test_a_resume_from_any_point_ends_at_the_filtered_list(plan, since, predicate):
    logged = changes_of(plan)
    since = min(since, len(logged))
    before = logged[since - 1][1] if since else {}
    view = {todo: done for todo, done in before.items() if predicate is None or done == predicate}
    for change, _ in logged[since:]:
        apply(view, change, change.op_for_resume(predicate))
    after = logged[-1][1] if logged else {}
    assert view == {todo: done for todo, done in after.items() if predicate is None or done == predicate}
