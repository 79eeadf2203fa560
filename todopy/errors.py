"""HTTP errors raised anywhere and rendered once, as the JSON error body of docs/api.md."""
from __future__ import annotations

import json
from typing import Iterable

from todopy.fastpaths import status_line


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
        return json.dumps({"error": {"code": self.code, "message": self.message}}).encode()

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
    status, code = 429, "too_many_requests"

    def __init__(self, message: str, retry_after: int, *, code: str | None = None) -> None:
        super().__init__(message, code=code, headers=[("Retry-After", str(retry_after))])


class HeaderFieldsTooLarge(HTTPError):
    status, code = 431, "headers_too_large"


class DatabaseUnavailable(HTTPError):
    status, code = 503, "database_unavailable"


class ServerBusy(HTTPError):
    """Refused at once rather than queued: the work queue behind it is full."""

    status, code = 503, "server_busy"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message, headers=[("Retry-After", str(retry_after))])
