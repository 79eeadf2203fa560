"""The OpenAPI 3.1 description of every route (served at /api/openapi.json), built as data.

Paths, their parameters and methods are generated from the routes (todopy/routes.py)
and the verbs each resource class answers; only what each operation does is written
here (`OPERATIONS`, keyed by resource class and verb). Schemas are exact, not just indicative: what a schema accepts the server accepts, and
what it refuses the server refuses (outside tools generate requests from them).
One schema per concept, referenced by `$ref`; responses for errors are shared too.
"""
from __future__ import annotations

import copy
import re
from typing import Any

from todopy import __version__, idempotency
from todopy.routes import ROUTES, Route
from todopy.validation import MAX_TITLE
from todopy.views import accounts, activity, lists, ops, static, todos
from todopy.views.base import WEBSOCKET, Resource

JSON = "application/json"
Schema = dict[str, Any]

# Exactly the characters Python's str.isspace() accepts, i.e. what str.strip trims
# (tests/test_openapi.py checks this against every code point).
WHITE_SPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
# No text field may contain NUL (PostgreSQL text cannot hold it). Lone surrogates
# (JSON escapes like "\ud800") are refused too, but a pattern cannot say so in a
# way every validator compiles (Rust's regex, used by schemathesis, has no
# surrogates), so the descriptions say it instead.
FORBIDDEN = "\\x00"
NOT_TEXT = " No NUL characters, no lone surrogates."


def ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def schema(name: str) -> dict[str, str]:
    return ref("schemas", name)


def json_content(body: Schema) -> dict[str, Any]:
    return {JSON: {"schema": body}}


def closed_object(properties: dict[str, Any], required: list[str] | None = None) -> Schema:
    """An object with exactly these properties: the server refuses unknown fields."""
    return {"type": "object", "properties": properties, "required": list(properties) if required is None else required,
            "additionalProperties": False}


# -- schemas -------------------------------------------------------------------

SCHEMAS: dict[str, Schema] = {
    "ErrorBody": closed_object({
        "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$", "description": "a stable slug"},
        "message": {"type": "string", "minLength": 1, "description": "for humans; names the offending field"},
    }),
    "Error": {**closed_object({"error": schema("ErrorBody")}), "description": "Every error, on every route."},
    "Username": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{3,64}$",
                 "description": "Unique case-insensitively, stored as given."},
    "Password": {"type": "string", "minLength": 8, "maxLength": 1024, "pattern": f"^[^{FORBIDDEN}]*$",
                 "description": "8 to 1024 characters (code points), every one significant." + NOT_TEXT},
    "Credentials": closed_object({"username": schema("Username"), "password": schema("Password")}),
    "User": closed_object({"id": {"type": "string", "format": "uuid"}, "username": schema("Username")}),
    "SignedIn": closed_object({
        "user": schema("User"),
        "token": {"type": "string", "minLength": 1,
                  "description": "Opaque and revocable; send as `Authorization: Bearer <token>`. "
                                 "The `todopy_session` cookie holds the same token."},
    }),
    "Session": closed_object({"user": schema("User")}),
    "Rev": {"type": "integer", "minimum": 0,
            "description": "A position in one list's own sequence of changes; revs of different lists are unrelated."},
    "ClientId": {"type": "string", "format": "uuid",
                 "description": "A client-chosen id: creating again with the same id is safe (200, nothing "
                                "changes); an id taken elsewhere is a 409 `id_taken`."},
    "Title": {"type": "string", "minLength": 1, "maxLength": MAX_TITLE, "pattern": f"^[^{FORBIDDEN}{WHITE_SPACE}]"
              f"([^{FORBIDDEN}]*[^{FORBIDDEN}{WHITE_SPACE}])?$",
              "description": f"1 to {MAX_TITLE} characters (code points), no leading or trailing white space."
                             + NOT_TEXT},
    "TitleInput": {
        "type": "string",
        # White space around is trimmed (as Python's str.strip); 1 to 512 characters must remain.
        "pattern": f"^[{WHITE_SPACE}]*[^{FORBIDDEN}{WHITE_SPACE}]([^{FORBIDDEN}]{{0,{MAX_TITLE - 2}}}"
                   f"[^{FORBIDDEN}{WHITE_SPACE}])?[{WHITE_SPACE}]*$",
        "description": f"Trimmed of white space (as Python's str.strip), then 1 to {MAX_TITLE} characters."
                       + NOT_TEXT,
    },
    "Todo": closed_object({
        "id": {"type": "string", "format": "uuid"},
        "title": schema("Title"),
        "completed": {"type": "boolean"},
        "created_time": {"type": "string", "format": "date-time"},
        "rev": {**schema("Rev"), "minimum": 1, "description": "The rev of this todo's latest change."},
    }),
    "TodoFields": {
        **closed_object({
            "title": schema("TitleInput"),
            "completed": {"type": "boolean"},
            # A todo may be sent back whole: its read-only fields are ignored, whatever they hold.
            "id": {"description": "read-only: ignored"},
            "rev": {"description": "read-only: ignored"},
            "created_time": {"description": "read-only: ignored"},
        }, required=[]),
        "description": "The writable fields of a todo; any other field is a 422.",
    },
    "NewTodo": closed_object({
        "title": schema("TitleInput"),
        "completed": {"type": "boolean"},
        "id": schema("ClientId"),
        "rev": {"description": "read-only: ignored"},
        "created_time": {"description": "read-only: ignored"},
    }, required=["title"]),
    "TodoReplacement": {"allOf": [schema("TodoFields"), {"required": ["title", "completed"]}]},
    "TodoChanges": {"allOf": [schema("TodoFields"), {"anyOf": [{"required": ["title"]}, {"required": ["completed"]}]}],
                    "description": "At least one of title and completed: a PATCH with nothing to change is a 422."},
    "ToggleAll": closed_object({"completed": {"type": "boolean"}}),
    "TodoList": closed_object({
        "todos": {"type": "array", "items": schema("Todo"), "description": "oldest first"},
        "rev": {**schema("Rev"), "description": "The list's latest change that this read reflects."},
    }),
    "List": closed_object({
        "id": {"type": "string", "format": "uuid"},
        "title": schema("Title"),
        "role": schema("Role"),
        "personal": {"type": "boolean", "description": "The user's own list behind `/api/todos/`."},
        "created_time": {"type": "string", "format": "date-time"},
        "rev": {**schema("Rev"), "description": "The list's latest change."},
    }),
    "Role": {"type": "string", "enum": ["owner", "editor", "viewer"],
             "description": "The requesting user's role: viewers read and stream, editors also write todos and "
                            "rename, the owner also manages members and deletes."},
    "Lists": closed_object({"lists": {"type": "array", "items": schema("List"), "description": "oldest first"}}),
    "NewList": closed_object({"title": schema("TitleInput"), "id": schema("ClientId")}, required=["title"]),
    "ListChanges": {
        **closed_object({
            "title": schema("TitleInput"),
            **{name: {"description": "read-only: ignored"}
               for name in ("id", "role", "personal", "created_time", "rev")},
        }, required=["title"]),
        "description": "A new title; a list may be sent back whole (its read-only fields are ignored).",
    },
    "Member": closed_object({"user": schema("User"), "role": schema("Role")}),
    "Members": closed_object({"members": {"type": "array", "items": schema("Member"), "description": "owner first"}}),
    "Author": {"type": ["string", "null"],
               "description": "Who made the change: a username, or null for a database writer that did not say "
                              "(sql/ writers name themselves with the `todopy.user` setting) or a deleted account."},
    "ActivityEntry": {
        **closed_object({
            "rev": {**schema("Rev"), "minimum": 1},
            "time": {"type": "string", "format": "date-time", "description": "When the change was made."},
            "by": schema("Author"),
            "kind": {"type": "string", "enum": ["todo", "list", "member"]},
            "op": {"type": "string", "enum": ["insert", "update", "delete"]},
            "todo": {**schema("Todo"), "description": "`kind: todo`: the todo as this change left it (a delete: as "
                                                      "it was); its `rev` is this change's."},
            "list": {**closed_object({"title": schema("Title")}),
                     "description": "`kind: list`: the list's new title (`update`), or its last one (`delete`)."},
            "member": {**closed_object({"username": {"type": ["string", "null"]},
                                        "role": {"type": ["string", "null"],
                                                 "enum": ["owner", "editor", "viewer", None]}}),
                       "description": "`kind: member`: who joined, changed role or left, and their role now "
                                      "(null: left)."},
        }, required=["rev", "time", "by", "kind", "op"]),
        "description": "One change of the list; exactly one of `todo`, `list` and `member`, by `kind`.",
    },
    "Activity": closed_object({
        "changes": {"type": "array", "items": schema("ActivityEntry"), "description": "newest first"},
        "next": {"type": ["integer", "null"], "minimum": 1,
                 "description": "`before` for the next (older) page; null on the last page."},
    }),
    "MemberRole": closed_object({"role": {"type": "string", "enum": ["editor", "viewer"]}}),
    "Cleared": closed_object({"deleted": {"type": "integer", "minimum": 0}, "rev": schema("Rev")}),
    "Healthy": closed_object({"status": {"const": "ok"}}),
    "Unhealthy": closed_object({"status": {"const": "unavailable"}, "error": schema("ErrorBody")}),
}


# -- parameters and headers ----------------------------------------------------

PARAMETERS: dict[str, Any] = {
    "TodoId": {"name": "todo_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"},
               "description": "Not a UUID, in another list or gone: 404."},
    "ListId": {"name": "list_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"},
               "description": "A list the user is a member of; any other (or not a UUID): 404."},
    "Username": {"name": "username", "in": "path", "required": True, "schema": {"type": "string"},
                 "description": "A user's name (case-insensitive); an unknown one is a 404."},
    "CompletedFilter": {"name": "completed", "in": "query", "required": False,
                        "schema": {"type": "string", "enum": ["true", "false"]},
                        "description": "Only todos with this `completed`; any other value is a 422."},
    "ClearCompleted": {"name": "completed", "in": "query", "required": True, "schema": {"const": "true"},
                       "description": "Must be `true`: only completed todos are cleared at once."},
    "Before": {"name": "before", "in": "query", "required": False,
               "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,17}$"},
               "description": "Only changes older than this rev (the previous page's `next`); not a positive "
                              "integer: 422."},
    "PageLimit": {"name": "limit", "in": "query", "required": False,
                  "schema": {"type": "string", "pattern": "^([1-9][0-9]?|1[0-9][0-9]|200)$"},
                  "description": "Changes per page, 1 to 200 (default 50); anything else: 422."},
    "IfMatch": {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
                "description": 'The ETag (`"<rev>"`) last seen, or a list of them; strong comparison (a `W/` tag '
                               'never matches); when none matches the current rev: 412.'},
    "ListIfMatch": {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
                    "description": 'The list\'s ETag (`"<rev>"`, from `GET` of its todos or of the list) last seen, '
                                   'or a list of them; strong comparison. When the list has changed since (any todo '
                                   'or its title): 412, and nothing changes.'},
    "IdempotencyKey": {
        "name": "Idempotency-Key", "in": "header", "required": False,
        "schema": {"type": "string", "pattern": idempotency.KEY_SCHEMA_PATTERN},
        "description": "A key made once per write (a UUID), sent with every attempt of it (IETF httpapi draft; "
                       "quoted or bare, 1 to 255 printable ASCII characters but `\"` and `\\`, else 400 "
                       "`invalid_idempotency_key`). "
                       "The first request with it is performed once; a retry with the same key and the same "
                       "request (method, path, query, If-Match, body) gets the first response again, with "
                       "`Idempotent-Replayed: true`; the same key with another request is 422 "
                       "`idempotency_key_reused`; while the first is in progress, 409 `idempotency_key_in_use`. "
                       "Keys are the user's own, kept 24 hours, at most 10,000 live per user (then 429 "
                       "`too_many_idempotency_keys`). Errors are not remembered."},
}

HEADERS: dict[str, Any] = {
    "ETag": {"description": 'The todo\'s (or list\'s) rev, quoted: `"<rev>"`.',
             "schema": {"type": "string", "pattern": '^"[0-9]+"$'}},
    "Location": {"description": "The new todo's (or list's) URL, under the URL it was created at.",
                 "schema": {"type": "string", "format": "uri-reference"}},
    "SetSession": {"description": "`todopy_session=<token>; HttpOnly; SameSite=Lax; Path=/` (and `Secure` over "
                                  "https); on sign-out, the same cookie expired.",
                   "schema": {"type": "string"}},
    "RetryAfter": {"description": "Seconds until trying again may succeed: sign-in for this username, or a new "
                                  "idempotency key (when the user's oldest expires).",
                   "schema": {"type": "integer", "minimum": 1}},
    "Allow": {"description": "The methods this URL serves, comma-separated.", "schema": {"type": "string"}},
}


# -- responses -----------------------------------------------------------------

def error_response(description: str, **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": json_content(schema("Error"))}
    if headers:
        response["headers"] = {name: ref("headers", header) for name, header in headers.items()}
    return response


ERRORS: dict[str, dict[str, Any]] = {
    "400": error_response("The body is not valid JSON (or nested too deeply), or not an object; a malformed "
                          "`Idempotency-Key` (`invalid_idempotency_key`)."),
    "401": error_response("No or bad credentials."),
    "403": error_response("Cross-site request refused (`cross_site`: cookie-authenticated, from a foreign Origin or "
                          "Referer), or the user's role in the list does not allow this (`forbidden`)."),
    "404": error_response("No such resource: the list is not one the user is a member of, or the todo is not in it."),
    "405": error_response("Method not allowed here.", Allow="Allow"),
    "408": error_response("The request body did not arrive in time, or ended early."),
    "409": error_response("Username taken (`username_taken`); a client-chosen id taken elsewhere (`id_taken`); the "
                          "owner leaving, changing their own role or deleting the personal list (`owner_stays`); "
                          "a quota reached (`limit_reached`); a request with this `Idempotency-Key` still in "
                          "progress (`idempotency_key_in_use`, retry after a second)."),
    "412": error_response("`If-Match` did not match: the todo (or list) has changed; `ETag` is its rev now.",
                          ETag="ETag"),
    "413": error_response("Body over 64 KiB."),
    "415": error_response("Body present but not `application/json`."),
    "422": error_response("Valid JSON, invalid fields or query parameters; the message names the field. An "
                          "`Idempotency-Key` already used for another request (`idempotency_key_reused`)."),
    "429": error_response("Too many failed sign-ins for this username (`too_many_requests`); the user's write budget "
                          "is spent for now (`slow_down`, on writes to lists and todos); a new `Idempotency-Key` "
                          "past the user's bound (`too_many_idempotency_keys`); on a WebSocket handshake, "
                          "the user has the most streams one server process allows (`too_many_streams`). "
                          "`Retry-After` says when to try again.", **{"Retry-After": "RetryAfter"}),
    "503": error_response("Database unreachable; the server recovers by itself."),
}
ERROR_NAMES = {"400": "BadRequest", "401": "Unauthorized", "403": "CrossSite", "404": "NotFound",
               "405": "MethodNotAllowed", "408": "RequestTimeout", "409": "Conflict", "412": "PreconditionFailed",
               "413": "PayloadTooLarge", "415": "UnsupportedMediaType", "422": "Unprocessable",
               "429": "TooManyRequests", "503": "Unavailable"}

# What every request with a JSON body can meet before its fields are looked at.
BODY_ERRORS = ("400", "408", "413", "415", "422")


def errors(*statuses: str) -> dict[str, Any]:
    return {status: ref("responses", ERROR_NAMES[status]) for status in statuses}


def success(status: str, description: str, body: Schema | None = None, /, **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if body is not None:
        response["content"] = json_content(body)
    if headers:
        response["headers"] = {name: ref("headers", header) for name, header in headers.items()}
    return {status: response}


def body(name: str) -> dict[str, Any]:
    return {"required": True, "content": json_content(schema(name))}


SIGNED_IN: list[dict[str, list[str]]] = [{"bearer": []}, {"cookie": []}]
ANYONE: list[dict[str, list[str]]] = [{}, {"cookie": []}]


def operation(operation_id: str, summary: str, responses: dict[str, Any], *, security: list | None = None,
              parameters: tuple[str, ...] | list[str] = (), request: str | None = None,
              tags: list[str] | None = None) -> dict[str, Any]:
    """One operation's documentation; a resource that is not public gets `SIGNED_IN` security when generated."""
    op: dict[str, Any] = {"operationId": operation_id, "summary": summary, "responses": responses}
    if tags:
        op["tags"] = tags
    if security is not None:
        op["security"] = security
    if parameters:
        op["parameters"] = [ref("parameters", name) for name in parameters]
    if request is not None:
        op["requestBody"] = body(request)
    return op


def todos_operation(operation_id: str, summary: str, responses: dict[str, Any], **options: Any) -> dict[str, Any]:
    return operation(operation_id, summary, {**responses, **errors("401", "503")}, tags=["todos"], **options)


def list_operation(operation_id: str, summary: str, responses: dict[str, Any], **options: Any) -> dict[str, Any]:
    return operation(operation_id, summary, {**responses, **errors("401", "404", "503")}, tags=["lists"], **options)


def writes(*statuses: str) -> tuple[str, ...]:
    """A cookie-authenticated write can also be refused as cross-site."""
    return ("403", *statuses)


def budgeted(*statuses: str) -> tuple[str, ...]:
    """A write to lists and todos can also be refused by the user's write budget (429 `slow_down`)."""
    return writes("429", *statuses)


# -- operations: what each resource's verb does --------------------------------
# Paths, path parameters, HEAD and security come from the routes (todopy/routes.py);
# tests/test_openapi.py fails on a verb served without an entry here, or an entry for none.

OPERATIONS: dict[tuple[type[Resource], str], dict[str, Any]] = {
    (accounts.Users, "post"): operation("signUp", "Create an account and sign in", {
        **success("201", "Signed up and in; the cookie is set too.", schema("SignedIn"),
                  **{"Set-Cookie": "SetSession"}),
        **errors(*writes("409", "503", *BODY_ERRORS))}, security=ANYONE, request="Credentials", tags=["accounts"]),

    (accounts.SessionResource, "post"): operation("signIn", "Sign in", {
        **success("200", "Signed in; the cookie is set too.", schema("SignedIn"), **{"Set-Cookie": "SetSession"}),
        **errors(*writes("401", "429", "503", *BODY_ERRORS))}, security=ANYONE, request="Credentials",
        tags=["accounts"]),
    (accounts.SessionResource, "get"): operation("whoAmI", "The signed-in user", {
        **success("200", "Signed in as this user.", schema("Session")), **errors("401", "503")},
        security=SIGNED_IN, tags=["accounts"]),
    (accounts.SessionResource, "delete"): operation("signOut", "Sign out: revoke this token (or cookie) server-side", {
        **success("204", "Revoked; the cookie is cleared.", **{"Set-Cookie": "SetSession"}),
        **errors(*writes("401", "503"))}, security=SIGNED_IN, tags=["accounts"]),

    # A list's todos, documented at /api/todos/ (the personal list); `in_any_list` derives
    # the /api/lists/{list_id}/todos/... forms.
    (todos.TodoList, "get"): todos_operation("listTodos", "The list's todos, oldest first", {
        **success("200", "The todos and the rev the read reflects; the list's rev as ETag.", schema("TodoList"),
                  ETag="ETag"),
        **errors("422")},
        parameters=["CompletedFilter"]),
    (todos.TodoList, "post"): todos_operation("createTodo", "Create a todo (with a client-chosen id: safe to retry)", {
        **success("201", "Created.", schema("Todo"), Location="Location", ETag="ETag"),
        **success("200", "A todo with this id is already in this list: nothing changed.", schema("Todo"),
                  Location="Location", ETag="ETag"),
        **errors(*budgeted("409", *BODY_ERRORS))}, request="NewTodo"),
    (todos.TodoList, "patch"): todos_operation(
        "toggleAll", "Set `completed` on every todo (matching the filter), atomically", {
            **success("200", "Only the todos that changed, and the rev after the change (also the ETag).",
                      schema("TodoList"), ETag="ETag"),
            **errors(*budgeted("412", *BODY_ERRORS))}, parameters=["CompletedFilter", "ListIfMatch"],
        request="ToggleAll"),
    (todos.TodoList, "delete"): todos_operation("clearCompleted", "Delete every completed todo, atomically", {
        **success("200", "How many were deleted, and the rev after the change (also the ETag).", schema("Cleared"),
                  ETag="ETag"),
        **errors(*budgeted("412", "422"))}, parameters=["ClearCompleted", "ListIfMatch"]),

    (todos.Todo, "get"): todos_operation("getTodo", "One todo", {
        **success("200", "The todo.", schema("Todo"), ETag="ETag"), **errors("404")}),
    (todos.Todo, "put"): todos_operation("replaceTodo", "Replace both fields of a todo", {
        **success("200", "The todo after the change.", schema("Todo"), ETag="ETag"),
        **errors(*budgeted("404", "412", *BODY_ERRORS))}, parameters=["IfMatch"], request="TodoReplacement"),
    (todos.Todo, "patch"): todos_operation("updateTodo", "Change any of a todo's fields", {
        **success("200", "The todo after the change.", schema("Todo"), ETag="ETag"),
        **errors(*budgeted("404", "412", *BODY_ERRORS))}, parameters=["IfMatch"], request="TodoChanges"),
    (todos.Todo, "delete"): todos_operation("deleteTodo", "Delete a todo", {
        **success("204", "Deleted."), **errors(*budgeted("404", "412"))}, parameters=["IfMatch"]),

    (lists.Lists, "get"): operation("listLists", "The lists the user is a member of, oldest first", {
        **success("200", "The lists.", schema("Lists")), **errors("401", "503")}, tags=["lists"]),
    (lists.Lists, "post"): operation(
        "createList", "Create a list (the creator owns it; a client-chosen id is safe to retry)", {
            **success("201", "Created.", schema("List"), Location="Location", ETag="ETag"),
            **success("200", "The user's list with this id already exists: nothing changed.", schema("List"),
                      Location="Location", ETag="ETag"),
            **errors(*budgeted("401", "409", "503", *BODY_ERRORS))}, request="NewList", tags=["lists"]),

    (lists.OneList, "get"): list_operation("getList", "One list (any member)", {
        **success("200", "The list.", schema("List"), ETag="ETag")}),
    (lists.OneList, "patch"): list_operation("renameList", "Rename a list (owner, editor)", {
        **success("200", "The list after the change.", schema("List"), ETag="ETag"),
        **errors(*budgeted("412", *BODY_ERRORS))}, parameters=["IfMatch"], request="ListChanges"),
    (lists.OneList, "delete"): list_operation("deleteList", "Delete a list and its todos (owner; not the personal list)", {
        **success("204", "Deleted."), **errors(*budgeted("409", "412"))}, parameters=["IfMatch"]),

    (lists.Members, "get"): list_operation("listMembers", "The list's members, owner first (any member)", {
        **success("200", "The members.", schema("Members"))}),

    (activity.Activity, "get"): list_operation(
        "listActivity", "The list's changes, newest first, a page at a time, each with its author (any member; "
                        "nothing from before the member joined, nor older than the change log keeps)", {
            **success("200", "One page of changes.", schema("Activity")), **errors("422")},
        parameters=["Before", "PageLimit"]),

    (lists.Member, "put"): list_operation("putMember", "Add a member or change their role (owner)", {
        **success("201", "Added.", schema("Member")), **success("200", "Role set.", schema("Member")),
        **errors(*budgeted("409", *BODY_ERRORS))}, request="MemberRole"),
    (lists.Member, "delete"): list_operation("removeMember", "Remove a member (owner), or leave (the member themself)", {
        **success("204", "Removed."), **errors(*budgeted("409"))}),

    (ops.Health, "get"): operation("health", "Whether the database and the change listener are up", {
        **success("200", "Up.", schema("Healthy")),
        **success("503", "Down; the message names the failing part (database or listener).", schema("Unhealthy"))},
        tags=["operations"]),
    (ops.OpenAPI, "get"): operation("openapi", "This document", {
        "200": {"description": "OpenAPI 3.1", "content": json_content({"type": "object"})}}, tags=["operations"]),
    (ops.MetricsResource, "get"): operation("metrics", "Prometheus metrics", {
        "200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}},
        tags=["operations"]),

    (static.Index, "get"): operation("page", "The TodoMVC front end", {
        "200": {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}}},
        tags=["front end"]),
    (static.ServiceWorker, "get"): operation("serviceWorker", "The front end's service worker (offline starts)", {
        "200": {"description": "The script, revalidated on every use",
                "content": {"text/javascript": {"schema": {"type": "string"}}}},
        **errors("404")}, tags=["front end"]),
    (static.Asset, "get"): operation("asset", "A content-hashed asset of the front end", {
        "200": {"description": "The asset, cacheable for a year",
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
        **errors("404")}, tags=["front end"]),
}

UNSAFE_VERBS = ("post", "put", "patch", "delete")

# Each placeholder a route may have, as an OpenAPI path parameter.
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "todo_id": ref("parameters", "TodoId"),
    "list_id": ref("parameters", "ListId"),
    "username": ref("parameters", "Username"),
    "filename": {"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}},
}
PLACEHOLDER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")    # werkzeug's <converter:name> or <name>


def openapi_path(rule: str) -> str:
    """Werkzeug's `/api/todos/<uuid:todo_id>/` as OpenAPI's `/api/todos/{todo_id}/`."""
    return PLACEHOLDER.sub(r"{\1}", rule)


def in_any_list(personal: dict[str, Any]) -> dict[str, Any]:
    """An operation on /api/todos/... as on /api/lists/{list_id}/todos/...: the same, for any list."""
    op = copy.deepcopy(personal)
    op["operationId"] = op["operationId"].replace("Todo", "ListTodo").replace("toggleAll", "toggleAllInList") \
        .replace("clearCompleted", "clearCompletedInList")
    op["tags"] = ["lists"]
    op["responses"].setdefault("404", ref("responses", "NotFound"))
    return op


def head_of(get: dict[str, Any]) -> dict[str, Any]:
    """HEAD is served wherever GET is: the same responses without a body."""
    head = copy.deepcopy(get)
    head["operationId"] += "Head"
    head["summary"] = "Headers only: " + head["summary"][0].lower() + head["summary"][1:]
    for status, response in head["responses"].items():
        if "$ref" in response:     # a shared error response: the same, minus its body
            response = head["responses"][status] = copy.deepcopy(ERRORS[status])
        response.pop("content", None)
    return head


def keyed(op: dict[str, Any]) -> dict[str, Any]:
    """A write of a signed-in user takes an Idempotency-Key, and can meet what it answers."""
    op.setdefault("parameters", []).append(ref("parameters", "IdempotencyKey"))
    for status in ("400", "409", "422", "429"):
        op["responses"].setdefault(status, ref("responses", ERROR_NAMES[status]))
    return op


def paths(routes: tuple[Route, ...]) -> dict[str, Any]:
    """One path item per route, with exactly the methods its resource answers (those a 405's `Allow` names)."""
    # A resource served both at a path without `list_id` (the personal list) and with one
    # is documented for the first: the others are derived (`in_any_list`).
    personal = {route.resource for route in routes
                if route.resource.in_list and "list_id" not in PLACEHOLDER.findall(route.path)}
    items: dict[str, Any] = {}
    for route in routes:
        names = PLACEHOLDER.findall(route.path)
        item: dict[str, Any] = {"parameters": [PATH_PARAMETERS[name] for name in names]} if names else {}
        for method in route.resource.allowed_methods():
            verb = method.lower()
            if verb == "head":
                item[verb] = head_of(item["get"])
                continue
            op = copy.deepcopy(OPERATIONS[route.resource, verb])
            if not route.resource.public:
                op["security"] = SIGNED_IN
                if verb in UNSAFE_VERBS:
                    op = keyed(op)
            item[verb] = in_any_list(op) if route.resource in personal and "list_id" in names else op
        items[openapi_path(route.path)] = item
    return items


def streams(routes: tuple[Route, ...]) -> str:
    """The paths whose resources open a stream on a WebSocket upgrade, for the description."""
    served = [f"`{openapi_path(route.path)}`" for route in routes if hasattr(route.resource, WEBSOCKET)]
    return ", ".join(served[:-1]) + " and " + served[-1]


def document() -> dict[str, Any]:
    """The whole document, built from the routes; a fresh copy each time (callers may change it)."""
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {
            "title": "todopy",
            "version": __version__,
            "description": (
                "A realtime TodoMVC API. Every body is JSON (`application/json; charset=utf-8`). A route "
                "listed with a trailing slash answers 308 (query string kept) without it. A method a URL does "
                "not serve is a 405 with an `Allow` header (see `components.responses.MethodNotAllowed`). "
                "When several errors apply, the first of 401, 404/405, 403, 413, 415, 400, 422 wins. "
                f"`GET` with a WebSocket upgrade opens a stream on {streams(ROUTES)}. A handshake past the "
                "user's streams per server process is 429 `too_many_streams`, and one that would leave the "
                "process too few file descriptors is 503 `server_busy`, both with `Retry-After`."),
        },
        "tags": [{"name": name} for name in ("accounts", "todos", "lists", "operations", "front end")],
        "paths": paths(ROUTES),
        "components": {
            "schemas": SCHEMAS,
            "parameters": PARAMETERS,
            "headers": HEADERS,
            "responses": {ERROR_NAMES[status]: response for status, response in ERRORS.items()},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "The token from sign-up or sign-in."},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "todopy_session",
                           "description": "The session cookie browsers carry; unsafe methods with it must come "
                                          "from the server's own origin (or an allowed one), else 403."},
            },
        },
    })
