"""Raise errors anywhere; they become docs/api.md's JSON here, and only here, for the application's responses."""
from __future__ import annotations

import logging
from typing import Callable, Iterable

from todopy.errors import HTTPError, as_http_error
from todopy.environ import ERROR
from todopy.fastpaths import JSONResponse

log = logging.getLogger("todopy.errors")


def error_response(error: HTTPError, environ: dict, start_response: Callable) -> Iterable[bytes]:
    """The error's JSON body with its status and headers (none for HEAD, like every response)."""
    return JSONResponse(error.body(), error.status, error.headers)(environ, start_response)


class ErrorMiddleware:
    """Outermost: answers an HTTPError, or an exception of todopy.errors.HTTP_STATUSES (the database
    away), as JSON; any other exception is a bug, logged with its traceback and answered with a JSON 500."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            return self.app(environ, start_response)
        except Exception as raised:
            error = as_http_error(raised)
            if error is None:
                log.exception("unexpected error in %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
                error = HTTPError("internal server error; the server log has the details")
            environ[ERROR] = error.code
            return error_response(error, environ, start_response)
