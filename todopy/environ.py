"""Every key todopy puts in the WSGI environ, in one place: who sets each, who reads it.

Middleware hands data on under these namespaced keys (never as bare string
literals elsewhere); `require` fails loudly when a reader runs without the
middleware that should have set its key.
"""
from __future__ import annotations

from typing import Any

SESSION = "todopy.session"            # sessions middleware: the request's Session (token and how it came)
USER = "todopy.user"                  # sessions middleware: the signed-in User, or None
SET_COOKIE = "todopy.session.set"     # views: a token to set as the session cookie, "" to clear it
ENDPOINT = "todopy.endpoint"          # router: the matched route's endpoint name (metrics, logs)
ERROR = "todopy.error"                # error middleware: the error code answered, for the access log
ACCEPT_WEBSOCKET = "todopy.websocket.accept"   # server: call it to perform the upgrade (upgrade requests only)
STREAM = "todopy.stream"              # views: the request became a stream (the access log tells them apart)
STREAM_PLACE = "todopy.stream.place"  # views (dispatch): an upgrade's admission place, kept by the stream it opens
DEADLINE = "todopy.deadline"          # server: when the request's head and body must have arrived
BODY = "todopy.body"                  # http.read_body: the raw request body, once read


def require(environ: dict, key: str) -> Any:
    """The value under `key`, failing loudly if the middleware that sets it did not run."""
    try:
        return environ[key]
    except KeyError:
        raise RuntimeError(f"{key} is not in the environ: the middleware that sets it must run first") from None
