"""docs/api.md "Operations" (/healthz) and the headers every response carries."""
from __future__ import annotations

import pytest
import requests

from tests.contract import JSON_TYPE, random_todo_path, send_raw
from tests.support import PASSWORD, Api, new_username, register


def test_healthz_is_200_ok_without_auth(server):
    response = requests.get(server.base_url + "/healthz", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == JSON_TYPE
    assert response.json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    head = requests.head(server.base_url + "/healthz", timeout=10)
    assert head.status_code == 200 and head.content == b""


@pytest.fixture(scope="module")
def sample(server) -> dict[str, requests.Response]:
    """One response of each kind (user data, errors, operations, the page), recorded once."""
    alice = register(server.base_url)
    anonymous = Api(server.base_url)
    username = new_username()
    todo = alice.create_todo("headers")
    return {
        "sign up": anonymous.post("/api/users/", {"username": username, "password": PASSWORD}),
        "sign in": anonymous.post("/api/session/", {"username": username, "password": PASSWORD}),
        "session": alice.get("/api/session/"),
        "list": alice.get("/api/todos/"),
        "create": alice.post("/api/todos/", {"title": "x"}),
        "one": alice.get(f"/api/todos/{todo['id']}/"),
        "put": alice.put(f"/api/todos/{todo['id']}/", {"title": "y", "completed": False}),
        "patch": alice.patch(f"/api/todos/{todo['id']}/", {"completed": True}),
        "toggle": alice.patch("/api/todos/", {"completed": False}),
        "clear": alice.delete("/api/todos/?completed=true"),
        "delete": alice.delete(f"/api/todos/{todo['id']}/"),
        "401": Api(server.base_url).get("/api/todos/"),
        "404": alice.get(random_todo_path()),
        "405": alice.request("PUT", "/api/todos/"),
        "308": alice.get("/api/todos"),
        "400": send_raw(alice, "POST", "/api/todos/", b"{"),
        "413": send_raw(alice, "POST", "/api/todos/", b" " * (65 * 1024)),
        "415": send_raw(alice, "POST", "/api/todos/", b"{}", "text/plain"),
        "422": alice.post("/api/todos/", {"title": ""}),
        "404 route": anonymous.get("/nope"),
        "sign out": anonymous.delete("/api/session/"),
        "healthz": anonymous.get("/healthz"),
        "openapi": anonymous.get("/api/openapi.json"),
        "metrics": anonymous.get("/metrics"),
        "page": anonymous.get("/"),
    }


def test_the_sample_has_the_statuses_it_names(sample):
    expected = {"sign up": 201, "sign in": 200, "create": 201, "delete": 204, "sign out": 204, "404 route": 404,
                "healthz": 200, "openapi": 200, "metrics": 200, "page": 200}
    for name, response in sample.items():
        status = int(name) if name.isdigit() else expected.get(name, 200)
        assert response.status_code == status, (name, response.status_code, response.text[:200])


def test_every_response_says_nosniff_and_a_referrer_policy(sample):
    for name, response in sample.items():
        assert response.status_code < 500, name
        assert response.headers.get("X-Content-Type-Options") == "nosniff", name
        assert response.headers.get("Referrer-Policy") in ("same-origin", "no-referrer", "strict-origin",
                                                          "strict-origin-when-cross-origin"), name


def test_api_responses_with_user_data_are_not_stored(sample):
    for name in ("sign up", "sign in", "session", "list", "create", "one", "put", "patch", "toggle", "clear",
                 "delete", "401", "404", "422", "sign out", "healthz"):
        cache_control = sample[name].headers.get("Cache-Control", "")
        assert "no-store" in cache_control, (name, cache_control)


def test_json_bodies_are_declared_as_utf8_json(sample):
    for name, response in sample.items():
        if response.status_code == 204 or name in ("metrics", "page"):
            continue
        assert response.headers.get("Content-Type") == JSON_TYPE, (name, response.headers.get("Content-Type"))
        response.json()
