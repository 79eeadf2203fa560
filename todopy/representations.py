"""How rows look on the wire: one function per resource shape, each written once.

Each reads its columns by name (`todopy.db.Row`), so any row that has them will do:
a todos row, a row of a query that adds a column of its own, or a todo's `Change`.
"""
from __future__ import annotations

import datetime
import json
from typing import Any

from todopy.db import Row

# json.dumps() builds an encoder on every call when given options; this one is built once.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(data: Any) -> bytes:
    """Compact UTF-8 JSON, as every response body and stream message is written."""
    return _ENCODER.encode(data).encode("utf-8")


def timestamp(value: datetime.datetime) -> str:
    return value.isoformat()


def todo_json(todo: Row) -> dict[str, Any]:
    """A todo (id, title, completed, created_time, rev) as the API's todo object."""
    return {"id": str(todo.id), "title": todo.title, "completed": todo.completed,
            "created_time": timestamp(todo.created_time), "rev": todo.rev}


def todos_json(rows: list[Row]) -> dict[str, Any] | None:
    """A list's todos and the rev they reflect, from the rows of todos.sql's `list`; None: no such list.

    The list's row comes with every todo, and once alone (no todo columns) when none matches."""
    if not rows:
        return None
    return {"todos": [todo_json(row) for row in rows if row.id is not None], "rev": rows[0].list_rev}


def list_json(row: Row) -> dict[str, Any]:
    """A list as one member sees it (id, title, role, personal, created_time, rev) as the API's list object."""
    return {"id": str(row.id), "title": row.title, "role": row.role, "personal": row.personal,
            "created_time": timestamp(row.created_time), "rev": row.rev}


def user_json(user: Row) -> dict[str, str]:
    """A user (id, username) as the API shows one."""
    return {"id": str(user.id), "username": user.username}


def member_json(user: Row, role: str) -> dict[str, Any]:
    """A member of a list: the user and their role in it."""
    return {"user": user_json(user), "role": role}


def activity_json(change: Row) -> dict[str, Any]:
    """One change of a list's activity: when, by whom (None: a database writer that did not say),
    and what: a todo as that change left it, the list's new title (or its deletion), or a member's role."""
    entry: dict[str, Any] = {"rev": change.rev, "time": timestamp(change.changed_time), "by": change.by,
                             "kind": change.kind, "op": change.op}
    if change.kind == "todo":
        entry["todo"] = todo_json(change)
    elif change.kind == "list":
        entry["list"] = {"title": change.title}
    else:
        entry["member"] = {"username": change.member_name, "role": change.role}
    return entry
