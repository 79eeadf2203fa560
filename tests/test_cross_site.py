"""docs/api.md cross-site rule: cookie-authenticated unsafe requests (and handshakes) only from our own origin."""
from __future__ import annotations

import json

import pytest
import websocket

from tests.contract import assert_error, sign_up_with_cookie
from tests.support import PASSWORD, Api, ServerProcess

FOREIGN = "http://evil.example"


def own_origin(server: ServerProcess) -> str:
    return server.base_url          # http://127.0.0.1:<port>, the scheme and Host requests use


def unsafe_requests(browser: Api) -> list[tuple[str, str, dict | None]]:
    """One of each unsafe method a signed-in browser can make, on todos and the session."""
    todo = browser.create_todo("target")
    return [("POST", "/api/todos/", {"title": "forged"}),
            ("PUT", f"/api/todos/{todo['id']}/", {"title": "forged", "completed": True}),
            ("PATCH", f"/api/todos/{todo['id']}/", {"title": "forged"}),
            ("DELETE", f"/api/todos/{todo['id']}/", None),
            ("PATCH", "/api/todos/", {"completed": True}),
            ("DELETE", "/api/todos/?completed=true", None),
            ("DELETE", "/api/session/", None)]


def state(browser: Api) -> list[dict]:
    assert browser.get("/api/session/").status_code == 200, "still signed in"
    return browser.list_todos()["todos"]


FROM_ELSEWHERE = [{"Origin": FOREIGN}, {"Origin": "null"}, {"Origin": "http://127.0.0.1:1"},
                  {"Origin": "https://127.0.0.1"}, {"Referer": FOREIGN + "/page?x=1"}, {"Referer": "not a url"}]


def test_cookie_authenticated_unsafe_requests_from_elsewhere_are_403_and_change_nothing(server):
    browser = sign_up_with_cookie(server.base_url)
    requests_ = unsafe_requests(browser)
    browser.create_todo("done", completed=True)
    before = state(browser)
    for headers in FROM_ELSEWHERE:
        for method, path, body in requests_:
            response = browser.request(method, path, json_body=body, headers=headers)
            assert_error(response, 403, code="cross_site")
    assert state(browser) == before


def test_a_foreign_origin_wins_over_a_same_origin_referer(server):
    browser = sign_up_with_cookie(server.base_url)
    response = browser.post("/api/todos/", {"title": "x"},
                            headers={"Origin": FOREIGN, "Referer": own_origin(server) + "/"})
    assert_error(response, 403)
    assert state(browser) == []


@pytest.mark.parametrize("kind", ["origin", "referer", "none"])
def test_same_origin_or_unlabelled_cookie_requests_pass(server, kind):
    browser = sign_up_with_cookie(server.base_url)
    headers = {"origin": {"Origin": own_origin(server)}, "referer": {"Referer": own_origin(server) + "/#/active"},
               "none": {}}[kind]
    for method, path, body in unsafe_requests(browser):
        response = browser.request(method, path, json_body=body, headers=headers)
        assert response.status_code in (200, 201, 204), (method, path, response.text)


def test_safe_methods_with_a_foreign_origin_pass(server):
    browser = sign_up_with_cookie(server.base_url)
    todo = browser.create_todo("readable")
    for path in ("/api/todos/", f"/api/todos/{todo['id']}/", "/api/session/"):
        assert browser.get(path, headers={"Origin": FOREIGN}).status_code == 200


def test_bearer_requests_are_not_subject_to_the_origin_check(alice: Api):
    todo = alice.create_todo("scripted")
    for headers in ({"Origin": FOREIGN}, {"Referer": FOREIGN + "/"}):
        assert alice.patch(f"/api/todos/{todo['id']}/", {"completed": True}, headers=headers).status_code == 200
        assert alice.post("/api/todos/", {"title": "from a script"}, headers=headers).status_code == 201
    assert alice.delete("/api/session/", headers={"Origin": FOREIGN}).status_code == 204


def test_signing_up_or_in_without_a_cookie_is_not_a_cross_site_write(server):
    anonymous = Api(server.base_url)
    credentials = {"username": "crossing_user", "password": PASSWORD}
    assert anonymous.post("/api/users/", credentials, headers={"Origin": FOREIGN}).status_code == 201
    assert Api(server.base_url).post("/api/session/", credentials, headers={"Origin": FOREIGN}).status_code == 200


def test_a_configured_allowed_origin_may_write_with_cookies(start_server):
    allowed = "https://app.example"
    server = start_server(env={"TODOPY_ALLOWED_ORIGINS": f"{allowed}/, http://other.example:8080"})
    browser = sign_up_with_cookie(server.base_url)
    for origin in (allowed, "http://other.example:8080", own_origin(server)):
        assert browser.post("/api/todos/", {"title": origin}, headers={"Origin": origin}).status_code == 201
    assert browser.post("/api/todos/", {"title": "r"}, headers={"Referer": allowed + "/list"}).status_code == 201
    for origin in (FOREIGN, "http://app.example", "https://app.example:8443", "https://evil.app.example"):
        assert_error(browser.post("/api/todos/", {"title": "no"}, headers={"Origin": origin}), 403)
    assert len(state(browser)) == 4


def test_our_origin_is_the_forwarded_one_behind_a_trusted_proxy(start_server):
    server = start_server(env={"TODOPY_PROXY_HOPS": "1"})
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "todo.example"}
    browser = sign_up_with_cookie(server.base_url)
    assert browser.post("/api/todos/", {"title": "ok"},
                        headers={**forwarded, "Origin": "https://todo.example"}).status_code == 201
    assert_error(browser.post("/api/todos/", {"title": "no"},
                              headers={**forwarded, "Origin": own_origin(server)}), 403)


# -- the WebSocket handshake ---------------------------------------------------

def open_stream(server: ServerProcess, browser: Api, origin: str) -> websocket.WebSocket:
    token = browser.http.cookies["todopy_session"]
    return websocket.create_connection(server.ws_url + "/api/todos/", cookie=f"todopy_session={token}",
                                       origin=origin, timeout=10)


def test_a_cookie_websocket_handshake_from_a_foreign_origin_is_403(server):
    browser = sign_up_with_cookie(server.base_url)
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        open_stream(server, browser, FOREIGN)
    assert refused.value.status_code == 403
    body = json.loads(refused.value.resp_body)
    assert body["error"]["code"] == "cross_site"


def test_a_cookie_websocket_handshake_from_our_origin_is_accepted(server):
    browser = sign_up_with_cookie(server.base_url)
    stream = open_stream(server, browser, own_origin(server))
    try:
        assert json.loads(stream.recv())["type"] == "snapshot"
    finally:
        stream.close()
