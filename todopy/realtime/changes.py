"""A change read from the change log, with its stream frames encoded once for all subscribers."""
from __future__ import annotations

import datetime
from typing import Any

from todopy.db import Row
from todopy.http import dumps
from todopy.realtime.socket import text_frame
from todopy.representations import todo_json


class Change:
    """One row of `changes`: a todo's insert/update/delete, the list's new title or
    deletion (`kind == "list"`), or a membership change (`kind == "member"`)."""

    __slots__ = ("list_id", "rev", "kind", "op", "todo_id", "title", "completed", "created_time",
                 "was_completed", "user_id", "role", "changed_time", "by", "member_name", "_frames")

    def __init__(self, row: Row) -> None:
        """`row`: a row of the change log as changes.sql's queries select it."""
        self.list_id: str = row.list_id
        self.rev: int = row.rev
        self.kind: str = row.kind                   # todo, list or member
        self.op: str = row.op                       # insert, update or delete
        self.todo_id: str | None = row.todo_id
        self.title: str | None = row.title          # the todo's, or the list's new title
        self.completed: bool | None = row.completed
        self.created_time: datetime.datetime | None = row.created_time
        self.was_completed: bool | None = row.was_completed     # an update's: before it
        self.user_id: str | None = row.user_id      # a membership change's member
        self.role: str | None = row.role            # their role now (None: removed)
        self.by: str | None = row.by                # the author's username (None: a database writer that did not say)
        self.member_name: str | None = row.member_name       # a membership change's member's username
        changed_time = row.changed_time
        self.changed_time: float = changed_time.timestamp() if isinstance(changed_time, datetime.datetime) else 0.0
        self._frames: dict[str, bytes] = {}

    @property
    def id(self) -> str | None:
        """The todo's id: a todo change reads as the todo it leaves (`todo_json`)."""
        return self.todo_id

    def todo(self) -> dict[str, Any]:
        return todo_json(self)

    def frame(self, op: str) -> bytes:
        """The `change` message as `op` (a live query may turn an update into insert/delete),
        as a whole WebSocket frame: encoded once, however many streams it goes to."""
        frame = self._frames.get(op)
        if frame is None:
            frame = self._frames[op] = text_frame(
                dumps({"type": "change", "op": op, "todo": self.todo(), "rev": self.rev, "by": self.by}))
        return frame

    def list_frame(self, list_json: dict[str, Any]) -> bytes:
        """The `list` message for a new title; `list_json` is the list as the subscriber sees it."""
        return text_frame(dumps({"type": "list", "list": {**list_json, "title": self.title, "rev": self.rev},
                                 "rev": self.rev, "by": self.by}))

    def op_for(self, predicate: bool | None) -> str | None:
        """How a live query on `completed == predicate` sees this todo change: its op, or None to skip."""
        if predicate is None:
            return self.op
        matches_after = self.op != "delete" and self.completed == predicate
        if self.op == "insert":
            matched_before = False
        elif self.op == "update":
            matched_before = self.was_completed == predicate
        else:
            matched_before = self.completed == predicate   # a delete carries the row as it was
        if matches_after:
            return "update" if matched_before else "insert"
        return "delete" if matched_before else None

    def op_for_resume(self, predicate: bool | None) -> str:
        """The rule for missed changes: insert/update if the row now matches, else delete."""
        if predicate is None or self.op == "delete":
            return self.op
        return self.op if self.completed == predicate else "delete"
