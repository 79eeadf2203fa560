"""Creating under a client-chosen id, idempotently: a retried create answers what the first one made.

A create whose id is taken writes nothing (or is refused with a unique violation:
the same id created concurrently, or retired). The caller then finds the row that
has the id: its own earlier create of the same resource is a retry, answered 200
with the resource as it is now; anyone else's (or a retired id) is a 409.
"""
from __future__ import annotations

from typing import Any, Callable

import psycopg2.errors

from todopy.conditional import etag
from todopy.db import Row
from todopy.errors import Conflict
from todopy.http import Reply, json_response

ID_TAKEN = "this id is taken; choose another (a new UUID)"


def attempt(create: Callable[[], Row | None]) -> Row | None:
    """The row `create` wrote, or None when it wrote nothing because the id is taken."""
    try:
        return create()
    except psycopg2.errors.UniqueViolation:
        return None


def created(document: dict[str, Any], collection: str) -> Reply:
    """201, the new resource at `collection` + its id."""
    return _answer(document, 201, collection)


def existing(found: Row | None, represent: Callable[[Row], dict[str, Any]], collection: str) -> Reply:
    """Nothing was created and `found` has the id (None: no live row has it, yet it is taken):
    200 when it is a retry (`found.is_retry`, as the query decides), else 409."""
    if found is None or not found.is_retry:
        raise Conflict(ID_TAKEN, code="id_taken")
    return _answer(represent(found), 200, collection)


def _answer(document: dict[str, Any], status: int, collection: str) -> Reply:
    return json_response(document, status, [("Location", f"{collection}{document['id']}/"), etag(document["rev"])])
