"""Headers every response carries: no sniffing, no referrer leaks, no caching of user data."""
from __future__ import annotations

import functools
import re
from typing import Any, Callable, Iterable

PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
               "connect-src 'self'{websocket}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
               "form-action 'self'")
_HOST = re.compile(r"[A-Za-z0-9.-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")
ALWAYS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin"))
NO_STORE = ("Cache-Control", "no-store")


def page_policy(environ: dict) -> str:
    """The page may open WebSockets to its own host only (not every ws: URL)."""
    return _page_policy(environ.get("HTTP_HOST", ""), environ.get("wsgi.url_scheme") == "https")


@functools.lru_cache(maxsize=64)            # a server answers to few hosts; a bound for the rest
def _page_policy(host: str, https: bool) -> str:
    if not _HOST.fullmatch(host):
        return PAGE_POLICY.format(websocket="")
    return PAGE_POLICY.format(websocket=f" {'wss' if https else 'ws'}://{host}")


class SecurityHeadersMiddleware:
    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        api = environ.get("PATH_INFO", "").startswith("/api/")

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            names = {name.lower() for name, _ in headers}
            headers = [*headers, *ALWAYS]
            if api and "cache-control" not in names:
                headers.append(NO_STORE)
            if "content-type" in names and "content-security-policy" not in names:
                headers.append(("Content-Security-Policy", page_policy(environ)))
            return start_response(status, headers, exc_info)

        return self.app(environ, start)
