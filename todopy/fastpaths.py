"""Hand-written copies of library behaviour, kept only where a measurement shows they matter.

Each does what the library does for the inputs todopy gives it, in less time;
tests/test_fastpaths.py holds each to the library it replaces, used as the
oracle on generated input. Each relies on internals of one library series,
pinned in setup.py (constraints.txt holds the tested version): a new series
needs that test to pass before the pin moves.

Measured with `python -m bench.fastpaths` (one server, the real app and
PostgreSQL, wrk with 20 connections; every half second the next variant
serves, so other load on the machine falls on all alike): for each, what the
server loses when the library does the job instead, on a REST GET of one
todo (about 660 µs of server CPU per request with all of them), and on a PUT
(about 1260 µs). With none of them a GET costs 34% more CPU (223 µs), and
the server answers 28% fewer requests (PUT: 30% more CPU, 22% fewer).

1. `headers_message` replaces gevent.pywsgi's `headers_factory`
   (http.client.parse_headers into the email package's Message): the email
   feed parser costs three times the splitting of `Name: value` lines. GET:
   +63 µs a request (+10%), 6% fewer requests; PUT (two more headers): +191
   µs, 16% fewer. Relies on gevent 26's `OldMessage` and
   `WSGIHandler.MessageClass`, and the email package's compat32 header
   splitting (Python 3.11+).
2. `write_with_headers` replaces gevent.pywsgi's
   `WSGIHandler._write_with_headers` (private), except that a small body
   goes out in the same send as the headers: pywsgi sends them apart, two
   system calls and, with Nagle off, two packets for every JSON response.
   3-7% fewer requests in six runs of seven (GET and PUT; one PUT run saw no
   difference); GET CPU +32 to +48 µs (5-7%) in the three runs that set it
   alone against the library, within the noise when all six variants take
   turns. Relies on gevent 26's
   handler: `status` and `response_headers` as latin-1 bytes,
   `finalize_headers`, `response_use_chunked`, `_sendall`, `_write`.
3. `JSONResponse` and `NoContent` replace werkzeug's `Response(body, status,
   headers, content_type=...)` and `Response(status=204)` as WSGI apps:
   building a Response and its Headers costs more than the rest of the GET's
   view (25 µs against 3 in a micro-benchmark). GET: +45 µs (+7%), 7% fewer
   requests; PUT: +33 µs, 8% fewer. `status_line` is werkzeug's status line
   ("201 CREATED"), the one table every response of this server uses,
   werkzeug's own Responses included. Relies on werkzeug 3.1's Response:
   status-line format, header order, no body for HEAD.
4. `AccessLog` replaces an INFO record of the `todopy.access` logger through
   the handler and formatter `todopy.logs.configure` installs: a LogRecord,
   the walk up the loggers, the handler's lock and a strftime per line.
   GET: +34 µs (+5%), 7% fewer requests; PUT: +79 µs, 13% fewer. Relies on
   logging's default time format (`%Y-%m-%d %H:%M:%S,mmm`) and its LogRecord
   clock, and on todopy.logs' formats.

Dropped, since the library costs nothing measurable: PATH_INFO decoding
(werkzeug's `get_path_info`, 0.06 µs more a request) and the static files
(werkzeug's `send_from_directory`, off the REST path).
"""
from __future__ import annotations

import email.parser
import json
import logging
import os
import sys
import time
from typing import Any, Callable, Iterable, TextIO

from gevent.pywsgi import OldMessage
from werkzeug.http import HTTP_STATUS_CODES

from todopy.logs import ACCESS, escape_controls

# -- 1. request headers ---------------------------------------------------------


def headers_message(lines: list[str]) -> OldMessage:
    """What pywsgi's `headers_factory` returns for a header block, from its lines (latin-1 text).

    `lines` is the block as read, each line with its line break, the empty line
    that ends it last; every line but that one has the plain form `Name: value`
    (todopy.request_headers refuses any other before this runs).
    """
    message = OldMessage()
    for line in lines[:-1]:
        name, _, value = line.partition(":")
        message.set_raw(name, value.lstrip(" \t").rstrip("\r\n"))
    message.set_payload("")
    # The email parser reads on into a multipart or message/* body; leave those to it.
    if message.get_content_maintype() not in ("multipart", "message"):
        return message
    return email.parser.Parser(_class=OldMessage).parsestr("".join(lines))


# -- 2. the response's first send -------------------------------------------------

ONE_SEND_BODY = 16 * 1024   # bodies up to this size are copied behind the headers, sent together


def write_with_headers(handler: Any, data: bytes) -> None:
    """pywsgi's `WSGIHandler._write_with_headers(data)` for `handler`, in one send when the body is small.

    `handler` is a pywsgi WSGIHandler (typed Any: its stubs know neither `_sendall` nor
    that start_response has turned `status` and `response_headers` into bytes).
    """
    handler.headers_sent = True
    handler.finalize_headers()
    # Status and headers are latin-1 bytes already (pywsgi's start_response encoded them).
    head = bytearray(b"HTTP/1.1 ")
    head += handler.status
    head += b"\r\n"
    for header, value in handler.response_headers:
        head += header
        head += b": "
        head += value
        head += b"\r\n"
    head += b"\r\n"
    if data and not handler.response_use_chunked and len(data) <= ONE_SEND_BODY:
        head += data
        handler._sendall(head)
    else:
        handler._sendall(head)
        handler._write(data)


# -- 3. JSON responses --------------------------------------------------------------

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
# Status lines as werkzeug's Response writes them, for every code it knows.
STATUS_LINES = {code: f"{code} {reason.upper()}" for code, reason in HTTP_STATUS_CODES.items()}


def status_line(code: int) -> str:
    """`"404 NOT FOUND"`: the status as werkzeug's Response (and WSGI's start_response) writes it."""
    line = STATUS_LINES.get(code)
    return line if line is not None else f"{code} UNKNOWN"


class JSONResponse:
    """A JSON body with its status and headers, answered as a WSGI app: werkzeug's
    `Response(body, status, headers, content_type=JSON_CONTENT_TYPE)`, without building one.

    For statuses that carry a body (not 1xx, 204 or 304), and headers werkzeug would
    send unchanged: at most one Location, already a URI (as our paths are). No body for HEAD.
    """

    __slots__ = ("body", "status", "headers")

    def __init__(self, body: bytes, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.body = body
        self.status = status
        self.headers = list(headers)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        start_response(status_line(self.status),
                       [*self.headers, ("Content-Type", JSON_CONTENT_TYPE), ("Content-Length", str(len(self.body)))])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [self.body]


class NoContent:
    """werkzeug's `Response(status=204)`: its default content type, no length, no body."""

    HEADERS = (("Content-Type", "text/plain; charset=utf-8"),)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        start_response(STATUS_LINES[204], list(self.HEADERS))
        return []


# -- 4. the access log ----------------------------------------------------------------


class AccessLog:
    """One line per request, exactly as an INFO record of `todopy.access` comes out of
    the handler `todopy.logs.configure` installs (text or JSON), written straight to
    the log stream (stderr). The logger's level still decides whether lines are written.
    """

    def __init__(self, log_format: str = "text", stream: TextIO | None = None) -> None:
        self.json = log_format == "json"
        self.stream = stream if stream is not None else sys.stderr
        self._second = -1
        self._stamp = ""

    def write(self, method: str, path: str, status: str, seconds: float, user_id: str | None,
              error: str | None) -> None:
        if not ACCESS.isEnabledFor(logging.INFO):
            return
        now = time.time()
        second = int(now)
        if second != self._second:          # the time's text changes once a second
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S" if self.json else "%Y-%m-%d %H:%M:%S",
                                        time.localtime(now))
        millis = int((now - second) * 1000)
        message = "%s %s %s %.1fms" % (method, path, status, seconds * 1000)
        if self.json:
            line = json.dumps({"time": f"{self._stamp}.{millis:03d}", "level": "INFO", "logger": ACCESS.name,
                               "message": message, "method": method, "path": path, "status": int(status),
                               "ms": round(seconds * 1000, 2), "user_id": user_id, "error": error}, default=str)
        else:   # JSON escapes control characters itself; text must not let a path start a line
            line = f"{self._stamp},{millis:03d} INFO [{os.getpid()}] {ACCESS.name}: {escape_controls(message)}"
        self.stream.write(line + "\n")
        self.stream.flush()
