"""A change read from the change log, and how a live query sees it."""
from __future__ import annotations

import datetime

from todopy.db import Row


class Change:
    """One row of `changes`: a todo's insert/update/delete, the list's new title or
    deletion (`kind == "list"`), or a membership change (`kind == "member"`)."""

    __slots__ = ("list_id", "rev", "kind", "op", "todo_id", "title", "completed", "created_time",
                 "was_completed", "user_id", "role", "changed_time", "by", "member_name", "encoded")

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
        # Its stream frames by op, encoded once for all subscribers (todopy.realtime.protocol.change_frame).
        self.encoded: dict[str, bytes] = {}

    @property
    def id(self) -> str | None:
        """The todo's id: a todo change reads as the todo it leaves (`todo_json`)."""
        return self.todo_id

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
