"""Headers every response carries: no sniffing, no referrer leaks, no caching of user data."""
from __future__ import annotations

from typing import Any, Callable, Iterable

PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
               "form-action 'self'")


class SecurityHeadersMiddleware:
    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        api = environ.get("PATH_INFO", "").startswith("/api/")

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            names = {name.lower() for name, _ in headers}
            extra = [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin")]
            if api and "cache-control" not in names:
                extra.append(("Cache-Control", "no-store"))
            if "content-type" in names and "content-security-policy" not in names:
                extra.append(("Content-Security-Policy", PAGE_POLICY))
            return start_response(status, headers + extra, exc_info)

        return self.app(environ, start)
