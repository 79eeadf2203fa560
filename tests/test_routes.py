"""todopy/routes.py: one table of routes, from which the Map and the private prefixes are built."""
from __future__ import annotations

import pytest
from werkzeug.routing import RequestRedirect

from todopy.routes import PRIVATE_PREFIXES, ROUTES, Route, private_prefixes, url_map
from todopy.views import static, todos
from todopy.views.base import Resource


class Private(Resource):
    def get(self, request):
        raise AssertionError("never served")


def test_a_match_answers_the_route_itself():
    adapter = url_map.bind("localhost")
    personal, _ = adapter.match("/api/todos/")
    in_a_list, values = adapter.match("/api/lists/00000000-0000-0000-0000-000000000001/todos/")
    assert personal in ROUTES and in_a_list in ROUTES and personal != in_a_list
    assert personal.resource is in_a_list.resource is todos.TodoList and personal.name == in_a_list.name == "todos"
    assert str(values["list_id"]) == "00000000-0000-0000-0000-000000000001"
    with pytest.raises(RequestRedirect):
        adapter.match("/api/todos")


def test_private_prefixes_are_the_fixed_starts_of_the_routes_that_are_not_public():
    assert PRIVATE_PREFIXES == ("/api/lists/", "/api/todos/")
    table = (Route("/assets/<filename>", "asset", static.Asset),        # public: no prefix
             Route("/api/me", "me", Private),                            # no placeholder: the path, as a folder
             Route("/api/things/<uuid:id>/", "thing", Private),          # up to the first placeholder
             Route("/api/things/<uuid:id>/parts/", "parts", Private))    # inside /api/things/: left out
    assert private_prefixes(table) == ("/api/me/", "/api/things/")
