"""The resource-class contract: one instance per route, one method per verb."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request

from todopy.errors import MethodNotAllowed
from todopy.http import Reply

if TYPE_CHECKING:
    from todopy.app import Services

VERBS = ("get", "post", "put", "patch", "delete")


class Resource:
    """Serves one URL: `get/post/put/patch/delete(request, **url_values)`, and
    `websocket(request, **url_values)` for an upgrade request. HEAD is served by
    `get`; any other verb is a 405 naming the allowed ones."""

    def __init__(self, services: "Services") -> None:
        self.services = services

    def allowed_methods(self) -> list[str]:
        allowed = [verb.upper() for verb in VERBS if hasattr(self, verb)]
        if "GET" in allowed:
            allowed.append("HEAD")
        return allowed

    def dispatch(self, request: Request, values: dict[str, Any]) -> Reply | None:
        if request.environ.get("todopy.websocket.accept") and hasattr(self, "websocket"):
            return self.websocket(request, **values)
        verb = "get" if request.method == "HEAD" else request.method.lower()
        handler = getattr(self, verb, None) if verb in VERBS else None
        if handler is None:
            raise MethodNotAllowed(self.allowed_methods())
        return handler(request, **values)
