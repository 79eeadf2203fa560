"""The slow timer's check: which followed lists are behind their head, or pruned past what was delivered.

Notifications only wake the dispatcher; this is what makes a lost one (or a stalled
ringer) only a delay. It compares each followed list's head rev and pruning horizon
with the rev this process last delivered (its cursor).
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

from todopy.db import ConnectionPool, Row
from todopy.sqlfiles import queries

CHANGES_SQL = queries("changes")


@dataclasses.dataclass
class Behind:
    due: list[str]                 # lists with changes past the cursor (or deleted: the deletion is still to read)
    pruned: dict[str, int]         # lists pruned past the cursor, with their head rev: their streams resync


def compare(cursors: Mapping[str, int], heads: Mapping[str, Row]) -> Behind:
    """`cursors`: what was delivered of each list; `heads`: each list's row (id, rev, horizon), none if deleted."""
    behind = Behind([], {})
    for list_id, cursor in cursors.items():
        head = heads.get(list_id)
        if head is None:
            behind.due.append(list_id)
        elif head.horizon > cursor:
            behind.pruned[list_id] = head.rev
        elif head.rev > cursor:
            behind.due.append(list_id)
    return behind


def read_heads(pool: ConnectionPool, list_ids: list[str]) -> dict[str, Row]:
    return {row.id: row for row in pool.query_all(CHANGES_SQL["heads"], {"lists": list_ids})} if list_ids else {}
