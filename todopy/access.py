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
class ListAccess:
    """A user's standing in one list, as resolved for this request."""

    list_id: str
    user: User
    role: str
    view: dict[str, Any] | None = None      # the list as the user sees it, when it was read

    def allows(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]


def resolve(pool: ConnectionPool, user: User, list_id: str | None) -> ListAccess:
    """The user's access to `list_id`, or to their personal list when None (no query: it is theirs)."""
    if list_id is None:
        return ListAccess(user.personal_list, user, OWNER)
    row = pool.query_one(LISTS_SQL["membership"], {"list": list_id, "user": user.id})
    if row is None:
        raise NotFound(NO_SUCH_LIST)
    return ListAccess(row.id, user, row.role, list_json(row))


def read_view(pool: ConnectionPool, access: ListAccess) -> dict[str, Any]:
    """The list as the user sees it (read now when `resolve` did not need to)."""
    if access.view is not None:
        return access.view
    row = pool.query_one(LISTS_SQL["membership"], {"list": access.list_id, "user": access.user.id})
    if row is None:
        raise NotFound(NO_SUCH_LIST)
    return list_json(row)
