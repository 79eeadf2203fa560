"""/api/todos/ and /api/todos/<id>/: REST and streams on the same URLs."""
from __future__ import annotations

import contextlib
import re
import uuid
from typing import Any, Iterator, NoReturn

from werkzeug.wrappers import Request

from todopy import validation
from todopy.errors import HTTPError, NotFound, PreconditionFailed, Unprocessable
from todopy.http import Reply, json_response, no_content, read_json_object
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

    def get(self, request: Request) -> Reply:
        completed = validation.bool_param(request.args, "completed")
        rows = self.services.pool.query_all(Q["list"], {"owner": owner_of(request), "completed": completed})
        return json_response({"todos": [todo_json(row[1:]) for row in rows if row[1] is not None],
                              "rev": rows[0][0]})

    def post(self, request: Request) -> Reply:
        body = validation.fields(read_json_object(request), validation.TODO_FIELDS, required={"title"},
                                 ignored=validation.READ_ONLY_TODO_FIELDS)
        row = self.services.pool.query_one(Q["create"], {
            "owner": owner_of(request), "title": body["title"], "completed": body.get("completed", False)})
        todo = todo_json(row)
        return json_response(todo, 201, [("Location", f"/api/todos/{todo['id']}/"), etag(todo["rev"])])

    def patch(self, request: Request) -> Reply:
        # The body first: its 413/415/400 win over a 422 for the query (API.md's precedence).
        raw = read_json_object(request)
        only = validation.bool_param(request.args, "completed")
        body = validation.fields(raw, {"completed": validation.completed}, required={"completed"})
        rows = self.services.pool.query_all(Q["set_all_completed"], {
            "owner": owner_of(request), "completed": body["completed"], "filter": only})
        changed = [todo_json(row[1:]) for row in rows if row[1] is not None]
        rev = max([rows[0][0]] + [todo["rev"] for todo in changed])
        return json_response({"todos": changed, "rev": rev})

    def delete(self, request: Request) -> Reply:
        if validation.bool_param(request.args, "completed") is not True:
            raise Unprocessable("completed must be true: only completed todos can be cleared at once",
                                code="invalid")
        deleted, rev = self.services.pool.query_one(Q["delete_completed"], {"owner": owner_of(request)})
        return json_response({"deleted": deleted, "rev": rev})

    def websocket(self, request: Request) -> None:
        return self.services.streams.list_stream(request, owner_of(request))


class Todo(Resource):
    """One todo of the signed-in user."""

    def get(self, request: Request, todo_id: uuid.UUID) -> Reply:
        row = self.services.pool.query_one(Q["get"], {"id": todo_id, "owner": owner_of(request)})
        if row is None:
            raise NotFound("no such todo")
        return json_response(todo_json(row), headers=[etag(row[4])])

    def put(self, request: Request, todo_id: uuid.UUID) -> Reply:
        with self._unless_missing(request, todo_id):
            body = validation.fields(read_json_object(request), validation.TODO_FIELDS,
                                     required={"title", "completed"}, ignored=validation.READ_ONLY_TODO_FIELDS)
        return self._update(request, todo_id, body)

    def patch(self, request: Request, todo_id: uuid.UUID) -> Reply:
        with self._unless_missing(request, todo_id):
            body = validation.fields(read_json_object(request), validation.TODO_FIELDS,
                                     ignored=validation.READ_ONLY_TODO_FIELDS)
            if not body:
                raise Unprocessable("nothing to change: send title and/or completed", code="empty_patch")
        return self._update(request, todo_id, body)

    def delete(self, request: Request, todo_id: uuid.UUID) -> Reply:
        key = {"id": todo_id, "owner": owner_of(request), "if_rev": if_match_rev(request)}
        if self.services.pool.query_one(Q["delete"], key) is None:
            self._explain_miss(key)
        return no_content()

    def websocket(self, request: Request, todo_id: uuid.UUID) -> None:
        return self.services.streams.todo_stream(request, owner_of(request), todo_id)

    def _update(self, request: Request, todo_id: uuid.UUID, body: dict[str, Any]) -> Reply:
        key = {"id": todo_id, "owner": owner_of(request), "if_rev": if_match_rev(request)}
        # One statement in autocommit: the rev lock its triggers take is released as it
        # ends, not one round trip later at a separate COMMIT.
        row = self.services.pool.query_one(Q["update"], {**key, "title": body.get("title"),
                                                        "completed": body.get("completed")})
        if row is None:
            self._explain_miss(key)
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

    def _explain_miss(self, key: dict[str, Any]) -> NoReturn:
        """A conditional write matched no row: 404 if the todo is not there, else 412.

        Asked after the write, in a statement of its own: only a miss pays for it."""
        current = self.services.pool.query_one(Q["current_rev"], key)
        if current is None:
            raise NotFound("no such todo")
        seen = f"since rev {key['if_rev']}" if key["if_rev"] >= 0 else "or If-Match names no rev"
        raise PreconditionFailed(f"the todo has changed {seen}; it is now at rev {current[0]}",
                                 headers=[etag(current[0])])
