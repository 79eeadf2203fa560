"""A stream's initial sync: what it is sent before its live changes (a snapshot, or the changes it missed).

Each read joins the user's membership in the same statement as the data, so a stream
starts at a rev where its user was a member: a removal that commits first is seen
here (AccessLost), one that commits after is ordered after the sync and reaches the
stream as a change.
"""
from __future__ import annotations

from typing import Any

from todopy.db import ConnectionPool
from todopy.realtime import protocol
from todopy.realtime.changes import Change
from todopy.representations import list_json, todo_json, todos_json
from todopy.sqlfiles import queries

CHANGES_SQL = queries("changes")
TODOS_SQL = queries("todos")
LISTS_SQL = queries("lists")
SYNC_POOL_WAIT = 30.0                    # a reconnect storm queues for the pool instead of failing


class ListGone(Exception):
    """The list was deleted while the stream synced."""


class AccessLost(Exception):
    """The user stopped being a member of the list before the stream's sync read it."""


class Sync:
    def __init__(self, pool: ConnectionPool, resume_limit: int) -> None:
        self.pool = pool
        # A queue's worth at most: a longer gap costs more than a snapshot of the list.
        self.resume_limit = resume_limit

    def list_stream(self, list_as_seen: dict[str, Any], user_id: str, predicate: bool | None,
                    since: int | None, members: bool = False) -> tuple[bytes, int]:
        """The frames that bring a list stream up to date (the changes missed after `since`, or a
        snapshot), and the rev they reach. Updates `list_as_seen` with the user's role then."""
        list_id = list_as_seen["id"]
        if since is not None:
            rows = self.pool.query_all(CHANGES_SQL["resume"], {"list": list_id, "since": since, "user": user_id,
                                                               "limit": self.resume_limit}, timeout=SYNC_POOL_WAIT)
            if not rows:
                raise ListGone()
            if not rows[0].member:
                raise AccessLost()
            if rows[0].resumable:
                frames = []
                for row in rows:
                    if row.rev is None:
                        continue                    # no change missed: the list's row alone
                    change = Change(row)
                    if change.kind == "todo":
                        frames.append(protocol.change_frame(change, change.op_for_resume(predicate)))
                    elif change.kind == "list" and change.op == "update":
                        list_as_seen["title"] = change.title
                        frames.append(protocol.title_frame(change, list_as_seen))
                    elif change.kind == "member":
                        if change.user_id == user_id and change.role is not None:
                            list_as_seen["role"] = change.role
                        if members:
                            frames.append(protocol.member_frame(change))
                return b"".join(frames), rows[0].head
        todos = todos_json(self.pool.query_all(TODOS_SQL["list"], {"list": list_id, "completed": predicate,
                                                                   "user": user_id}, timeout=SYNC_POOL_WAIT))
        if todos is None:
            self.check_access(list_id, user_id)
            raise ListGone()
        return protocol.todos_snapshot(todos), todos["rev"]

    def todo_stream(self, list_id: str, user_id: str, todo_id: str) -> tuple[bytes, int] | None:
        """The snapshot of one todo and its list's rev; None when the todo is gone."""
        row = self.pool.query_one(CHANGES_SQL["todo_snapshot"], {"list": list_id, "id": todo_id, "user": user_id},
                                  timeout=SYNC_POOL_WAIT)
        if row is None:
            self.check_access(list_id, user_id)
            return None  # deleted between the handshake and now
        return protocol.todo_snapshot(todo_json(row), row.list_rev), row.list_rev

    def check_access(self, list_id: str, user_id: str) -> None:
        """After a sync read found nothing: AccessLost when the list is there but the user is not in it."""
        key = {"list": list_id, "user": user_id}
        if (self.pool.query_one(LISTS_SQL["member_role"], key, timeout=SYNC_POOL_WAIT) is None
                and self.pool.query_one(LISTS_SQL["rev"], key, timeout=SYNC_POOL_WAIT) is not None):
            raise AccessLost()

    def lists_of(self, user_id: str) -> dict[str, dict[str, Any]]:
        """The lists a lists stream shows: the user's, by id."""
        rows = self.pool.query_all(LISTS_SQL["of_user"], {"user": user_id}, timeout=SYNC_POOL_WAIT)
        return {row.id: list_json(row) for row in rows}
