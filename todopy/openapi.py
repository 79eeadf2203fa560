"""The OpenAPI 3.1 description of every route (served at /api/openapi.json), built as data.

Schemas are exact, not just indicative: what a schema accepts the server accepts, and
what it refuses the server refuses (outside tools generate requests from them).
One schema per concept, referenced by `$ref`; responses for errors are shared too.
"""
from __future__ import annotations

import copy
from typing import Any

from todopy import __version__
from todopy.validation import MAX_TITLE

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
    "IfMatch": {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
                "description": 'The ETag (`"<rev>"`) last seen, or a list of them; strong comparison (a `W/` tag '
                               'never matches); when none matches the current rev: 412.'},
}

HEADERS: dict[str, Any] = {
    "ETag": {"description": 'The todo\'s (or list\'s) rev, quoted: `"<rev>"`.',
             "schema": {"type": "string", "pattern": '^"[0-9]+"$'}},
    "Location": {"description": "The new todo's (or list's) URL, under the URL it was created at.",
                 "schema": {"type": "string", "format": "uri-reference"}},
    "SetSession": {"description": "`todopy_session=<token>; HttpOnly; SameSite=Lax; Path=/` (and `Secure` over "
                                  "https); on sign-out, the same cookie expired.",
                   "schema": {"type": "string"}},
    "RetryAfter": {"description": "Seconds until sign-in for this username is allowed again.",
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
    "400": error_response("The body is not valid JSON (or nested too deeply), or not an object."),
    "401": error_response("No or bad credentials."),
    "403": error_response("Cross-site request refused (`cross_site`: cookie-authenticated, from a foreign Origin or "
                          "Referer), or the user's role in the list does not allow this (`forbidden`)."),
    "404": error_response("No such resource: the list is not one the user is a member of, or the todo is not in it."),
    "405": error_response("Method not allowed here.", Allow="Allow"),
    "408": error_response("The request body did not arrive in time, or ended early."),
    "409": error_response("Username taken (`username_taken`); a client-chosen id taken elsewhere (`id_taken`); the "
                          "owner leaving, changing their own role or deleting the personal list (`owner_stays`); "
                          "a quota reached (`limit_reached`)."),
    "412": error_response("`If-Match` did not match: the todo (or list) has changed.", ETag="ETag"),
    "413": error_response("Body over 64 KiB."),
    "415": error_response("Body present but not `application/json`."),
    "422": error_response("Valid JSON, invalid fields or query parameters; the message names the field."),
    "429": error_response("Too many failed sign-ins for this username.", **{"Retry-After": "RetryAfter"}),
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
    return operation(operation_id, summary, {**responses, **errors("401", "503")}, security=SIGNED_IN,
                     tags=["todos"], **options)


def writes(*statuses: str) -> tuple[str, ...]:
    """A cookie-authenticated write can also be refused as cross-site."""
    return ("403", *statuses)


PATHS: dict[str, dict[str, Any]] = {
    "/api/users/": {
        "post": operation("signUp", "Create an account and sign in", {
            **success("201", "Signed up and in; the cookie is set too.", schema("SignedIn"),
                      **{"Set-Cookie": "SetSession"}),
            **errors(*writes("409", "503", *BODY_ERRORS))}, security=ANYONE, request="Credentials",
            tags=["accounts"]),
    },
    "/api/session/": {
        "post": operation("signIn", "Sign in", {
            **success("200", "Signed in; the cookie is set too.", schema("SignedIn"), **{"Set-Cookie": "SetSession"}),
            **errors(*writes("401", "429", "503", *BODY_ERRORS))}, security=ANYONE, request="Credentials",
            tags=["accounts"]),
        "get": operation("whoAmI", "The signed-in user", {
            **success("200", "Signed in as this user.", schema("Session")), **errors("401", "503")},
            security=SIGNED_IN, tags=["accounts"]),
        "delete": operation("signOut", "Sign out: revoke this token (or cookie) server-side", {
            **success("204", "Revoked; the cookie is cleared.", **{"Set-Cookie": "SetSession"}),
            **errors(*writes("401", "503"))}, security=SIGNED_IN, tags=["accounts"]),
    },
    "/api/todos/": {
        "get": todos_operation("listTodos", "The list's todos, oldest first", {
            **success("200", "The todos and the rev the read reflects.", schema("TodoList")), **errors("422")},
            parameters=["CompletedFilter"]),
        "post": todos_operation("createTodo", "Create a todo (with a client-chosen id: safe to retry)", {
            **success("201", "Created.", schema("Todo"), Location="Location", ETag="ETag"),
            **success("200", "A todo with this id is already in this list: nothing changed.", schema("Todo"),
                      Location="Location", ETag="ETag"),
            **errors(*writes("409", *BODY_ERRORS))}, request="NewTodo"),
        "patch": todos_operation("toggleAll", "Set `completed` on every todo (matching the filter), atomically", {
            **success("200", "Only the todos that changed, and the rev after the change.", schema("TodoList")),
            **errors(*writes(*BODY_ERRORS))}, parameters=["CompletedFilter"], request="ToggleAll"),
        "delete": todos_operation("clearCompleted", "Delete every completed todo, atomically", {
            **success("200", "How many were deleted, and the rev after the change.", schema("Cleared")),
            **errors(*writes("422"))}, parameters=["ClearCompleted"]),
    },
    "/api/todos/{todo_id}/": {
        "parameters": [ref("parameters", "TodoId")],
        "get": todos_operation("getTodo", "One todo", {
            **success("200", "The todo.", schema("Todo"), ETag="ETag"), **errors("404")}),
        "put": todos_operation("replaceTodo", "Replace both fields of a todo", {
            **success("200", "The todo after the change.", schema("Todo"), ETag="ETag"),
            **errors(*writes("404", "412", *BODY_ERRORS))}, parameters=["IfMatch"], request="TodoReplacement"),
        "patch": todos_operation("updateTodo", "Change any of a todo's fields", {
            **success("200", "The todo after the change.", schema("Todo"), ETag="ETag"),
            **errors(*writes("404", "412", *BODY_ERRORS))}, parameters=["IfMatch"], request="TodoChanges"),
        "delete": todos_operation("deleteTodo", "Delete a todo", {
            **success("204", "Deleted."), **errors(*writes("404", "412"))}, parameters=["IfMatch"]),
    },
    "/healthz": {
        "get": operation("health", "Whether the database and the change listener are up", {
            **success("200", "Up.", schema("Healthy")),
            **success("503", "Down; the message names the failing part (database or listener).",
                      schema("Unhealthy"))}, tags=["operations"]),
    },
    "/api/openapi.json": {
        "get": operation("openapi", "This document", {
            "200": {"description": "OpenAPI 3.1", "content": json_content({"type": "object"})}},
            tags=["operations"]),
    },
    "/metrics": {
        "get": operation("metrics", "Prometheus metrics", {
            "200": {"description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}}}}, tags=["operations"]),
    },
    "/": {
        "get": operation("page", "The TodoMVC front end", {
            "200": {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}}},
            tags=["front end"]),
    },
    "/assets/{filename}": {
        "parameters": [{"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}}],
        "get": operation("asset", "A content-hashed asset of the front end", {
            "200": {"description": "The asset, cacheable for a year",
                    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
            **errors("404")}, tags=["front end"]),
    },
}


def list_operation(operation_id: str, summary: str, responses: dict[str, Any], **options: Any) -> dict[str, Any]:
    return operation(operation_id, summary, {**responses, **errors("401", "404", "503")}, security=SIGNED_IN,
                     tags=["lists"], **options)


PATHS.update({
    "/api/lists/": {
        "get": operation("listLists", "The lists the user is a member of, oldest first", {
            **success("200", "The lists.", schema("Lists")), **errors("401", "503")}, security=SIGNED_IN,
            tags=["lists"]),
        "post": operation("createList", "Create a list (the creator owns it; a client-chosen id is safe to retry)", {
            **success("201", "Created.", schema("List"), Location="Location", ETag="ETag"),
            **success("200", "The user's list with this id already exists: nothing changed.", schema("List"),
                      Location="Location", ETag="ETag"),
            **errors(*writes("401", "409", "503", *BODY_ERRORS))}, security=SIGNED_IN, request="NewList",
            tags=["lists"]),
    },
    "/api/lists/{list_id}/": {
        "parameters": [ref("parameters", "ListId")],
        "get": list_operation("getList", "One list (any member)", {
            **success("200", "The list.", schema("List"), ETag="ETag")}),
        "patch": list_operation("renameList", "Rename a list (owner, editor)", {
            **success("200", "The list after the change.", schema("List"), ETag="ETag"),
            **errors(*writes("412", *BODY_ERRORS))}, parameters=["IfMatch"], request="ListChanges"),
        "delete": list_operation("deleteList", "Delete a list and its todos (owner; not the personal list)", {
            **success("204", "Deleted."), **errors(*writes("409", "412"))}, parameters=["IfMatch"]),
    },
    "/api/lists/{list_id}/members/": {
        "parameters": [ref("parameters", "ListId")],
        "get": list_operation("listMembers", "The list's members, owner first (any member)", {
            **success("200", "The members.", schema("Members"))}),
    },
    "/api/lists/{list_id}/members/{username}/": {
        "parameters": [ref("parameters", "ListId"), ref("parameters", "Username")],
        "put": list_operation("putMember", "Add a member or change their role (owner)", {
            **success("201", "Added.", schema("Member")), **success("200", "Role set.", schema("Member")),
            **errors(*writes("409", *BODY_ERRORS))}, request="MemberRole"),
        "delete": list_operation("removeMember", "Remove a member (owner), or leave (the member themself)", {
            **success("204", "Removed."), **errors(*writes("409"))}),
    },
})


def _under_a_list(path_item: dict[str, Any]) -> dict[str, Any]:
    """/api/todos/... as /api/lists/{list_id}/todos/...: the same operations, for any list."""
    item = copy.deepcopy(path_item)
    item["parameters"] = [ref("parameters", "ListId"), *item.get("parameters", [])]
    for verb, op in item.items():
        if verb == "parameters":
            continue
        op["operationId"] = op["operationId"].replace("Todo", "ListTodo").replace("toggleAll", "toggleAllInList") \
            .replace("clearCompleted", "clearCompletedInList")
        op["tags"] = ["lists"]
        op["responses"].setdefault("404", ref("responses", "NotFound"))
    return item


PATHS.update({
    "/api/lists/{list_id}/todos/": _under_a_list(PATHS["/api/todos/"]),
    "/api/lists/{list_id}/todos/{todo_id}/": _under_a_list(PATHS["/api/todos/{todo_id}/"]),
})


def with_head(path_item: dict[str, Any]) -> dict[str, Any]:
    """HEAD is served wherever GET is: the same responses without a body."""
    if "get" not in path_item:
        return path_item
    head = copy.deepcopy(path_item["get"])
    head["operationId"] += "Head"
    head["summary"] = "Headers only: " + head["summary"][0].lower() + head["summary"][1:]
    for status, response in head["responses"].items():
        if "$ref" in response:     # a shared error response: the same, minus its body
            response = head["responses"][status] = copy.deepcopy(ERRORS[status])
        response.pop("content", None)
    return {**path_item, "head": head}


def document() -> dict[str, Any]:
    """The whole document; a fresh copy each time (callers may change it)."""
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
                "`GET` with a WebSocket upgrade on `/api/todos/`, `/api/todos/{todo_id}/`, their "
                "`/api/lists/{list_id}/...` forms and `/api/lists/` opens a stream."),
        },
        "tags": [{"name": name} for name in ("accounts", "todos", "lists", "operations", "front end")],
        "paths": {path: with_head(item) for path, item in PATHS.items()},
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
