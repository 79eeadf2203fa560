"""Checks shared by the REST contract tests (docs/api.md): the error shape, cookie sessions, raw bodies."""
from __future__ import annotations

import datetime
import re
import uuid
from typing import Any

import requests

from tests.support import PASSWORD, Api, new_username

ERROR_CODE = re.compile(r"[a-z][a-z0-9_]*")
JSON_TYPE = "application/json; charset=utf-8"


def assert_error(response: requests.Response, status: int, *, code: str | None = None,
                 names: str | None = None) -> dict[str, str]:
    """`response` is docs/api.md's error JSON with `status`; `names` must appear in the message."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text[:300]}"
    assert response.headers.get("Content-Type") == JSON_TYPE
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and ERROR_CODE.fullmatch(error["code"]), error
    assert isinstance(error["message"], str) and error["message"].strip(), error
    if code is not None:
        assert error["code"] == code, error
    if names is not None:
        assert names in error["message"], error
    return error


def sign_up_with_cookie(base_url: str, username: str | None = None, password: str = PASSWORD) -> Api:
    """A new user whose client carries only the session cookie (no bearer token), like a browser."""
    api = Api(base_url)
    response = api.post("/api/users/", {"username": username or new_username("c"), "password": password})
    assert response.status_code == 201, response.text
    api.user = response.json()["user"]
    assert api.http.cookies.get("todopy_session") == response.json()["token"]
    return api


def send_raw(api: Api, method: str, path: str, body: bytes, content_type: str | None = "application/json",
             **headers: str) -> requests.Response:
    """`body` exactly as given, with `content_type` (None: no Content-Type header)."""
    extra = dict(headers)
    if content_type is not None:
        extra["Content-Type"] = content_type
    return api.request(method, path, data=body, headers=extra)


def random_todo_path() -> str:
    return f"/api/todos/{uuid.uuid4()}/"


def todo_keys(todo: dict[str, Any]) -> None:
    """A todo has exactly docs/api.md's fields and types."""
    assert set(todo) == {"id", "title", "completed", "created_time", "rev"}, todo
    uuid.UUID(todo["id"])
    assert isinstance(todo["title"], str) and isinstance(todo["completed"], bool)
    assert isinstance(todo["rev"], int) and not isinstance(todo["rev"], bool) and todo["rev"] > 0
    assert "T" in todo["created_time"], todo
    assert datetime.datetime.fromisoformat(todo["created_time"]).utcoffset() is not None, todo


def credentials(username: str, password: str = PASSWORD) -> dict[str, str]:
    return {"username": username, "password": password}


def sign_in(base_url: str, username: str, password: str = PASSWORD, **headers: str) -> requests.Response:
    return requests.post(base_url + "/api/session/", json=credentials(username, password), headers=headers,
                         timeout=30)


def set_cookie_attributes(response: requests.Response) -> dict[str, str]:
    """The todopy_session Set-Cookie header's attributes, names lower-cased; the value under 'value'."""
    headers = [value for name, value in response.raw.headers.items() if name.lower() == "set-cookie"]
    assert len(headers) == 1, headers
    first, *attributes = [part.strip() for part in headers[0].split(";")]
    name, _, value = first.partition("=")
    assert name == "todopy_session"
    parsed = {"value": value}
    for attribute in attributes:
        key, _, val = attribute.partition("=")
        parsed[key.lower()] = val
    return parsed
