"""Hostile HTTP from one client, against the real server: every answer bounded, JSON, and never a 500.

Each test speaks raw HTTP over a loopback socket where a library would tidy the
request up (duplicate headers, folding, lying lengths, trickled bytes).
"""
from __future__ import annotations

import json
import os
import random
import re
import socket
import stat
import string
import time

import psycopg2
import pytest
import requests

from tests.contract import assert_error, sign_up_with_cookie
from tests.support import Api, ServerProcess, register
from todopy.embedded import EmbeddedPostgres

JSON_TYPE = "application/json; charset=utf-8"


class Raw:
    """One raw TCP connection to the server."""

    def __init__(self, server: ServerProcess, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_until_closed(self, within: float) -> tuple[bytes, bool]:
        """What the server sends until it closes the connection (True), or until `within` seconds pass (False)."""
        deadline = time.monotonic() + within
        received = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return received, False
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return received, False
            except ConnectionResetError:
                return received, True
            if not data:
                return received, True
            received += data

    def close(self) -> None:
        self.sock.close()


def exchange(server: ServerProcess, data: bytes, within: float = 10.0) -> tuple[bytes, bool]:
    raw = Raw(server)
    try:
        raw.send(data)
        return raw.read_until_closed(within)
    finally:
        raw.close()


def responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The HTTP/1.1 responses in `data` (bodies by Content-Length), in order."""
    found = []
    while data.startswith(b"HTTP/1.1 "):
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        found.append((int(lines[0].split()[1]), headers, rest[:length]))
        data = rest[length:]
    return found


def assert_json_error(response: tuple[int, dict[str, str], bytes], status: int, code: str | None = None) -> dict:
    got, headers, body = response
    assert got == status, (got, body)
    assert headers.get("content-type") == JSON_TYPE, headers
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message"} and error["message"], error
    if code is not None:
        assert error["code"] == code, error
    return error


def request(path: str = "/healthz", method: str = "GET", headers: bytes = b"", body: bytes = b"") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode() + headers + b"\r\n" + body


# -- 1: the header block is capped, and head and body have one deadline -----------

def test_a_header_block_over_32_kib_is_431_json_and_one_under_it_is_served(server):
    one_long_line = b"X-Big: " + b"x" * 40_000 + b"\r\n"
    many_lines = b"".join(b"X-H%d: %s\r\n" % (i, b"y" * 400) for i in range(90))     # 90 lines, ~37 KB
    for headers in (one_long_line, many_lines):
        data, closed = exchange(server, request(headers=headers))
        assert closed
        assert_json_error(responses(data)[0], 431, "headers_too_large")
    data, _ = exchange(server, request(headers=b"X-Big: " + b"x" * 30_000 + b"\r\nConnection: close\r\n"))
    assert responses(data)[0][0] == 200


def trickle(raw: Raw, byte: bytes, started: float, what: str) -> tuple[bytes, bool, float]:
    """Send `byte` every 0.4 s (each receive well within the read timeout) until the server
    answers or closes: (all it answered, whether it closed, seconds since `started`)."""
    while time.monotonic() - started < 8:
        try:
            raw.send(byte)
        except OSError:                      # closed already: what did it say first?
            answer, _ = raw.read_until_closed(2)
            return answer, True, time.monotonic() - started
        raw.sock.settimeout(0.4)
        try:
            answer = raw.sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            answer = b""
        rest, closed = raw.read_until_closed(2) if answer else (b"", True)
        return answer + rest, closed, time.monotonic() - started
    raise AssertionError(f"the server still read the trickled {what} after 8 s")


def test_headers_trickled_byte_by_byte_get_408_at_the_read_timeout_in_all(start_server):
    server = start_server(env={"TODOPY_READ_TIMEOUT": "2"})
    raw = Raw(server)
    started = time.monotonic()
    try:
        raw.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        answer, _, elapsed = trickle(raw, b"a", started, "headers")
    finally:
        raw.close()
    assert elapsed < 7, elapsed   # TODOPY_READ_TIMEOUT=2 in all, with room for a busy machine
    assert_json_error(responses(answer)[0], 408, "request_timeout")


def test_a_body_trickled_byte_by_byte_gets_408_at_the_deadline(start_server):
    server = start_server(env={"TODOPY_READ_TIMEOUT": "2"})
    raw = Raw(server)
    started = time.monotonic()
    try:
        raw.send(request("/api/session/", "POST", b"Content-Type: application/json\r\nContent-Length: 1000\r\n"))
        answer, closed, elapsed = trickle(raw, b" ", started, "body")
    finally:
        raw.close()
    assert elapsed < 7, elapsed   # TODOPY_READ_TIMEOUT=2 in all, with room for a busy machine
    assert_json_error(responses(answer)[0], 408, "request_timeout")
    assert closed


# -- 2: cookies that are not UTF-8 ---------------------------------------------------

def test_a_cookie_that_is_not_utf8_is_ignored_on_every_route(server):
    browser = sign_up_with_cookie(server.base_url)
    token = browser.http.cookies["todopy_session"].encode()
    for junk in (b"theme=caf\xe9", b"x=\xff\xfe", b"\xe9=1"):
        for cookie in (junk + b"; todopy_session=" + token, b"todopy_session=" + token + b"; " + junk):
            for path in ("/api/session/", "/api/todos/", "/", "/healthz", "/api/nowhere/"):
                data, _ = exchange(server, request(path, headers=b"Cookie: " + cookie + b"\r\nConnection: close\r\n"))
                status = responses(data)[0][0]
                assert status == (404 if path == "/api/nowhere/" else 200), (path, cookie, data[:300])


def test_a_session_cookie_that_is_not_utf8_is_401_where_auth_is_needed(server):
    for value in (b"\xe9", b"\xc3", b"abc\xff", "é".encode()):
        for path in ("/api/session/", "/api/todos/"):
            data, _ = exchange(server, request(path, headers=b"Cookie: todopy_session=" + value + b"\r\n"
                                                             b"Connection: close\r\n"))
            assert_json_error(responses(data)[0], 401)
        data, _ = exchange(server, request("/healthz", headers=b"Cookie: todopy_session=" + value + b"\r\n"
                                                                b"Connection: close\r\n"))
        assert responses(data)[0][0] == 200


# -- 3: metric labels come from closed sets ------------------------------------------

def test_made_up_methods_do_not_become_metric_labels(server):
    session = requests.Session()
    methods = ["".join(random.choices(string.ascii_uppercase, k=12)) for _ in range(200)]
    for method in methods:
        response = session.request(method, server.base_url + "/api/todos/", timeout=10)
        assert 400 <= response.status_code < 500
    for path in ("/x" + "".join(random.choices(string.ascii_lowercase, k=20)) for _ in range(50)):
        assert session.get(server.base_url + path, timeout=10).status_code == 404
    text = requests.get(server.base_url + "/metrics", timeout=10).text
    assert not any(method in text for method in methods)
    assert 'method="OTHER"' in text
    labels = set(re.findall(r'todopy_http_requests_total\{([^}]*)\}', text))
    routes = {re.search(r'route="([^"]*)"', label).group(1) for label in labels}
    assert "unmatched" in routes and all(re.fullmatch(r"[a-z_]+", route) for route in routes), routes


# -- 8: request smuggling shapes (RFC 9112 section 6.3) -------------------------------

def test_conflicting_or_odd_content_lengths_are_400(server):
    body = b'{"username": "nobody", "password": "wrong password"}'
    for lengths in ([b"5", b"6"], [b"5, 6"], [b"+%d" % len(body)], [b"%d_0" % len(body)], [b"-1"], [b"0x10"],
                    [b"1" * 25]):
        headers = b"Content-Type: application/json\r\n" + b"".join(b"Content-Length: " + v + b"\r\n" for v in lengths)
        data, closed = exchange(server, request("/api/session/", "POST", headers, body))
        assert closed
        assert_json_error(responses(data)[0], 400, "bad_request")
    # Repeated equal values say one thing: accepted.
    headers = b"Content-Type: application/json\r\nConnection: close\r\n" + \
              b"Content-Length: %d\r\nContent-Length: %d\r\n" % (len(body), len(body))
    data, _ = exchange(server, request("/api/session/", "POST", headers, body))
    assert_json_error(responses(data)[0], 401)


def test_a_request_framed_both_ways_is_read_as_chunked_then_the_connection_closes(server):
    smuggled = request("/api/nowhere/")
    body = b'{"username": "nobody", "password": "wrong password"}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    headers = b"Content-Type: application/json\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(chunked)
    data, closed = exchange(server, request("/api/session/", "POST", headers, chunked) + smuggled)
    assert closed
    answers = responses(data)
    assert len(answers) == 1, answers               # the pipelined request was not served
    assert_json_error(answers[0], 401)
    assert answers[0][1].get("connection", "").lower() == "close"


def test_transfer_codings_other_than_chunked_are_400(server):
    for coding in (b"gzip", b"chunked, chunked", b"gzip, chunked", b"identity", b"chunked\r\nTransfer-Encoding: x"):
        headers = b"Content-Type: application/json\r\nTransfer-Encoding: " + coding + b"\r\nContent-Length: 2\r\n"
        data, closed = exchange(server, request("/api/session/", "POST", headers, b"{}"))
        assert closed
        assert_json_error(responses(data)[0], 400, "bad_request")


def test_folded_and_malformed_header_lines_are_400(server):
    for headers in (b"X-A: one\r\n two\r\n", b"X-A: one\r\n\ttwo\r\n", b"Content-Length : 2\r\n",
                    b"No colon\r\n", b": no name\r\n", b"X-A: a\x00b\r\n", b"X-A: a\rX-B: b\r\n"):
        data, closed = exchange(server, request(headers=headers))
        assert closed, headers
        assert_json_error(responses(data)[0], 400, "bad_request")


# -- 10, 12, 15 ------------------------------------------------------------------------

def test_asset_names_the_file_system_refuses_are_404(server):
    for name in ("a" * 256, "a" * 300 + ".js", "a" * 5000, "x%00.js"):
        response = requests.get(f"{server.base_url}/assets/{name}", timeout=10)
        assert_error(response, 404)


def test_the_308_location_is_relative_and_ignores_the_host_header(alice: Api):
    for host in ("evil.example", "127.0.0.1:1", "[::1]:80"):
        response = alice.get("/api/todos?completed=true&x=%C3%A9", headers={"Host": host})
        assert response.status_code == 308
        assert response.headers["Location"] == "/api/todos/?completed=true&x=%C3%A9"
        assert response.json() == {"redirect": "/api/todos/?completed=true&x=%C3%A9"}


def test_a_request_line_over_8_kib_is_414_json(server):
    data, closed = exchange(server, request("/" + "a" * 9000))
    assert closed
    assert_json_error(responses(data)[0], 414, "uri_too_long")


# -- 11: log forging ---------------------------------------------------------------------

def test_control_characters_in_requests_cannot_forge_text_log_lines(server):
    forged = "FORGED INFO [1] todopy.access: GET /admin 200"
    for path in ("/x%0a" + forged.replace(" ", "%20"), "/x%0d%0a" + forged.replace(" ", "%20"),
                 "/x%e2%80%a8" + forged.replace(" ", "%20")):
        assert requests.get(server.base_url + path, timeout=10).status_code == 404
    time.sleep(0.5)
    lines = server.log_path.read_text(errors="replace").splitlines()
    assert not any(line.startswith("FORGED") for line in lines)
    assert any("\\x0aFORGED INFO" in line for line in lines)


# -- 18: PostgreSQL's own words stay in the server ---------------------------------------

def test_503_messages_do_not_carry_postgresql_error_text(start_server, dsn):
    server = start_server()
    api = register(server.base_url)
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name LIKE 'todopy%%' AND pid <> pg_backend_pid()")
    finally:
        conn.close()
    seen = []
    for _ in range(20):
        response = api.get("/api/todos/")
        if response.status_code == 503:
            seen.append(assert_error(response, 503)["message"])
    assert seen, "no 503 after the database dropped every connection"
    for message in seen:
        assert "terminat" not in message and "administrator" not in message and "FATAL" not in message, message


# -- 19: a huge announced body is not read ----------------------------------------------------

def test_after_a_413_for_a_huge_content_length_the_connection_closes_at_once(server):
    raw = Raw(server)
    started = time.monotonic()
    try:
        raw.send(request("/api/session/", "POST",
                         b"Content-Type: application/json\r\nContent-Length: 100000000000\r\n", b'{"user'))
        data, closed = raw.read_until_closed(within=5)
    finally:
        raw.close()
    assert closed, "the server kept the connection open to read the announced body"
    assert time.monotonic() - started < 5
    answer = responses(data)[0]
    assert_json_error(answer, 413, "payload_too_large")
    assert answer[1].get("connection") == "close"


def test_a_small_unread_body_keeps_the_connection_alive(server):
    raw = Raw(server)
    try:
        raw.send(request("/healthz", "GET", b"Content-Length: 5\r\n", b"hello") + request("/healthz", "GET",
                                                                                         b"Connection: close\r\n"))
        data, closed = raw.read_until_closed(within=5)
    finally:
        raw.close()
    assert closed and [status for status, _, _ in responses(data)] == [200, 200]


# -- 13: the embedded PostgreSQL, started as root, changes little of what is not the project's ----

def test_as_root_only_search_permission_is_added_above_the_project(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root runs the cluster as another user")
    home = tmp_path / "home"             # like /root: someone else's, closed to others
    home.mkdir(mode=0o700)
    home.chmod(0o700)
    cluster = EmbeddedPostgres(home / "checkout" / "var" / "pg")
    cluster.start()
    try:
        mode = stat.S_IMODE(home.stat().st_mode)
        assert mode == 0o701, oct(mode)    # search only: others still cannot list it
        assert stat.S_IMODE((home / "checkout").stat().st_mode) & 0o005 == 0o005
    finally:
        cluster.stop("immediate")
