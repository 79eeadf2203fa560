"""Every URL the server answers, in one place: path -> resource class."""
from __future__ import annotations

from werkzeug.routing import Map, Rule

from todopy.views import accounts, lists, ops, static, todos

RESOURCES = {
    "index": static.Index,
    "asset": static.Asset,
    "health": ops.Health,
    "metrics": ops.MetricsResource,
    "openapi": ops.OpenAPI,
    "users": accounts.Users,
    "session": accounts.SessionResource,
    "todos": todos.TodoList,
    "todo": todos.Todo,
    "lists": lists.Lists,
    "list": lists.OneList,
    "members": lists.Members,
    "member": lists.Member,
}

# Paths under these prefixes need a signed-in user even when they match no route: a
# stranger learns nothing about which ids exist (401 comes before 404).
PRIVATE_PREFIXES = ("/api/todos/", "/api/lists/")

url_map = Map(
    [
        Rule("/", endpoint="index"),
        Rule("/assets/<filename>", endpoint="asset"),
        Rule("/healthz", endpoint="health"),
        Rule("/metrics", endpoint="metrics"),
        Rule("/api/openapi.json", endpoint="openapi"),
        Rule("/api/users/", endpoint="users"),
        Rule("/api/session/", endpoint="session"),
        # The personal list. A malformed id matches no rule: a 404 decided before any SQL runs.
        Rule("/api/todos/", endpoint="todos"),
        Rule("/api/todos/<uuid:todo_id>/", endpoint="todo"),
        # Any list the user is a member of.
        Rule("/api/lists/", endpoint="lists"),
        Rule("/api/lists/<uuid:list_id>/", endpoint="list"),
        Rule("/api/lists/<uuid:list_id>/members/", endpoint="members"),
        Rule("/api/lists/<uuid:list_id>/members/<username>/", endpoint="member"),
        Rule("/api/lists/<uuid:list_id>/todos/", endpoint="todos"),
        Rule("/api/lists/<uuid:list_id>/todos/<uuid:todo_id>/", endpoint="todo"),
    ],
    strict_slashes=True,
    merge_slashes=False,
)
