"""Every URL the server answers, in one place: path -> resource class."""
from __future__ import annotations

from werkzeug.routing import Map, Rule

from todopy.views import accounts, ops, static, todos

RESOURCES = {
    "index": static.Index,
    "asset": static.Asset,
    "health": ops.Health,
    "metrics": ops.Metrics,
    "openapi": ops.OpenAPI,
    "users": accounts.Users,
    "session": accounts.Session,
    "todos": todos.TodoList,
    "todo": todos.Todo,
}

url_map = Map(
    [
        Rule("/", endpoint="index"),
        Rule("/assets/<filename>", endpoint="asset"),
        Rule("/healthz", endpoint="health"),
        Rule("/metrics", endpoint="metrics"),
        Rule("/api/openapi.json", endpoint="openapi"),
        Rule("/api/users/", endpoint="users"),
        Rule("/api/session/", endpoint="session"),
        Rule("/api/todos/", endpoint="todos"),
        # A malformed id matches no rule: a 404 decided before any SQL runs.
        Rule("/api/todos/<uuid:todo_id>/", endpoint="todo"),
    ],
    strict_slashes=True,
    merge_slashes=False,
)
