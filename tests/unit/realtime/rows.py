"""Changes as the change log gives them to the dispatcher, built for tests."""
from __future__ import annotations

import datetime
import json
from collections import namedtuple
from typing import Any

from todopy.realtime.changes import Change

CREATED = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
# The columns of changes.sql's `after`, by name, as Change reads them.
ChangeRow = namedtuple("ChangeRow", "list_id rev kind op todo_id title completed created_time was_completed "
                                    "user_id role changed_time by member_name")


def todo_change(op: str, completed: bool, was_completed: bool | None = None, *, todo_id: str = "t1",
                rev: int = 7, title: str = "milk", by: str | None = "alice") -> Change:
    """A todo's change (a delete carries the row as it was; `was_completed`: an update's value before)."""
    return Change(ChangeRow("l1", rev, "todo", op, todo_id, title, completed, CREATED, was_completed, None, None,
                            CREATED, by, None))


def title_change(title: str, *, rev: int = 7, by: str | None = "alice") -> Change:
    """The list's new title."""
    return Change(ChangeRow("l1", rev, "list", "update", None, title, None, None, None, None, None, CREATED, by, None))


def member_change(user_id: str, role: str | None, *, rev: int = 7) -> Change:
    """A membership change: `user_id`'s role now (None: removed)."""
    op = "delete" if role is None else "insert"
    return Change(ChangeRow("l1", rev, "member", op, None, None, None, None, None, user_id, role, CREATED, "alice",
                            user_id))


def frame_json(frame: bytes) -> Any:
    """The message of one whole, final, unmasked text frame, as the server sends it."""
    assert frame[0] == 0x81
    length, start = (int.from_bytes(frame[2:4], "big"), 4) if frame[1] == 126 else (frame[1], 2)
    assert len(frame) == start + length
    return json.loads(frame[start:])
