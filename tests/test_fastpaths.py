"""Each fast path in todopy.fastpaths does what the library it replaces does: the library is the oracle.

Generated inputs (hypothesis) plus the cases that once mattered; no server: the
pywsgi handlers run on a socket pair in this process.
"""
from __future__ import annotations

import io
import json
import logging
import re
import socket
from typing import Any, Callable, Iterable

import gevent
import gevent.socket
import pytest
from gevent.pywsgi import WSGIHandler, headers_factory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Response

from todopy import fastpaths, logs, request_headers

# -- 1. request headers: pywsgi's headers_factory -------------------------------------


def state(message: Any) -> dict:
    """A message's attributes, defects by type, nested messages (message/* bodies) alike."""
    result = {key: value for key, value in vars(message).items() if key != "defects"}
    if isinstance(result.get("_payload"), list):
        result["_payload"] = [state(part) for part in result["_payload"]]
    result["defects"] = [type(defect) for defect in message.defects]
    return result


def same_as_pywsgi(block: bytes) -> None:
    """The server's reading of an accepted `block` gives what pywsgi's parser gives for it."""
    lines = request_headers.read_block(io.BytesIO(block))
    ours = fastpaths.headers_message(lines)
    theirs = headers_factory(io.BytesIO(block))
    assert state(ours) == state(theirs), block[:200]
    assert list(ours.headers) == list(theirs.headers)
    assert (ours.get("content-length"), ours.typeheader, ours.status) == (
        theirs.get("content-length"), theirs.typeheader, theirs.status)


ACCEPTED = [
    b"\r\n",
    b"\n",
    b"Host: example.com\r\n\r\n",
    b"Host: example.com\r\nAuthorization: Bearer abc.def-ghi\r\nContent-Length: 12\r\n\r\n",
    b"host:127.0.0.1\nconnection:keep-alive\n\n",
    b"X-Trailing:  value with spaces  \t \r\n\r\n",
    b"Empty:\r\nAlso-Empty: \r\n\r\n",
    b"Dup: 1\r\nDUP: 2\r\ndup: 3\r\n\r\n",
    b"From: someone@example.com\r\n\r\n",
    b"Latin: caf\xe9\r\nX: \x7f\r\n\r\n",
    b"Content-Type: multipart/mixed; boundary=x\r\n\r\n",
    b"Content-Type: message/rfc822\r\n\r\n",
    b"Content-Type: message/rfc822\r\nFrom: a\r\n\r\n",
    b"".join(b"H%d: v\r\n" % i for i in range(99)) + b"\r\n",
]


@pytest.mark.parametrize("block", ACCEPTED)
def test_known_header_blocks_parse_as_pywsgi_parses_them(block):
    same_as_pywsgi(block)


# Any line the strict reader accepts: a name of printable ASCII but ':', a value of
# anything but CR, LF and NUL, built of the pieces that matter to the email parser.
NAME = st.one_of(st.sampled_from(["Host", "From", "Content-Type", "content-length", "Dup", "DUP", "X"]),
                 st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e, exclude_characters=":"),
                         min_size=1, max_size=8))
VALUE_PIECE = st.sampled_from([" ", "\t", ":", "a", "Z", "0", ";", "=", "\xe9", "\x7f", "\x85", "From ",
                               "multipart/x", "message/rfc822", "; boundary=b", "text/plain", "=?utf-8?q?x?="])
LINE = st.tuples(NAME, st.lists(VALUE_PIECE, max_size=8).map("".join), st.sampled_from(["\r\n", "\n"]))


@settings(max_examples=400, deadline=None)
@given(st.lists(LINE, max_size=10), st.sampled_from(["\r\n", "\n"]))
def test_any_accepted_header_block_parses_as_pywsgi_parses_it(lines, end):
    same_as_pywsgi(("".join(f"{name}:{value}{eol}" for name, value, eol in lines) + end).encode("iso-8859-1"))


# -- 2. the first send: pywsgi's WSGIHandler._write_with_headers --------------------------


class Server:
    """What a pywsgi handler asks of its server, for one connection."""

    def __init__(self, app: Callable) -> None:
        self.application = app

    def get_environ(self) -> dict:
        return {"SERVER_NAME": "test", "SERVER_PORT": "1", "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_SOFTWARE": "t"}


class LibraryHandler(WSGIHandler):
    def log_request(self) -> None:
        pass


class FastHandler(LibraryHandler):
    def _write_with_headers(self, data: bytes) -> None:
        fastpaths.write_with_headers(self, data)


DATE = re.compile(rb"\r\nDate: [^\r]*")


def exchange(handler_class: type, app: Callable, request: bytes) -> tuple[bytes, int]:
    """Everything the handler sends for `request` (its Date header left out), and in how many sends."""
    ours, peer = gevent.socket.socketpair()
    handler = handler_class(ours, ("127.0.0.1", 1), Server(app))
    sends = []
    sendall = handler._sendall

    def counted(data: bytes) -> None:
        sends.append(len(data))
        sendall(data)

    handler._sendall = counted
    try:
        peer.sendall(request)
        peer.shutdown(socket.SHUT_WR)
        worker = gevent.spawn(handler.handle)
        worker.join(timeout=10)
        ours.close()
        received = b""
        while chunk := peer.recv(65536):
            received += chunk
    finally:
        ours.close()
        peer.close()
    return DATE.sub(b"", received), len(sends)


BODY_SIZES = st.one_of(st.integers(0, 64), st.sampled_from([fastpaths.ONE_SEND_BODY - 1, fastpaths.ONE_SEND_BODY,
                                                            fastpaths.ONE_SEND_BODY + 1, 70_000]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(status=st.sampled_from([200, 201, 204, 304, 404, 500]), sizes=st.lists(BODY_SIZES, max_size=3),
       length=st.booleans(), iterator=st.booleans(), method=st.sampled_from(["GET", "HEAD", "POST"]),
       version=st.sampled_from(["HTTP/1.1", "HTTP/1.0"]), close=st.booleans())
def test_responses_go_out_as_pywsgi_sends_them(status, sizes, length, iterator, method, version, close):
    chunks = [] if status in (204, 304) else [bytes([65 + i]) * size for i, size in enumerate(sizes)]

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        headers = [("Content-Type", "application/json"), ("X-Status", str(status))]
        if length and status not in (204, 304):
            headers.append(("Content-Length", str(sum(map(len, chunks)))))
        start_response(fastpaths.status_line(status), headers)
        return iter(chunks) if iterator else chunks

    request = f"{method} /x HTTP/{version[5:]}\r\nHost: t\r\n{'Connection: close' if close else 'X: y'}\r\n\r\n"
    fast, fast_sends = exchange(FastHandler, app, request.encode())
    library, library_sends = exchange(LibraryHandler, app, request.encode())
    assert fast == library
    assert fast.startswith(b"HTTP/1.1 %d " % status)
    first = next((chunk for chunk in chunks if chunk), b"")
    if first and len(first) <= fastpaths.ONE_SEND_BODY and b"Transfer-Encoding: chunked" not in fast:
        assert fast_sends == library_sends - 1     # the head and the first chunk in one send: the point


# -- 3. JSON responses: werkzeug's Response ------------------------------------------------


def served(app: Callable, method: str) -> tuple[str, list[tuple[str, str]], bytes]:
    environ = {"REQUEST_METHOD": method, "SERVER_NAME": "test", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
               "SERVER_PROTOCOL": "HTTP/1.1", "PATH_INFO": "/api/todos/", "SCRIPT_NAME": "", "QUERY_STRING": ""}
    started = []
    body = app(environ, lambda status, headers, exc_info=None: started.append((status, headers)))
    try:
        content = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    (status, headers), = started
    return status, list(headers), content


def test_every_status_line_is_werkzeugs():
    for code in range(100, 600):
        assert fastpaths.status_line(code) == Response(status=code).status, code


WITH_BODY = sorted(code for code in (*HTTP_STATUS_CODES, 299, 599) if code >= 200 and code not in (204, 304))
METHODS = st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
URI_PATH = st.text("abcdefXYZ0123456789-._~/", max_size=40).map(lambda tail: "/api/" + tail)
HEADER = st.one_of(
    st.tuples(st.just("Location"), URI_PATH),
    st.tuples(st.sampled_from(["ETag", "Cache-Control", "Retry-After", "Allow", "Connection", "Set-Cookie", "X-A"]),
              st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=30)))
JSON_VALUE = st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                          max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(data=JSON_VALUE, status=st.sampled_from(WITH_BODY), method=METHODS,
       headers=st.lists(HEADER, max_size=4).filter(lambda headers: [n for n, _ in headers].count("Location") <= 1))
def test_a_json_response_is_what_werkzeug_sends(data, status, headers, method):
    body = json.dumps(data).encode()
    ours = served(fastpaths.JSONResponse(body, status, headers), method)
    werkzeugs = served(Response(body, status, headers, content_type=fastpaths.JSON_CONTENT_TYPE), method)
    assert ours == werkzeugs


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE", "PUT"])
def test_no_content_is_what_werkzeug_sends(method):
    assert served(fastpaths.NoContent(), method) == served(Response(status=204), method)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 408, 409, 412, 413, 414, 415, 422, 429, 431, 500, 503])
def test_errors_use_the_same_status_lines(status):
    from todopy.errors import HTTPError
    from todopy.middleware.errors import ErrorMiddleware

    def failing(environ: dict, start_response: Callable) -> Iterable[bytes]:
        raise HTTPError("no", status=status)

    werkzeugs = Response(status=status).status
    assert served(ErrorMiddleware(failing), "GET")[0] == werkzeugs          # errors the application raises
    head = HTTPError("no", status=status).http_message().split(b"\r\n", 1)[0]
    assert head == b"HTTP/1.1 " + werkzeugs.encode()                      # requests refused before it runs


# -- 4. the access log: logging's records through the configured formatter ---------------


@pytest.fixture
def access_at_info():
    """As `todopy serve` configures it (the root logger at INFO)."""
    logs.ACCESS.setLevel(logging.INFO)
    yield
    logs.ACCESS.setLevel(logging.NOTSET)


def through_logging(log_format: str, call: tuple, created: float, monkeypatch: pytest.MonkeyPatch) -> str:
    """The line logging writes for the same call: a `todopy.access` INFO record made at `created`,
    formatted by the formatter `todopy.logs.configure` installs for `log_format`."""
    method, path, status, seconds, user_id, error = call
    extra = None
    formatter: logging.Formatter = logs.TextFormatter(logs.TEXT_FORMAT)
    if log_format == "json":
        formatter = logs.JSONFormatter()
        extra = {"method": method, "path": path, "status": int(status), "ms": round(seconds * 1000, 2),
                 "user_id": user_id, "error": error}
    with monkeypatch.context() as patch:
        patch.setattr(logging.time, "time", lambda: created)
        patch.setattr(logging.time, "time_ns", lambda: int(created * 1e9))
        record = logs.ACCESS.makeRecord(logs.ACCESS.name, logging.INFO, __file__, 0, "%s %s %s %.1fms",
                                        (method, path, status, seconds * 1000), None, extra=extra)
    return formatter.format(record)


def written(log_format: str, calls: list[tuple], moments: list[float], monkeypatch: pytest.MonkeyPatch) -> str:
    stream = io.StringIO()
    access = fastpaths.AccessLog(log_format, stream)
    for call, moment in zip(calls, moments):
        with monkeypatch.context() as patch:
            patch.setattr(fastpaths.time, "time", lambda: moment)
            access.write(*call)
    return stream.getvalue()


CALLS = [("GET", "/api/todos/5f0c2a8e-3b1d-4c6e-9a7f-2d8b1e4c6a90/", "200", 0.0012345, "u-1", None),
         ("POST", "/api/todos/", "422", 0.25, None, "invalid"),
         ("PATCH", "/caf\u00e9 \"quoted\"", "500", 12.0, "u-2", "internal_error"),
         ("GET", "/a\nforged line\r\u2028\x85\x1b[31m", "404", 0.0, None, "not_found")]


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("call", CALLS)
def test_access_lines_are_what_logging_writes(monkeypatch, access_at_info, log_format, call):
    created = 1_795_000_000.0125      # a moment with milliseconds to show
    assert written(log_format, [call], [created], monkeypatch) == through_logging(
        log_format, call, created, monkeypatch) + "\n"


CALL = st.tuples(st.sampled_from(["GET", "HEAD", "POST", "BREW"]), st.text(max_size=30),
                 st.integers(100, 599).map(str), st.floats(0, 1000, allow_nan=False),
                 st.none() | st.text(max_size=10), st.none() | st.text(max_size=10))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(log_format=st.sampled_from(["text", "json"]), calls=st.lists(CALL, min_size=1, max_size=4),
       start=st.floats(1e9, 2e9), steps=st.lists(st.floats(0, 3600), min_size=4, max_size=4))
def test_any_access_lines_are_what_logging_writes(monkeypatch, access_at_info, log_format, calls, start, steps):
    moments = [start + sum(steps[:i + 1]) for i in range(len(calls))]    # the clock moves on, across seconds too
    expected = "".join(through_logging(log_format, call, moment, monkeypatch) + "\n"
                       for call, moment in zip(calls, moments))
    assert written(log_format, calls, moments, monkeypatch) == expected


def test_the_access_loggers_level_still_decides():
    stream = io.StringIO()
    logs.ACCESS.setLevel(logging.WARNING)
    try:
        fastpaths.AccessLog("text", stream).write(*CALLS[0])
    finally:
        logs.ACCESS.setLevel(logging.NOTSET)
    assert stream.getvalue() == ""
