"""Strict, table-driven checks of JSON fields; every message names the field."""
from __future__ import annotations

import re
import uuid
from typing import Any, Callable, Mapping

from todopy.errors import Unprocessable

MAX_TITLE = 512
USERNAME = re.compile(r"[A-Za-z0-9_.-]{3,64}")
READ_ONLY_TODO_FIELDS = frozenset({"id", "rev", "created_time"})


def _text(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise Unprocessable(f"{field} must be a string")
    if "\x00" in value:
        raise Unprocessable(f"{field} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Unprocessable(f"{field} must be valid Unicode (it contains a lone surrogate)") from None
    return value


def title(value: Any) -> str:
    text = _text("title", value).strip()
    if not text:
        raise Unprocessable("title must not be empty")
    if len(text) > MAX_TITLE:
        raise Unprocessable(f"title must be at most {MAX_TITLE} characters, got {len(text)}")
    return text


def completed(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Unprocessable("completed must be true or false")
    return value


def client_id(value: Any) -> str:
    """A client-chosen id: a UUID, in its canonical form."""
    if not isinstance(value, str):
        raise Unprocessable("id must be a UUID string")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise Unprocessable("id must be a UUID, like 3f2b8c1e-5d4a-4e7b-9c2d-1a2b3c4d5e6f") from None


def member_role(value: Any) -> str:
    if value not in ("editor", "viewer"):
        raise Unprocessable("role must be \"editor\" or \"viewer\" (a list has one owner, its creator)")
    return value


def username(value: Any) -> str:
    text = _text("username", value)
    if not USERNAME.fullmatch(text):
        raise Unprocessable("username must be 3 to 64 characters of A-Z, a-z, 0-9, '_', '.' and '-'")
    return text


def password(value: Any) -> str:
    text = _text("password", value)
    if not 8 <= len(text) <= 1024:
        raise Unprocessable("password must be 8 to 1024 characters")
    return text


Checker = Callable[[Any], Any]
TODO_FIELDS: Mapping[str, Checker] = {"title": title, "completed": completed}
NEW_TODO_FIELDS: Mapping[str, Checker] = {**TODO_FIELDS, "id": client_id}
LIST_FIELDS: Mapping[str, Checker] = {"title": title}
NEW_LIST_FIELDS: Mapping[str, Checker] = {**LIST_FIELDS, "id": client_id}
READ_ONLY_LIST_FIELDS = frozenset({"id", "rev", "created_time", "role", "personal"})
MEMBER_FIELDS: Mapping[str, Checker] = {"role": member_role}
CREDENTIAL_FIELDS: Mapping[str, Checker] = {"username": username, "password": password}


def fields(body: Mapping[str, Any], checkers: Mapping[str, Checker], *, required: frozenset[str] | set[str] = frozenset(),
           ignored: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Check `body` against `checkers`: unknown fields, then missing ones, then each value."""
    for name in body:
        if name not in checkers and name not in ignored:
            raise Unprocessable(f"{name} is not a known field", code="unknown_field")
    for name in checkers:
        if name in required and name not in body:
            raise Unprocessable(f"{name} is required", code="missing_field")
    return {name: check(body[name]) for name, check in checkers.items() if name in body}


def bool_param(args: Mapping[str, str], name: str) -> bool | None:
    """A `true`/`false` query parameter, or None when absent."""
    raw = args.get(name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise Unprocessable(f"query parameter {name} must be true or false")
    return raw == "true"
