"""403 for cookie-authenticated unsafe requests (and WebSocket handshakes) from foreign origins."""
from __future__ import annotations

from typing import Callable, Iterable
from urllib.parse import urlsplit

from todopy.errors import Forbidden
from todopy.middleware.sessions import current_session, current_user

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of a URL (lower-cased), or None if it has none."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def is_websocket_handshake(environ: dict) -> bool:
    return environ.get("HTTP_UPGRADE", "").lower() == "websocket"


class CrossSiteMiddleware:
    """Browsers attach cookies to cross-site requests; only same-origin (or allowed) ones may write."""

    def __init__(self, app: Callable, allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = frozenset(_normal(origin) for origin in allowed_origins)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        guarded = environ.get("REQUEST_METHOD") in UNSAFE_METHODS or is_websocket_handshake(environ)
        if guarded and current_session(environ).via == "cookie" and current_user(environ) is not None:
            claimed = environ.get("HTTP_ORIGIN")
            if claimed is None and environ.get("HTTP_REFERER"):
                claimed = origin_of(environ["HTTP_REFERER"]) or "null"
            if claimed is not None and not self._trusted(environ, claimed):
                raise Forbidden(f"cross-site request from {claimed[:200]} refused", code="cross_site")
        return self.app(environ, start_response)

    def _trusted(self, environ: dict, origin: str) -> bool:
        origin = _normal(origin)
        own = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}".lower()
        if origin == own:
            return True
        return origin in self.allowed


def _normal(origin: str) -> str:
    """An origin as compared: the allowed ones and the claimed one alike."""
    return origin.strip().rstrip("/").lower()
