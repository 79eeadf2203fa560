"""Raise HTTP errors anywhere; they become docs/api.md's JSON here, and only here."""
from __future__ import annotations

import logging
from typing import Callable, Iterable

from todopy.errors import HTTPError
from todopy.environ import ERROR
from todopy.fastpaths import JSONResponse

log = logging.getLogger("todopy.errors")


def error_response(error: HTTPError, environ: dict, start_response: Callable) -> Iterable[bytes]:
    """The error's JSON body with its status and headers (none for HEAD, like every response)."""
    return JSONResponse(error.body(), error.status, error.headers)(environ, start_response)


class ErrorMiddleware:
    """Outermost: turns HTTPError into JSON and any other exception into a logged JSON 500."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            return self.app(environ, start_response)
        except HTTPError as error:
            environ[ERROR] = error.code
            return error_response(error, environ, start_response)
        except Exception:
            log.exception("unexpected error in %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            environ[ERROR] = "internal_error"
            return error_response(HTTPError("internal server error; the server log has the details"),
                                  environ, start_response)
