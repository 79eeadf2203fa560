"""JSON in and out: reading request bodies within limits, writing responses."""
from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any, Callable, Iterable

import gevent
from werkzeug.wrappers import Request

from todopy.errors import BadRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from todopy.environ import BODY, DEADLINE
from todopy.fastpaths import JSON_CONTENT_TYPE, JSONResponse, NoContent
from todopy.representations import dumps

MAX_BODY = 64 * 1024
# An error after which the rest of the body stays unread: the server closes the connection.
CLOSE = ("Connection", "close")
JSON_TYPE = "application/json"


# What a view answers with: a WSGI app for this one request (a JSONResponse, or werkzeug's Response).
Reply = Callable[[dict, Callable], Iterable[bytes]]

def json_response(data: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> JSONResponse:
    """werkzeug's `Response(json, status, headers)`, by todopy.fastpaths."""
    return JSONResponse(dumps(data), status, headers)


def no_content() -> NoContent:
    return NoContent()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _integer(digits: str) -> int | Decimal:
    # int() refuses over 4300 digits (CPython's guard against quadratic conversion),
    # yet such a number is valid JSON: it must reach field checks (a 422), not
    # pass for malformed JSON (a 400). Decimal parses it in linear time.
    return int(digits) if len(digits) <= 4000 else Decimal(digits)


def read_body(request: Request) -> bytes:
    """The request's raw body, read once (a later call gets the same bytes): 413 when over
    the limit, 408 when it does not arrive in time, 400 when its chunked encoding is broken.

    The size is checked before reading: from Content-Length when given, and by
    reading at most one byte past the limit when the body is chunked.
    """
    environ = request.environ
    cached = environ.get(BODY)
    if cached is not None:
        return cached
    length = request.content_length
    too_large = f"request body is over {MAX_BODY // 1024} KiB"
    if length is not None and length > MAX_BODY:
        raise PayloadTooLarge(too_large, headers=[CLOSE])
    stream = environ["wsgi.input"]
    chunked = length is None and environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
    deadline = environ.get(DEADLINE)
    timer = None
    if deadline is not None and (length or chunked):
        # The body shares the headers' deadline: trickling it a byte at a time gains nothing.
        timer = gevent.Timeout.start_new(max(0.0, deadline - time.monotonic()), TimeoutError("body deadline"))
    try:
        if length is not None:
            raw = stream.read(length) if length else b""
        elif chunked:
            raw = stream.read(MAX_BODY + 1)
            if len(raw) > MAX_BODY:
                raise PayloadTooLarge(too_large, headers=[CLOSE])
        else:
            raw = b""
    except TimeoutError as error:
        raise RequestTimeout("the request body did not arrive in time", headers=[CLOSE]) from error
    except (OSError, ValueError) as error:
        # gevent reports a malformed chunked encoding as an IOError.
        raise BadRequest("the request body's chunked encoding is malformed", code="bad_request",
                         headers=[CLOSE]) from error
    finally:
        if timer is not None:
            timer.close()
    if length is not None and len(raw) < length:
        raise RequestTimeout("the request body ended before its Content-Length", headers=[CLOSE])
    environ[BODY] = raw
    return raw


def require_json_type(request: Request, raw: bytes) -> None:
    """415 for a body that is not declared JSON (no body needs no type)."""
    if raw and request.mimetype != JSON_TYPE:
        raise UnsupportedMediaType(f"send the body as {JSON_TYPE}, not {request.mimetype or 'no type'}")


def read_json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, refusing (in docs/api.md's order of precedence) 413, 415, then 400."""
    raw = read_body(request)
    require_json_type(request, raw)
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant, parse_int=_integer)
    except (ValueError, RecursionError) as error:
        # ValueError covers bad UTF-8, bad JSON and NaN/Infinity.
        reason = "is nested too deeply" if isinstance(error, RecursionError) else "is not valid JSON"
        raise BadRequest(f"request body {reason}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object", code="invalid_json")
    return data
