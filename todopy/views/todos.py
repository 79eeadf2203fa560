"""A list's todos, REST and streams on the same URLs: /api/todos/... (the personal list)
and /api/lists/<lid>/todos/... (any list the user is a member of)."""
from __future__ import annotations

import contextlib
import uuid
from typing import Any, Iterator

from werkzeug.wrappers import Request

from todopy import access, validation, writes
from todopy.access import ListAccess
from todopy.conditional import etag, if_match_revs, missed
from todopy.db import Row
from todopy.errors import HTTPError, NotFound, Unprocessable
from todopy.http import Reply, json_response, no_content, read_json_object
from todopy.representations import todo_json, todos_json
from todopy.sqlfiles import queries
from todopy.views import creating, streaming
from todopy.views.base import Resource

TODOS_SQL = queries("todos")
NO_SUCH_TODO = "no such todo"


class TodoList(Resource):
    """A list's todos: list, create, toggle all, clear completed, stream."""

    in_list = True

    def get(self, request: Request, grant: ListAccess) -> Reply:
        completed = validation.bool_param(request.args, "completed")
        todos = todos_json(self.services.pool.query_all(TODOS_SQL["list"], {"list": grant.list_id, "completed": completed,
                                                                            "user": grant.user.id}))
        if todos is None:
            raise NotFound(access.NO_SUCH_LIST)     # deleted, or the user removed, since the access check
        # The list's rev: If-Match on the bulk writes (toggle all, clear completed) takes it back.
        return json_response(todos, headers=[etag(todos["rev"])])

    def post(self, request: Request, grant: ListAccess) -> Reply:
        body = validation.fields(read_json_object(request), validation.NEW_TODO_FIELDS, required={"title"},
                                 ignored=validation.READ_ONLY_TODO_FIELDS - {"id"})
        params = {"list": grant.list_id, "id": body.get("id") or str(uuid.uuid4()), "title": body["title"],
                  "completed": body.get("completed", False)}

        def create() -> Row | None:
            rows = writes.write(self.services.pool, grant.writer, TODOS_SQL["create"], params, TODOS_SQL["written"])
            self.publish(rows)
            return rows[0] if rows else None

        # A retired id (sql/0010_limits.sql) is a unique violation: no live row has it, a 409.
        row = creating.attempt(create)
        if row is not None:
            self.services.budget.spend(grant.user.id, 1)
            return creating.created(todo_json(row), request.path)
        found = self.services.pool.query_one(TODOS_SQL["find"], params)
        return creating.existing(found, todo_json, request.path)

    def patch(self, request: Request, grant: ListAccess) -> Reply:
        # The body first: its 413/415/400 win over a 422 for the query (the contract's precedence).
        raw = read_json_object(request)
        only = validation.bool_param(request.args, "completed")
        body = validation.fields(raw, {"completed": validation.completed}, required={"completed"})
        params = {"list": grant.list_id, "completed": body["completed"], "filter": only,
                  "if_revs": if_match_revs(request)}
        rows = writes.write(self.services.pool, grant.writer, TODOS_SQL["set_all_completed"], params,
                            TODOS_SQL["written_in_list"], checks=self._if_match(request))
        changed = todos_json(rows)
        if changed is None:
            raise NotFound(access.NO_SUCH_LIST)
        self.services.budget.spend(grant.user.id, len(changed["todos"]))
        return json_response(changed, headers=[etag(changed["rev"])])

    def delete(self, request: Request, grant: ListAccess) -> Reply:
        if validation.bool_param(request.args, "completed") is not True:
            raise Unprocessable("completed must be true: only completed todos can be cleared at once",
                                code="invalid")
        params = {"list": grant.list_id, "if_revs": if_match_revs(request)}
        rows = writes.write(self.services.pool, grant.writer, TODOS_SQL["delete_completed"], params,
                            TODOS_SQL["deleted_in_list"], checks=self._if_match(request))
        if not rows:
            raise NotFound(access.NO_SUCH_LIST)
        self.services.budget.spend(grant.user.id, rows[0].deleted)
        return json_response({"deleted": rows[0].deleted, "rev": rows[0].rev}, headers=[etag(rows[0].rev)])

    def _if_match(self, request: Request) -> list[str]:
        """If-Match with the list's ETag on a bulk write: checked once the write's revs are
        assigned, so it holds to the commit; refused (412), the write is undone with it."""
        return [] if if_match_revs(request) is None else [TODOS_SQL["expect_list_rev"]]

    def websocket(self, request: Request, grant: ListAccess) -> None:
        predicate = validation.bool_param(request.args, "completed")
        since = streaming.parse_since(request.args)
        members = validation.bool_param(request.args, "members") is True
        seen = access.read_list_as_seen(self.services.pool, grant)
        opener = streaming.opener(request)
        socket = streaming.accept(request, self.services.streams)
        self.services.streams.list_stream(socket, opener, seen, predicate=predicate, since=since, members=members)


class Todo(Resource):
    """One todo of a list."""

    in_list = True
    missing = NO_SUCH_TODO

    def exists(self, verb: str, grant: ListAccess, values: dict[str, Any]) -> bool:
        return self._current_rev(grant, values["todo_id"]) is not None

    def get(self, request: Request, grant: ListAccess, todo_id: uuid.UUID) -> Reply:
        row = self.services.pool.query_one(TODOS_SQL["get"], {"id": todo_id, "list": grant.list_id,
                                                             "user": grant.user.id})
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
        rows = writes.write(self.services.pool, grant.writer, TODOS_SQL["delete"], key, TODOS_SQL["written"])
        if not rows:
            raise self._missed(grant, key)
        self.publish(rows)
        self.services.budget.spend(grant.user.id, 1)
        return no_content()

    def websocket(self, request: Request, grant: ListAccess, todo_id: uuid.UUID) -> None:
        if self._current_rev(grant, todo_id) is None:
            raise NotFound(NO_SUCH_TODO)
        seen = access.read_list_as_seen(self.services.pool, grant)
        opener = streaming.opener(request)
        self.services.streams.todo_stream(streaming.accept(request, self.services.streams), opener, seen, str(todo_id))

    def _update(self, request: Request, grant: ListAccess, todo_id: uuid.UUID, body: dict[str, Any]) -> Reply:
        key = {"id": todo_id, "list": grant.list_id, "if_revs": if_match_revs(request)}
        rows = writes.write(self.services.pool, grant.writer, TODOS_SQL["update"],
                            {**key, "title": body.get("title"), "completed": body.get("completed")},
                            TODOS_SQL["written"])
        if not rows:
            raise self._missed(grant, key)
        self.publish(rows)
        self.services.budget.spend(grant.user.id, 1)
        return json_response(todo_json(rows[0]), headers=[etag(rows[0].rev)])

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

    def _missed(self, grant: ListAccess, key: dict[str, Any]) -> HTTPError:
        """A conditional write on the todo matched no row: 404 if the todo is not there, else 412."""
        return missed("todo", NO_SUCH_TODO, key["if_revs"], self._current_rev(grant, key["id"]))
