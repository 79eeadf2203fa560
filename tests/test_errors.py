"""docs/api.md "Errors": the JSON shape on every route, each status, redirects, and which error wins."""
from __future__ import annotations

import json
import socket


from tests.contract import JSON_TYPE, assert_error, random_todo_path, send_raw
from tests.support import Api

MAX_BODY = 64 * 1024


def padded_json(document: dict, size: int) -> bytes:
    """`document` as JSON padded with trailing white space to exactly `size` bytes."""
    raw = json.dumps(document).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


def chunks(body: bytes, size: int = 8192):
    for start in range(0, len(body), size):
        yield body[start:start + size]


# -- 404 -----------------------------------------------------------------------

def test_unknown_routes_and_malformed_ids_are_json_404(alice: Api):
    for path in ("/nope", "/api/", "/api/nope/", "/api/users/me/", "/healthz/", "/api/openapi.json/", "/assets/",
                 "/api/todos/not-a-uuid/", "/api/todos/12345678-1234-1234-1234-1234567890/", "/api/todos/%00/",
                 "/api/todos/" + "9" * 5000 + "/"):
        for method in ("GET", "POST", "DELETE"):
            assert_error(alice.request(method, path), 404, code="not_found")


def test_a_well_formed_but_unknown_id_is_404(alice: Api):
    assert_error(alice.get(random_todo_path()), 404, code="not_found")
    assert_error(alice.get(random_todo_path().upper().replace("/API/TODOS/", "/api/todos/")), 404)


# -- 405 -----------------------------------------------------------------------

ALLOWED = {
    "/api/users/": {"POST"},
    "/api/todos/": {"GET", "HEAD", "POST", "PATCH", "DELETE"},
    "{todo}": {"GET", "HEAD", "PUT", "PATCH", "DELETE"},
    "/healthz": {"GET", "HEAD"},
    "/api/openapi.json": {"GET", "HEAD"},
    "/metrics": {"GET", "HEAD"},
    "/": {"GET", "HEAD"},
    "/assets/missing.js": {"GET", "HEAD"},
    "/api/session/": {"GET", "HEAD", "POST", "DELETE"},     # last: its DELETE signs out
}
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND")


def test_405_lists_the_allowed_methods_and_those_are_served(alice: Api):
    todo = alice.create_todo("x")
    for template, allowed in ALLOWED.items():
        path = template.format(todo=f"/api/todos/{todo['id']}/")
        for method in METHODS:
            response = alice.request(method, path)
            if method in allowed:
                assert response.status_code != 405, (method, path)
                continue
            assert response.status_code == 405, (method, path, response.status_code)
            if method != "HEAD":
                assert_error(response, 405, code="method_not_allowed")
            listed = {name.strip() for name in response.headers["Allow"].split(",")}
            assert listed == allowed, (path, listed)


# -- 308 -----------------------------------------------------------------------

def test_a_missing_trailing_slash_is_a_308_keeping_the_query_string(alice: Api):
    todo = alice.create_todo("redirected", completed=True)
    for path, target in (("/api/todos", "/api/todos/"),
                         ("/api/todos?completed=true&x=a%20b", "/api/todos/?completed=true&x=a%20b"),
                         (f"/api/todos/{todo['id']}", f"/api/todos/{todo['id']}/"),
                         ("/api/users", "/api/users/"), ("/api/session", "/api/session/")):
        response = alice.get(path)
        assert response.status_code == 308, (path, response.status_code)
        assert response.headers["Location"].endswith(target), (path, response.headers["Location"])
    followed = alice.http.get(alice.base_url + "/api/todos?completed=true", headers=alice.headers(), timeout=10)
    assert followed.status_code == 200 and followed.json()["todos"] == [todo]


def test_a_308_keeps_the_method_and_body(alice: Api):
    response = alice.http.post(alice.base_url + "/api/todos", json={"title": "via redirect"},
                                headers=alice.headers(), timeout=10)
    assert response.status_code == 201 and response.history[0].status_code == 308
    assert response.json()["title"] == "via redirect"


# -- 413 -----------------------------------------------------------------------

def test_a_body_of_exactly_64_kib_is_read_and_one_byte_more_is_413(alice: Api):
    at_limit = send_raw(alice, "POST", "/api/todos/", padded_json({"title": "at the limit"}, MAX_BODY))
    assert at_limit.status_code == 201, at_limit.text
    assert_error(send_raw(alice, "POST", "/api/todos/", padded_json({"title": "over"}, MAX_BODY + 1)), 413,
                 code="payload_too_large")
    assert_error(send_raw(alice, "POST", "/api/todos/", b"x" * (1024 * 1024)), 413)
    assert [todo["title"] for todo in alice.list_todos()["todos"]] == ["at the limit"]


def test_a_chunked_body_over_64_kib_is_413_and_one_at_the_limit_is_read(alice: Api):
    at_limit = padded_json({"title": "chunked"}, MAX_BODY)
    response = alice.request("POST", "/api/todos/", data=chunks(at_limit),
                             headers={"Content-Type": "application/json"})
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 201, response.text
    over = padded_json({"title": "over"}, MAX_BODY + 1)
    response = alice.request("POST", "/api/todos/", data=chunks(over), headers={"Content-Type": "application/json"})
    assert_error(response, 413)
    assert [todo["title"] for todo in alice.list_todos()["todos"]] == ["chunked"]


def test_413_applies_to_every_route_that_reads_a_body(alice: Api, anonymous: Api):
    todo = alice.create_todo("unchanged")
    big = padded_json({"title": "x"}, MAX_BODY + 1)
    for method, path in (("PUT", f"/api/todos/{todo['id']}/"), ("PATCH", f"/api/todos/{todo['id']}/"),
                         ("PATCH", "/api/todos/")):
        assert_error(send_raw(alice, method, path, big), 413)
    for path in ("/api/users/", "/api/session/"):
        assert_error(send_raw(anonymous, "POST", path, big), 413)
    assert alice.list_todos()["todos"] == [todo]


# -- 415 -----------------------------------------------------------------------

def test_a_body_that_is_not_declared_json_is_415(alice: Api):
    body = json.dumps({"title": "typed"}).encode()
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                         "application/json-patch+json", "text/json", "application/jsonx"):
        assert_error(send_raw(alice, "POST", "/api/todos/", body, content_type), 415, code="unsupported_media_type")
    assert alice.list_todos()["todos"] == []


def test_json_with_parameters_or_in_upper_case_is_accepted(alice: Api):
    for content_type in ("application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8"):
        response = send_raw(alice, "POST", "/api/todos/", json.dumps({"title": content_type}).encode(),
                            content_type)
        assert response.status_code == 201, (content_type, response.text)


def test_an_empty_body_is_not_415_but_400(alice: Api):
    assert_error(send_raw(alice, "POST", "/api/todos/", b"", "text/plain"), 400)
    assert_error(send_raw(alice, "POST", "/api/todos/", b"", None), 400)


# -- 400 -----------------------------------------------------------------------

def test_invalid_json_is_400(alice: Api):
    for body in (b"{", b'{"title": "x",}', b"{'title': 'x'}", b'{"title": "x"} extra', b"", b"   ",
                 b'{"title": "x"}\x00', b"\xef\xbb\xbf{\"title\": \"bom\"}", b'{"title" "x"}'):
        assert_error(send_raw(alice, "POST", "/api/todos/", body), 400, code="invalid_json")
    assert alice.list_todos()["todos"] == []


def test_json_that_is_not_an_object_is_400_on_every_route(alice: Api, anonymous: Api):
    todo = alice.create_todo("unchanged")
    for body in (b"[]", b'[{"title": "x"}]', b'"title"', b"1", b"null", b"true", b"1.5"):
        for method, path in (("POST", "/api/todos/"), ("PATCH", "/api/todos/"),
                             ("PUT", f"/api/todos/{todo['id']}/"), ("PATCH", f"/api/todos/{todo['id']}/")):
            assert_error(send_raw(alice, method, path, body), 400)
        for path in ("/api/users/", "/api/session/"):
            assert_error(send_raw(anonymous, "POST", path, body), 400)
    assert alice.list_todos()["todos"] == [todo]


# -- which error wins: 401, 404/405, 413, 415, 400, 422 --------------------------

OVERSIZED = b"[" * (MAX_BODY + 10)


def test_401_wins_over_everything(anonymous: Api):
    for method, path in (("POST", "/api/todos/"), ("PUT", "/api/todos/"), ("PUT", "/api/todos/not-a-uuid/"),
                         ("PATCH", random_todo_path()), ("POST", random_todo_path())):
        for body, content_type in ((OVERSIZED, "text/plain"), (b"{", "text/plain"), (b"{", "application/json"),
                                   (b'{"nope": 1}', "application/json")):
            assert_error(send_raw(anonymous, method, path, body, content_type), 401)


def test_404_and_405_win_over_body_errors(alice: Api, bob: Api):
    todo = alice.create_todo("alice's")
    bad_bodies = [(OVERSIZED, "text/plain"), (OVERSIZED, "application/json"), (b"{", "text/plain"),
                  (b"{", "application/json"), (b"[]", "application/json"), (b"{}", "application/json"),
                  (b'{"title": 1}', "application/json")]
    for body, content_type in bad_bodies:
        for path in (f"/api/todos/{todo['id']}/", random_todo_path(), "/api/todos/not-a-uuid/", "/api/nope/"):
            for method in ("PUT", "PATCH"):
                assert_error(send_raw(bob, method, path, body, content_type), 404)
        assert_error(send_raw(bob, "PUT", "/api/todos/", body, content_type), 405)
        assert_error(send_raw(bob, "POST", f"/api/todos/{todo['id']}/", body, content_type), 405)
        assert_error(send_raw(bob, "PUT", "/api/users/", body, content_type), 405)
    assert alice.get(f"/api/todos/{todo['id']}/").json() == todo


def test_413_wins_over_415_wins_over_400_wins_over_422(alice: Api):
    todo = alice.create_todo("unchanged")
    for method, path in (("POST", "/api/todos/"), ("PUT", f"/api/todos/{todo['id']}/"),
                         ("PATCH", f"/api/todos/{todo['id']}/"), ("PATCH", "/api/todos/?completed=maybe")):
        assert_error(send_raw(alice, method, path, OVERSIZED, "text/plain"), 413)
        assert_error(send_raw(alice, method, path, b"{", "text/plain"), 415)
        assert_error(send_raw(alice, method, path, b"{", "application/json"), 400)
        assert_error(send_raw(alice, method, path, b"[1]", "application/json"), 400)
        assert_error(send_raw(alice, method, path, b'{"title": 1, "completed": 1, "x": 1}', "application/json"),
                     422)
    assert alice.list_todos()["todos"] == [todo]


# -- every error is JSON -------------------------------------------------------

def test_errors_are_json_even_for_head_and_odd_methods(alice: Api, anonymous: Api):
    assert_error(anonymous.request("TRACE", "/api/users/"), 405)
    assert_error(anonymous.request("OPTIONS", "/healthz"), 405)
    assert_error(anonymous.request("BREW", "/"), 405)
    head = anonymous.request("HEAD", "/api/todos/")
    assert head.status_code == 401 and head.headers["Content-Type"] == JSON_TYPE and head.content == b""


def test_head_errors_send_no_body_so_keep_alive_connections_stay_in_step(server):
    """A body after a HEAD response would be read as the start of the next response."""
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        heads = ["/api/todos/", "/api/todos/?completed=maybe", "/nope", "/assets/missing.js", "/api/users/"]
        for path in heads:
            connection.sendall(f"HEAD {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        connection.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    responses = received.split(b"HTTP/1.1 ")[1:]
    assert [response.split(b" ", 1)[0] for response in responses] == [b"401", b"401", b"404", b"404", b"405",
                                                                       b"200"], received
    for response in responses[:-1]:
        assert response.endswith(b"\r\n\r\n"), f"a HEAD response carried a body: {response!r}"
    assert responses[-1].endswith(b'{"status":"ok"}')
