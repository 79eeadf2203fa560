"""How rows look on the wire: one function per resource shape."""
from __future__ import annotations

import datetime
from typing import Any


def timestamp(value: datetime.datetime) -> str:
    return value.isoformat()


def todo_json(row: tuple) -> dict[str, Any]:
    """A todos row (id, title, completed, created_time, rev) as the API's todo object."""
    return {"id": str(row[0]), "title": row[1], "completed": row[2],
            "created_time": timestamp(row[3]), "rev": row[4]}


def list_json(row: tuple) -> dict[str, Any]:
    """A lists row (id, title, role, personal, created_time, rev) as the API's list object."""
    return {"id": str(row[0]), "title": row[1], "role": row[2], "personal": row[3],
            "created_time": timestamp(row[4]), "rev": row[5]}


def member_json(row: tuple) -> dict[str, Any]:
    """A members row (user id, username, role)."""
    return {"user": {"id": str(row[0]), "username": row[1]}, "role": row[2]}
