"""Raise HTTP errors anywhere; they become docs/api.md's JSON here, and only here."""
from __future__ import annotations

import logging
from typing import Callable, Iterable

from todopy.errors import HTTPError, status_line
from todopy.environ import ERROR

log = logging.getLogger("todopy.errors")


def error_response(error: HTTPError, start_response: Callable, method: str = "GET") -> list[bytes]:
    body = error.body()
    headers = [("Content-Type", "application/json; charset=utf-8"),
               ("Content-Length", str(len(body))), *error.headers]
    start_response(status_line(error.status), headers)
    # The server writes what we return even for HEAD; a body there would be read by a
    # keep-alive client as the start of its next response.
    return [] if method == "HEAD" else [body]


class ErrorMiddleware:
    """Outermost: turns HTTPError into JSON and any other exception into a logged JSON 500."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            return self.app(environ, start_response)
        except HTTPError as error:
            environ[ERROR] = error.code
            return error_response(error, start_response, environ.get("REQUEST_METHOD", "GET"))
        except Exception:
            log.exception("unexpected error in %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            environ[ERROR] = "internal_error"
            return error_response(HTTPError("internal server error; the server log has the details"),
                                  start_response, environ.get("REQUEST_METHOD", "GET"))
