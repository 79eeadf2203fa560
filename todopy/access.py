"""Authorization: the one check every list route goes through.

A resource under a list declares the least role each verb needs (`Resource.role_for`);
`Resource.dispatch` resolves the user's membership here and refuses, in the
contract's order: not a member (or no such list) is a 404, whatever the verb, so
a stranger never learns that a list exists; a member whose role is too low is a 403.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from todopy.accounts import User
from todopy.db import ConnectionPool
from todopy.errors import NotFound
from todopy.representations import list_json
from todopy.sqlfiles import queries

LISTS_SQL = queries("lists")
VIEWER, EDITOR, OWNER = "viewer", "editor", "owner"
RANK = {VIEWER: 0, EDITOR: 1, OWNER: 2}
NO_SUCH_LIST = "no such list"


@dataclasses.dataclass(frozen=True)
class Writer:
    """Who writes, as the capture checks it at commit: the user and the session (token hash) they came with."""

    user_id: str
    session: bytes | None


@dataclasses.dataclass(frozen=True)
class ListAccess:
    """A user's standing in one list, as resolved for this request."""

    list_id: str
    user: User
    role: str
    list_as_seen: dict[str, Any] | None = None      # the list as the user sees it, when it was read
    session: bytes | None = None            # the token hash the request came with: writes check it at commit

    def allows(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]

    @property
    def writer(self) -> Writer:
        return Writer(self.user.id, self.session)


def resolve(pool: ConnectionPool, user: User, list_id: str | None, session: bytes | None = None) -> ListAccess:
    """The user's access to `list_id`, or to their personal list when None (no query: it is theirs).

    This is the door's answer, for the contract's 404/403 before any body is read;
    writes are checked again at commit (todopy.writes), reads and streams in the
    statement that reads the data."""
    if list_id is None:
        return ListAccess(user.personal_list, user, OWNER, session=session)
    seen = _membership(pool, list_id, user)
    return ListAccess(seen["id"], user, seen["role"], seen, session)


def read_list_as_seen(pool: ConnectionPool, access: ListAccess) -> dict[str, Any]:
    """The list as the user sees it (its JSON, with their role): read now when `resolve` did not need to."""
    if access.list_as_seen is not None:
        return access.list_as_seen
    return _membership(pool, access.list_id, access.user)


def _membership(pool: ConnectionPool, list_id: str, user: User) -> dict[str, Any]:
    """The list as `user` sees it; 404 when they are not a member (or there is no such list)."""
    row = pool.query_one(LISTS_SQL["membership"], {"list": list_id, "user": user.id})
    if row is None:
        raise NotFound(NO_SUCH_LIST)
    return list_json(row)
