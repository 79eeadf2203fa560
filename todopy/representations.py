"""How rows look on the wire."""
from __future__ import annotations

from typing import Any


def todo_json(row: tuple) -> dict[str, Any]:
    """A todos row (id, title, completed, created_time, rev) as API.md's todo object."""
    return {"id": str(row[0]), "title": row[1], "completed": row[2],
            "created_time": row[3].isoformat(), "rev": row[4]}
