"""/api/lists/<lid>/activity/: who changed what in a list, newest first, a page at a time."""
from __future__ import annotations

import re
from typing import Any, Mapping

from werkzeug.wrappers import Request

from todopy import access
from todopy.access import ListAccess
from todopy.errors import NotFound, Unprocessable
from todopy.http import Reply, json_response
from todopy.representations import activity_json
from todopy.sqlfiles import queries
from todopy.views.base import Resource

ACTIVITY_SQL = queries("activity")
DEFAULT_PAGE, MAX_PAGE = 50, 200
POSITIVE = re.compile(r"[1-9][0-9]{0,17}")      # as the OpenAPI document's patterns: no sign, no leading zero


class Activity(Resource):
    """A list's change log as one member may read it (any member: viewers too): from when they joined."""

    in_list = True

    def get(self, request: Request, grant: ListAccess) -> Reply:
        before = _positive_int(request.args, "before", None)
        limit = _positive_int(request.args, "limit", DEFAULT_PAGE)
        if limit > MAX_PAGE:
            raise Unprocessable(f"query parameter limit must be at most {MAX_PAGE}")
        rows = self.services.pool.query_all(ACTIVITY_SQL["page"], {"list": grant.list_id, "user": grant.user.id,
                                                                   "before": before, "limit": limit + 1})
        if not rows:
            raise NotFound(access.NO_SUCH_LIST)     # deleted, or the user removed, since the access check
        changes = [activity_json(row) for row in rows if row.rev is not None]
        more = len(changes) > limit
        changes = changes[:limit]
        # `next`: what to send as `before` for the following (older) page; null on the last one.
        return json_response({"changes": changes, "next": changes[-1]["rev"] if more else None})


def _positive_int(args: Mapping[str, str], name: str, default: Any) -> Any:
    """A query parameter that must be a positive integer (at most 18 digits, no leading zero), or `default`."""
    raw = args.get(name)
    if raw is None:
        return default
    if not POSITIVE.fullmatch(raw):
        raise Unprocessable(f"query parameter {name} must be a positive integer")
    return int(raw)
