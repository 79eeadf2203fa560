"""A list's todos, REST and streams on the same URLs: /api/todos/... (the personal list)
and /api/lists/<lid>/todos/... (any list the user is a member of)."""
from __future__ import annotations

import contextlib
import uuid
from typing import Any, Iterator, NoReturn

import psycopg2.errors
from werkzeug.wrappers import Request

from todopy import access, validation
from todopy.access import ListAccess
from todopy.conditional import describe, etag, if_match_revs
from todopy.db import Row
from todopy.errors import Conflict, HTTPError, NotFound, PreconditionFailed, Unprocessable
from todopy.http import Reply, json_response, no_content, read_json_object
from todopy.representations import todo_json, todos_json
from todopy.sqlfiles import queries
from todopy.views import streaming
from todopy.views.base import Resource

TODOS_SQL = queries("todos")
MAX_TODOS_PER_LIST = 5_000
NO_SUCH_TODO = "no such todo"
LIST_MOVED_ON = "TP412"     # SQLSTATE of expect_list_rev (sql/0011_idempotency.sql): If-Match on a bulk write failed


class TodoList(Resource):
    """A list's todos: list, create, toggle all, clear completed, stream."""

    in_list = True

    def get(self, request: Request, grant: ListAccess) -> Reply:
        completed = validation.bool_param(request.args, "completed")
        todos = todos_json(self.services.pool.query_all(TODOS_SQL["list"],
                                                        {"list": grant.list_id, "completed": completed}))
        if todos is None:
            raise NotFound(access.NO_SUCH_LIST)     # deleted since the access check
        # The list's rev: If-Match on the bulk writes (toggle all, clear completed) takes it back.
        return json_response(todos, headers=[etag(todos["rev"])])

    def post(self, request: Request, grant: ListAccess) -> Reply:
        body = validation.fields(read_json_object(request), validation.NEW_TODO_FIELDS, required={"title"},
                                 ignored=validation.READ_ONLY_TODO_FIELDS - {"id"})
        params = {"list": grant.list_id, "id": body.get("id"), "title": body["title"],
                  "completed": body.get("completed", False), "max_todos": MAX_TODOS_PER_LIST}
        try:
            row = self.services.pool.query_one(TODOS_SQL["create"], params)
        except psycopg2.errors.UniqueViolation:
            row = None      # the same id, created concurrently: answered below like a retry
        except psycopg2.errors.ForeignKeyViolation:
            raise NotFound(access.NO_SUCH_LIST) from None
        if row is not None:
            todo = todo_json(row)
            return json_response(todo, 201, [("Location", f"{request.path}{todo['id']}/"), etag(todo["rev"])])
        return self._not_created(request, params)

    def _not_created(self, request: Request, params: dict[str, Any]) -> Reply:
        """Nothing was written: a retried create (200, the todo as it is now), an id taken
        elsewhere (409), or a full list (409)."""
        if params["id"] is not None:
            found = self.services.pool.query_one(TODOS_SQL["find"], params)
            if found is not None:
                if not found.here:
                    raise Conflict("this id is taken; choose another (a new UUID)", code="id_taken")
                todo = todo_json(found)
                return json_response(todo, 200, [("Location", f"{request.path}{todo['id']}/"), etag(todo["rev"])])
        if self.services.pool.query_one(TODOS_SQL["list_rev"], params) is None:
            raise NotFound(access.NO_SUCH_LIST)
        raise Conflict(f"this list has the most todos a list may have ({MAX_TODOS_PER_LIST}); "
                       "delete some first", code="limit_reached")

    def patch(self, request: Request, grant: ListAccess) -> Reply:
        # The body first: its 413/415/400 win over a 422 for the query (the contract's precedence).
        raw = read_json_object(request)
        only = validation.bool_param(request.args, "completed")
        body = validation.fields(raw, {"completed": validation.completed}, required={"completed"})
        params = {"list": grant.list_id, "completed": body["completed"], "filter": only}
        rows, rev_now = self._bulk(TODOS_SQL["set_all_completed"], params, if_match_revs(request))
        # Rows come back in no particular order; each took the next rev, the last is the list's.
        changed = sorted((todo_json(row) for row in rows), key=lambda todo: (todo["created_time"], todo["id"]))
        if changed:
            rev = max(todo["rev"] for todo in changed)
        elif rev_now is not None:
            rev = rev_now
        else:
            row = self.services.pool.query_one(TODOS_SQL["list_rev"], params)
            if row is None:
                raise NotFound(access.NO_SUCH_LIST)
            rev = row.rev
        return json_response({"todos": changed, "rev": rev}, headers=[etag(rev)])

    def delete(self, request: Request, grant: ListAccess) -> Reply:
        if validation.bool_param(request.args, "completed") is not True:
            raise Unprocessable("completed must be true: only completed todos can be cleared at once",
                                code="invalid")
        rows, _ = self._bulk(TODOS_SQL["delete_completed"], {"list": grant.list_id}, if_match_revs(request))
        if not rows or rows[0].rev is None:
            raise NotFound(access.NO_SUCH_LIST)
        return json_response({"deleted": rows[0].deleted, "rev": rows[0].rev}, headers=[etag(rows[0].rev)])

    def _bulk(self, statement: str, params: dict[str, Any],
              if_revs: list[int] | None) -> tuple[list[Row], int | None]:
        """Run a bulk write: alone without If-Match (one statement, its own transaction); with it, in
        a transaction that checks the list's rev after the write and undoes it when the list had
        moved on (412). Returns the write's rows and, with If-Match, the list's rev after it."""
        if if_revs is None:
            return self.services.pool.query_all(statement, params), None
        with self.services.pool.cursor() as cur:
            cur.execute(statement, params)
            rows = cur.fetchall()
            try:
                cur.execute(TODOS_SQL["expect_list_rev"], {"list": params["list"], "if_revs": if_revs})
            except psycopg2.Error as error:
                if error.pgcode != LIST_MOVED_ON:
                    raise
                rev = int(error.diag.message_detail or 0)
                raise PreconditionFailed(f"the list has changed {describe(if_revs)}; it is now at rev {rev}",
                                         headers=[etag(rev)]) from None
            checked = cur.fetchone()
        if checked is None or checked.rev is None:
            raise NotFound(access.NO_SUCH_LIST)
        return rows, checked.rev

    def websocket(self, request: Request, grant: ListAccess) -> None:
        predicate = validation.bool_param(request.args, "completed")
        since = streaming.parse_since(request.args)
        view = access.read_view(self.services.pool, grant)
        socket = streaming.accept(request, self.services.streams)
        self.services.streams.list_stream(socket, streaming.opener(request), view, predicate=predicate, since=since)


class Todo(Resource):
    """One todo of a list."""

    in_list = True
    missing = NO_SUCH_TODO

    def exists(self, verb: str, grant: ListAccess, values: dict[str, Any]) -> bool:
        return self._current_rev(grant, values["todo_id"]) is not None

    def get(self, request: Request, grant: ListAccess, todo_id: uuid.UUID) -> Reply:
        row = self.services.pool.query_one(TODOS_SQL["get"], {"id": todo_id, "list": grant.list_id})
        if row is None:
            raise NotFound(NO_SUCH_TODO)
        return json_response(todo_json(row), headers=[etag(row.rev)])

    def put(self, request: Request, grant: ListAccess, todo_id: uuid.UUID) -> Reply:
        with self._unless_missing(grant, todo_id):
            body = validation.fields(read_json_object(request), validation.TODO_FIELDS,
                                     required={"title", "completed"}, ignored=validation.READ_ONLY_TODO_FIELDS)
        return self._update(request, grant, todo_id, body)

    def patch(self, request: Request, grant: ListAccess, todo_id: uuid.UUID) -> Reply:
        with self._unless_missing(grant, todo_id):
            body = validation.fields(read_json_object(request), validation.TODO_FIELDS,
                                     ignored=validation.READ_ONLY_TODO_FIELDS)
            if not body:
                raise Unprocessable("nothing to change: send title and/or completed", code="empty_patch")
        return self._update(request, grant, todo_id, body)

    def delete(self, request: Request, grant: ListAccess, todo_id: uuid.UUID) -> Reply:
        key = {"id": todo_id, "list": grant.list_id, "if_revs": if_match_revs(request)}
        if self.services.pool.query_one(TODOS_SQL["delete"], key) is None:
            self._explain_miss(grant, key)
        return no_content()

    def websocket(self, request: Request, grant: ListAccess, todo_id: uuid.UUID) -> None:
        if self._current_rev(grant, todo_id) is None:
            raise NotFound(NO_SUCH_TODO)
        view = access.read_view(self.services.pool, grant)
        socket = streaming.accept(request, self.services.streams)
        self.services.streams.todo_stream(socket, streaming.opener(request), view, str(todo_id))

    def _update(self, request: Request, grant: ListAccess, todo_id: uuid.UUID, body: dict[str, Any]) -> Reply:
        key = {"id": todo_id, "list": grant.list_id, "if_revs": if_match_revs(request)}
        row = self.services.pool.query_one(TODOS_SQL["update"], {**key, "title": body.get("title"),
                                                                "completed": body.get("completed")})
        if row is None:
            self._explain_miss(grant, key)
        return json_response(todo_json(row), headers=[etag(row.rev)])

    def _current_rev(self, grant: ListAccess, todo_id: uuid.UUID) -> int | None:
        row = self.services.pool.query_one(TODOS_SQL["current_rev"], {"id": todo_id, "list": grant.list_id})
        return None if row is None else row.rev

    @contextlib.contextmanager
    def _unless_missing(self, grant: ListAccess, todo_id: uuid.UUID) -> Iterator[None]:
        """Body errors (413, 415, 400, 422) lose to a 404 (the contract's precedence).

        The write itself finds a missing todo; only a refused body needs this extra look-up.
        """
        try:
            yield
        except HTTPError:
            if self._current_rev(grant, todo_id) is None:
                raise NotFound(NO_SUCH_TODO) from None
            raise

    def _explain_miss(self, grant: ListAccess, key: dict[str, Any]) -> NoReturn:
        """A conditional write matched no row: 404 if the todo is not there, else 412.

        Asked after the write, in a statement of its own: only a miss pays for it."""
        current = self._current_rev(grant, key["id"])
        if current is None:
            raise NotFound(NO_SUCH_TODO)
        raise PreconditionFailed(f"the todo has changed {describe(key['if_revs'])}; it is now at rev {current}",
                                 headers=[etag(current)])
