"""What the realtime core says, in one place: stream messages, close codes, and the ringer's channels.

Streams speak docs/api.md's messages, each one JSON text frame, encoded here and
nowhere else. A change is encoded once per op however many streams it goes to
(`change_frame`). The ringer's side is SQL (sql/queries/changes.sql builds the ring
in the database, sql/queries/ringer.sql renews with an empty one, the capture
rings the doorbell): its literals are held to the constants below by
tests/unit/realtime/test_protocol.py.
"""
from __future__ import annotations

import enum
import json
from typing import Any, Iterable, NamedTuple

from todopy.realtime.changes import Change
from todopy.realtime.frames import text_frame
from todopy.representations import dumps, todo_json

# -- the database's channels ---------------------------------------------------------

RING_CHANNEL = "todopy_ring"          # the ringer to every listener: which lists moved
SESSIONS_CHANNEL = "todopy_sessions"  # a session was revoked: its token hash, in hex
DOORBELL_CHANNEL = "todopy_doorbell"  # a lone writer, while the ringer sleeps: the list it wrote (sql/0017)
PRESENCE_CHANNEL = "todopy_presence"  # each process to the others: who has its lists open (realtime/presence.py)
EVERYTHING = "*"                      # a ring too large for one notification: look at every list
RING_PAYLOAD_LIMIT = 7000             # past this many characters a ring says EVERYTHING (NOTIFY takes 8000 bytes)


class Moved(NamedTuple):
    """One list in a ring: its head rev, whether the list itself or its members changed, and whose membership."""

    list_id: str
    rev: int
    meta: bool
    users: tuple[str, ...]


def parse_doorbell(payload: str) -> str | None:
    """The list a doorbell names (a list id), or None (an empty payload: sql/0014's doorbell)."""
    return payload if len(payload) == 36 else None


def parse_ring(payload: str) -> list[Moved] | None:
    """A ring's lists, or None for EVERYTHING. The empty ring ('[]') is the ringer's heartbeat."""
    if payload == EVERYTHING:
        return None
    return [Moved(list_id, rev, bool(meta), tuple(users or ())) for list_id, rev, meta, users in json.loads(payload)]


def encode_ring(moved: Iterable[Moved]) -> str:
    """A ring as the ringer's SQL builds it (json_build_array per list), for tests and tools."""
    lists = json.dumps([[m.list_id, m.rev, m.meta, list(m.users) or None] for m in moved])
    return lists if len(lists) <= RING_PAYLOAD_LIMIT else EVERYTHING


# -- close codes -----------------------------------------------------------------------

class Close(enum.IntEnum):
    """The close codes streams end with (docs/api.md), each with the reason sent beside it."""

    NORMAL = 1000              # the one todo streamed was deleted
    GOING_AWAY = 1001
    POLICY = 1008
    SERVER_ERROR = 1011
    TOO_SLOW = 4008
    NOT_A_MEMBER = 4403
    LIST_DELETED = 4404

    @property
    def reason(self) -> str:
        return _REASONS[self]


_REASONS = {
    Close.NORMAL: "todo deleted",
    Close.GOING_AWAY: "the server is shutting down; reconnect with since",
    Close.POLICY: "the session was signed out or expired; sign in again",
    Close.SERVER_ERROR: "temporarily unavailable; reconnect with since",
    Close.TOO_SLOW: "too far behind; reconnect with since",
    Close.NOT_A_MEMBER: "no longer a member of this list",
    Close.LIST_DELETED: "the list was deleted",
}


# -- stream messages -------------------------------------------------------------------

def _message(message: dict[str, Any]) -> bytes:
    return text_frame(dumps(message))


def ready(rev: int | None = None) -> bytes:
    """The end of the initial sync: live from here (the lists stream's has no rev)."""
    return _message({"type": "ready"} if rev is None else {"type": "ready", "rev": rev})


def todos_snapshot(todos: dict[str, Any]) -> bytes:
    """A list stream's fresh start: `todos` is `{"todos": [...], "rev": N}`."""
    return _message({"type": "snapshot", **todos})


def todo_snapshot(todo: dict[str, Any], rev: int) -> bytes:
    return _message({"type": "snapshot", "todo": todo, "rev": rev})


def change_frame(change: Change, op: str) -> bytes:
    """The `change` message of a todo change as `op` (a live query may see an update as an
    insert or a delete): encoded once, however many streams it goes to."""
    frame = change.encoded.get(op)
    if frame is None:
        frame = change.encoded[op] = _message({"type": "change", "op": op, "todo": todo_json(change),
                                               "rev": change.rev, "by": change.by})
    return frame


def title_frame(change: Change, list_json: dict[str, Any]) -> bytes:
    """The `list` message for a new title; `list_json` is the list as the subscriber sees it."""
    return _message({"type": "list", "list": {**list_json, "title": change.title, "rev": change.rev},
                     "rev": change.rev, "by": change.by})


def member_frame(change: Change) -> bytes:
    """The `member` message: someone joined the list, changed role or left (`role` null), in the list's order."""
    frame = change.encoded.get("member")
    if frame is None:
        frame = change.encoded["member"] = _message({
            "type": "member", "op": change.op, "member": {"username": change.member_name, "role": change.role},
            "rev": change.rev, "by": change.by})
    return frame


def presence(users: list[dict[str, Any]]) -> bytes:
    """Who has the list open now, and what each edits (todopy.realtime.presence)."""
    return _message({"type": "presence", "users": users})


def lists_snapshot(lists: list[dict[str, Any]]) -> bytes:
    return _message({"type": "snapshot", "lists": lists})


def lists_change(op: str, list_json: dict[str, Any]) -> bytes:
    """The lists stream's news: a list gained (insert), lost (delete), renamed or re-roled (update)."""
    return _message({"type": "change", "op": op, "list": list_json})
