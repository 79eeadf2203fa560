"""Errors raised anywhere and rendered at each transport's edge, as the JSON error body of docs/api.md.

Two kinds: `HTTPError`s (a request refused: 400, 404, 412...) carry their own
status; failures of the infrastructure beneath (the database is away) are plain
exceptions, which `HTTP_STATUSES` maps to a status in this one table.
"""
from __future__ import annotations

import json
from typing import Iterable

from todopy.fastpaths import status_line


def error_document(code: str, message: str) -> dict[str, dict[str, str]]:
    """docs/api.md's error body, `{"error": {"code", "message"}}`, before serialization."""
    return {"error": {"code": code, "message": message}}


class HTTPError(Exception):
    """An error answered as `{"error": {"code", "message"}}` with `status`."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = list(headers)

    def body(self) -> bytes:
        return json.dumps(error_document(self.code, self.message)).encode()

    def http_message(self) -> bytes:
        """The whole HTTP/1.1 response, closing the connection: for the server itself,
        when a request is too broken (or too large) to reach the application."""
        body = self.body()
        head = "".join(f"{name}: {value}\r\n" for name, value in self.headers)
        return (f"HTTP/1.1 {status_line(self.status)}\r\nConnection: close\r\n"
                f"Content-Type: application/json; charset=utf-8\r\nContent-Length: {len(body)}\r\n{head}\r\n"
                ).encode("latin-1") + body


class BadRequest(HTTPError):
    status, code = 400, "bad_request"


class Unauthorized(HTTPError):
    status, code = 401, "unauthorized"


class Forbidden(HTTPError):
    status, code = 403, "forbidden"


class NotFound(HTTPError):
    status, code = 404, "not_found"


class MethodNotAllowed(HTTPError):
    status, code = 405, "method_not_allowed"

    def __init__(self, allowed: Iterable[str]) -> None:
        allowed = sorted(set(allowed))
        super().__init__(f"method not allowed here; allowed: {', '.join(allowed)}",
                         headers=[("Allow", ", ".join(allowed))])


class RequestTimeout(HTTPError):
    status, code = 408, "request_timeout"


class Conflict(HTTPError):
    status, code = 409, "conflict"


class PreconditionFailed(HTTPError):
    status, code = 412, "precondition_failed"


class PayloadTooLarge(HTTPError):
    status, code = 413, "payload_too_large"


class URITooLong(HTTPError):
    status, code = 414, "uri_too_long"


class UnsupportedMediaType(HTTPError):
    status, code = 415, "unsupported_media_type"


class Unprocessable(HTTPError):
    status, code = 422, "invalid"


class TooManyRequests(HTTPError):
    """429 with `Retry-After` (seconds): failed sign-ins, too many streams (`too_many_streams`),
    the write budget spent (`slow_down`)."""

    status, code = 429, "too_many_requests"

    def __init__(self, message: str, retry_after: int, *, code: str | None = None) -> None:
        super().__init__(message, code=code, headers=[("Retry-After", str(retry_after))])


class HeaderFieldsTooLarge(HTTPError):
    status, code = 431, "headers_too_large"


class ServerBusy(HTTPError):
    """Refused at once rather than queued: the work queue behind it is full."""

    status, code = 503, "server_busy"

    def __init__(self, message: str, retry_after: int = 1, *, code: str | None = None) -> None:
        super().__init__(message, code=code, headers=[("Retry-After", str(retry_after))])


class DatabaseUnavailable(Exception):
    """The database is away: no connection, a lost one, no answer in time, no pooled connection free.

    Not an HTTP error: the same failure ends a stream, skips a housekeeping round or
    fails a CLI command; each transport answers it at its edge (`HTTP_STATUSES`
    here, close codes in todopy/realtime/). `code` tells the kinds apart for clients
    (`database_unavailable`, `database_timeout`)."""

    code = "database_unavailable"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


# The status HTTP answers each exception class that is not an HTTPError with; the body
# carries the exception's own `code` and `message`. The one table for HTTP: the error
# middleware, the server's own responses and /healthz read it. The WebSocket side maps
# the same classes to close codes (todopy/realtime/).
HTTP_STATUSES: dict[type[Exception], int] = {
    DatabaseUnavailable: 503,
}


def as_http_error(error: BaseException) -> HTTPError | None:
    """The HTTPError that answers `error`: itself, or as its class's row of HTTP_STATUSES says;
    None when nothing does (a bug: the caller logs it and answers a 500)."""
    if isinstance(error, HTTPError):
        return error
    for cls in type(error).__mro__:
        status = HTTP_STATUSES.get(cls)
        if status is not None:
            return HTTPError(getattr(error, "message", str(error)), status=status,
                             code=getattr(error, "code", None))
    return None
