"""A change read from the change log, with its stream frames encoded once for all subscribers."""
from __future__ import annotations

import datetime
from typing import Any

from todopy.http import dumps
from todopy.realtime.socket import text_frame

# The columns of `changes` the dispatcher and resumes read, in this order.
CHANGE_COLUMNS = "rev, op, todo_id, owner, title, completed, created_time, was_completed, changed_time"


class Change:
    __slots__ = ("rev", "op", "todo_id", "owner", "title", "completed", "created_time", "was_completed",
                 "changed_time", "_frames")

    def __init__(self, row: tuple) -> None:
        (self.rev, self.op, todo_id, owner, self.title, self.completed, self.created_time,
         self.was_completed, changed_time) = row
        self.todo_id = str(todo_id)
        self.owner = str(owner)
        self.changed_time: float = changed_time.timestamp() if isinstance(changed_time, datetime.datetime) else 0.0
        self._frames: dict[str, bytes] = {}

    def todo(self) -> dict[str, Any]:
        return {"id": self.todo_id, "title": self.title, "completed": self.completed,
                "created_time": self.created_time.isoformat(), "rev": self.rev}

    def frame(self, op: str) -> bytes:
        """The `change` message as `op` (a live query may turn an update into insert/delete),
        as a whole WebSocket frame: encoded once, however many streams it goes to."""
        frame = self._frames.get(op)
        if frame is None:
            frame = self._frames[op] = text_frame(
                dumps({"type": "change", "op": op, "todo": self.todo(), "rev": self.rev}))
        return frame

    def op_for(self, predicate: bool | None) -> str | None:
        """How a live query on `completed == predicate` sees this change: its op, or None to skip."""
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
        """API.md's rule for missed changes: insert/update if the row now matches, else delete."""
        if predicate is None or self.op == "delete":
            return self.op
        return self.op if self.completed == predicate else "delete"
