"""/api/todos/ and /api/todos/<id>/: REST and streams on the same URLs."""
from __future__ import annotations

import contextlib
import re
import uuid
from typing import Any, Iterator

from werkzeug.wrappers import Request, Response

from todopy import validation
from todopy.errors import HTTPError, NotFound, PreconditionFailed, Unprocessable
from todopy.http import json_response, no_content, read_json_object
from todopy.representations import todo_json
from todopy.sqlfiles import queries
from todopy.views.base import Resource

Q = queries("todos")
_ETAG = re.compile(r'\s*(?:W/)?"(\d{1,18})"\s*')


def etag(rev: int) -> tuple[str, str]:
    return ("ETag", f'"{rev}"')


def if_match_rev(request: Request) -> int | None:
    """The rev an If-Match header demands, None when absent or `*`, -1 when unmatchable."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    match = _ETAG.fullmatch(header)
    return int(match.group(1)) if match else -1


def owner_of(request: Request) -> str:
    return request.environ["todopy.user"].id


class TodoList(Resource):
    """The signed-in user's todos: list, create, toggle all, clear completed, stream."""

    def get(self, request: Request) -> Response:
        completed = validation.bool_param(request.args, "completed")
        rows = self.services.pool.query_all(Q["list"], {"owner": owner_of(request), "completed": completed})
        return json_response({"todos": [todo_json(row[1:]) for row in rows if row[1] is not None],
                              "rev": rows[0][0]})

    def post(self, request: Request) -> Response:
        body = validation.fields(read_json_object(request), validation.TODO_FIELDS, required={"title"},
                                 ignored=validation.READ_ONLY_TODO_FIELDS)
        row = self.services.pool.query_one(Q["create"], {
            "owner": owner_of(request), "title": body["title"], "completed": body.get("completed", False)})
        todo = todo_json(row)
        return json_response(todo, 201, [("Location", f"/api/todos/{todo['id']}/"), etag(todo["rev"])])

    def patch(self, request: Request) -> Response:
        # The body first: its 413/415/400 win over a 422 for the query (API.md's precedence).
        raw = read_json_object(request)
        only = validation.bool_param(request.args, "completed")
        body = validation.fields(raw, {"completed": validation.completed}, required={"completed"})
        rows = self.services.pool.query_all(Q["set_all_completed"], {
            "owner": owner_of(request), "completed": body["completed"], "filter": only})
        changed = [todo_json(row[1:]) for row in rows if row[1] is not None]
        rev = max([rows[0][0]] + [todo["rev"] for todo in changed])
        return json_response({"todos": changed, "rev": rev})

    def delete(self, request: Request) -> Response:
        if validation.bool_param(request.args, "completed") is not True:
            raise Unprocessable("completed must be true: only completed todos can be cleared at once",
                                code="invalid")
        with self.services.pool.cursor() as cur:
            cur.execute(Q["delete_completed"], {"owner": owner_of(request)})
            deleted = cur.rowcount
            cur.execute(Q["head_rev"])
            rev = cur.fetchone()[0]
        return json_response({"deleted": deleted, "rev": rev})

    def websocket(self, request: Request) -> Response:
        return self.services.streams.list_stream(request, owner_of(request))


class Todo(Resource):
    """One todo of the signed-in user."""

    def get(self, request: Request, todo_id: uuid.UUID) -> Response:
        row = self.services.pool.query_one(Q["get"], {"id": todo_id, "owner": owner_of(request)})
        if row is None:
            raise NotFound("no such todo")
        return json_response(todo_json(row), headers=[etag(row[4])])

    def put(self, request: Request, todo_id: uuid.UUID) -> Response:
        with self._unless_missing(request, todo_id):
            body = validation.fields(read_json_object(request), validation.TODO_FIELDS,
                                     required={"title", "completed"}, ignored=validation.READ_ONLY_TODO_FIELDS)
        return self._update(request, todo_id, body)

    def patch(self, request: Request, todo_id: uuid.UUID) -> Response:
        with self._unless_missing(request, todo_id):
            body = validation.fields(read_json_object(request), validation.TODO_FIELDS,
                                     ignored=validation.READ_ONLY_TODO_FIELDS)
            if not body:
                raise Unprocessable("nothing to change: send title and/or completed", code="empty_patch")
        return self._update(request, todo_id, body)

    def delete(self, request: Request, todo_id: uuid.UUID) -> Response:
        key = {"id": todo_id, "owner": owner_of(request), "if_rev": if_match_rev(request)}
        with self.services.pool.cursor() as cur:
            cur.execute(Q["delete"], key)
            if cur.fetchone() is None:
                self._explain_miss(cur, key)
        return no_content()

    def websocket(self, request: Request, todo_id: uuid.UUID) -> Response:
        return self.services.streams.todo_stream(request, owner_of(request), todo_id)

    def _update(self, request: Request, todo_id: uuid.UUID, body: dict[str, Any]) -> Response:
        key = {"id": todo_id, "owner": owner_of(request), "if_rev": if_match_rev(request)}
        with self.services.pool.cursor() as cur:
            cur.execute(Q["update"], {**key, "title": body.get("title"), "completed": body.get("completed")})
            row = cur.fetchone()
            if row is None:
                self._explain_miss(cur, key)
        return json_response(todo_json(row), headers=[etag(row[4])])

    @contextlib.contextmanager
    def _unless_missing(self, request: Request, todo_id: uuid.UUID) -> Iterator[None]:
        """Body errors (413, 415, 400, 422) lose to a 404 (API.md's precedence).

        The write itself finds a missing todo; only a refused body needs this extra look-up.
        """
        try:
            yield
        except HTTPError:
            if self.services.pool.query_one(Q["current_rev"], {"id": todo_id, "owner": owner_of(request)}) is None:
                raise NotFound("no such todo") from None
            raise

    @staticmethod
    def _explain_miss(cur, key: dict[str, Any]) -> None:
        """A conditional write matched no row: 404 if the todo is not there, else 412."""
        cur.execute(Q["current_rev"], key)
        current = cur.fetchone()
        if current is None:
            raise NotFound("no such todo")
        seen = f"since rev {key['if_rev']}" if key["if_rev"] >= 0 else "or If-Match names no rev"
        raise PreconditionFailed(f"the todo has changed {seen}; it is now at rev {current[0]}",
                                 headers=[etag(current[0])])
