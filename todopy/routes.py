"""Every URL the server answers, in one table: path, route name, resource class.

The Map (whose endpoints are the routes themselves) and the private prefixes are
built from that table; so is the OpenAPI document (todopy/openapi.py).
"""
from __future__ import annotations

from typing import NamedTuple

from werkzeug.routing import Map, Rule

from todopy.views import accounts, activity, lists, ops, static, todos
from todopy.views.base import Resource


class Route(NamedTuple):
    """One URL: its werkzeug rule, its name in metrics and logs, and the resource class serving it."""

    path: str                   # a werkzeug rule
    name: str                   # the `route` label of metrics and logs
    resource: type[Resource]    # who serves it; secure unless the class says `public`


ROUTES = (
    Route("/", "index", static.Index),
    Route("/assets/<filename>", "asset", static.Asset),
    Route("/sw.js", "service_worker", static.ServiceWorker),
    Route("/healthz", "health", ops.Health),
    Route("/metrics", "metrics", ops.MetricsResource),
    Route("/api/openapi.json", "openapi", ops.OpenAPI),
    Route("/api/users/", "users", accounts.Users),
    Route("/api/session/", "session", accounts.SessionResource),
    # The personal list. A malformed id matches no rule: a 404 decided before any SQL runs.
    Route("/api/todos/", "todos", todos.TodoList),
    Route("/api/todos/<uuid:todo_id>/", "todo", todos.Todo),
    # Any list the user is a member of.
    Route("/api/lists/", "lists", lists.Lists),
    Route("/api/lists/<uuid:list_id>/", "list", lists.OneList),
    Route("/api/lists/<uuid:list_id>/members/", "members", lists.Members),
    Route("/api/lists/<uuid:list_id>/members/<username>/", "member", lists.Member),
    Route("/api/lists/<uuid:list_id>/activity/", "activity", activity.Activity),
    Route("/api/lists/<uuid:list_id>/todos/", "todos", todos.TodoList),
    Route("/api/lists/<uuid:list_id>/todos/<uuid:todo_id>/", "todo", todos.Todo),
)

# A match answers the Route itself: its resource serves it, its name labels it.
url_map = Map([Rule(route.path, endpoint=route) for route in ROUTES], strict_slashes=True, merge_slashes=False)


def private_prefixes(routes: tuple[Route, ...]) -> tuple[str, ...]:
    """Where every path needs a signed-in user, matched or not: a stranger learns nothing about which ids exist.

    The fixed start of each route that is not public, up to its first placeholder (the
    whole path, as a folder, when it has none); a start inside another is left out.
    """
    starts = set()
    for route in routes:
        if route.resource.public:
            continue
        fixed, placeholder, _ = route.path.partition("<")
        starts.add(fixed[:fixed.rfind("/") + 1] if placeholder else fixed.rstrip("/") + "/")
    return tuple(sorted(start for start in starts
                        if not any(start != other and start.startswith(other) for other in starts)))


PRIVATE_PREFIXES = private_prefixes(ROUTES)    # ("/api/lists/", "/api/todos/")
