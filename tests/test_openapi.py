"""/api/openapi.json: a valid OpenAPI 3.1 document of exactly the routes served, whose schemas real responses obey."""
from __future__ import annotations

import json
import re
import sys
import uuid
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
import requests
from openapi_spec_validator import validate

from tests.contract import send_raw
from tests.support import PASSWORD, Api, new_username
from todopy import openapi
from todopy.routes import ROUTES
from todopy.views.base import VERBS

HTTP_METHODS = {"get", "head", "post", "put", "patch", "delete", "options", "trace"}


@pytest.fixture(scope="module")
def spec(server) -> dict[str, Any]:
    response = requests.get(server.base_url + "/api/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    return response.json()


def schema_validator(spec: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator for `schema` whose `#/components/...` references resolve in `spec`."""
    root = {**schema, "components": spec["components"]}
    return jsonschema.Draft202012Validator(root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def component(spec: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """`item`, or what its `$ref` points to."""
    while "$ref" in item:
        kind, name = item["$ref"].removeprefix("#/components/").split("/")
        item = spec["components"][kind][name]
    return item


def openapi_path(rule: str) -> str:
    """Werkzeug's `/api/todos/<uuid:todo_id>/` as OpenAPI's `/api/todos/{todo_id}/`."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def check_response(spec: dict[str, Any], method: str, path: str, response: requests.Response) -> None:
    """`response` has a documented status, and its body and documented headers match their schemas."""
    operation = spec["paths"][path][method.lower()]
    documented = operation["responses"]
    status = str(response.status_code)
    assert status in documented, f"{method} {path} answered an undocumented {status}: {response.text[:200]}"
    expected = component(spec, documented[status])
    for name, header in expected.get("headers", {}).items():
        assert name in response.headers, f"{method} {path} {status} lacks the {name} header"
        header_schema = component(spec, header)["schema"]
        value: Any = response.headers[name]
        if header_schema.get("type") == "integer":
            assert value.isdigit(), (name, value)
            value = int(value)
        schema_validator(spec, header_schema).validate(value)
    content = expected.get("content")
    if content is None:
        assert response.content == b"", f"{method} {path} {status} has an undocumented body"
        return
    if "application/json" in content:
        assert response.headers["Content-Type"].startswith("application/json")
        schema_validator(spec, content["application/json"]["schema"]).validate(response.json())


# -- the document --------------------------------------------------------------

def test_the_document_is_valid_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_every_route_is_documented_with_exactly_the_methods_it_serves_and_nothing_else(spec):
    served = {}
    for route in ROUTES:
        methods = {verb for verb in VERBS if hasattr(route.resource, verb)}
        if "get" in methods:
            methods.add("head")
        served[openapi_path(route.path)] = methods
    documented = {path: set(item) & HTTP_METHODS for path, item in spec["paths"].items()}
    assert documented == served


def test_every_verb_a_resource_serves_has_its_operation_written_and_no_other_has_one():
    """Paths and methods are generated from the routes; what each operation does is written
    by hand in `openapi.OPERATIONS`, which must neither miss a served verb nor keep a stale one."""
    served = {(route.resource.__name__, verb) for route in ROUTES for verb in VERBS if hasattr(route.resource, verb)}
    written = {(resource.__name__, verb) for resource, verb in openapi.OPERATIONS}
    assert not served - written, f"served but not documented: {sorted(served - written)}"
    assert not written - served, f"documented but not served: {sorted(written - served)}"


def test_streams_and_path_parameters_are_described_for_exactly_the_routes_that_have_them(spec):
    streamed = {openapi_path(route.path) for route in ROUTES if hasattr(route.resource, "websocket")}
    assert {"/api/todos/", "/api/lists/"} <= streamed
    sentence = re.search(r"WebSocket upgrade opens a stream on ([^.]*)\.", spec["info"]["description"]).group(1)
    assert set(re.findall(r"`([^`]+)`", sentence)) == streamed
    for path, item in spec["paths"].items():
        named = [component(spec, parameter)["name"] for parameter in item.get("parameters", [])]
        assert named == re.findall(r"{([^}]+)}", path), path


def test_every_operation_documents_the_errors_it_can_meet(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            statuses = set(operation["responses"])
            where = f"{method} {path}"
            if operation.get("security") and {} not in operation["security"]:
                assert {"401", "503"} <= statuses, where
            if "requestBody" in operation:
                assert {"400", "413", "415", "422"} <= statuses, where
                assert list(operation["requestBody"]["content"]) == ["application/json"], where
            if method in ("post", "put", "patch", "delete") and path.startswith("/api/"):
                assert "403" in statuses, where
            if "{todo_id}" in path:
                assert "404" in statuses, where
            if "If-Match" in json.dumps(operation.get("parameters", [])):
                assert "412" in statuses, where
            for status, response in operation["responses"].items():
                if method == "head":
                    assert "content" not in component(spec, response), (where, status)
                elif status.startswith(("4", "5")) and path != "/healthz":
                    error = component(spec, response)
                    assert error["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "Allow" in component(spec, {"$ref": "#/components/responses/MethodNotAllowed"})["headers"]
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["cookie"] == {**schemes["cookie"], "type": "apiKey", "in": "cookie", "name": "todopy_session"}


def test_the_white_space_class_is_exactly_what_str_strip_removes(spec):
    pattern = component(spec, {"$ref": "#/components/schemas/TitleInput"})["pattern"]
    white_class = re.match(r"\^\[([^\]]*)\]\*", pattern).group(1)
    every_character = "".join(map(chr, range(sys.maxunicode + 1)))
    assert "".join(re.findall(f"[{white_class}]", every_character)) == "".join(
        c for c in every_character if c.isspace())


def patterns_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return own + [found for value in node.values() for found in patterns_in(value)]
    if isinstance(node, list):
        return [found for value in node for found in patterns_in(value)]
    return []


def test_every_pattern_compiles_for_python_and_for_the_rust_validator_schemathesis_uses(spec):
    patterns = patterns_in(spec)
    assert len(patterns) >= 5
    for pattern in patterns:
        re.compile(pattern)
        jsonschema_rs.validator_for({"type": "string", "pattern": pattern})    # raises on a pattern it drops


def test_field_schemas_accept_exactly_what_the_server_accepts(spec, alice: Api, anonymous: Api):
    new_todo = schema_validator(spec, {"$ref": "#/components/schemas/NewTodo"})
    titles = ["x", " x ", "\x1c", "\x1cx\x1f", "\ufeff", "\u200b", " " * 600 + "x", "x" * 512, "x" * 513,
              "x" + " " * 600, "x" + " " * 600 + "y", "a\x00b", "", "  ", "\u3000", "x\x85", "\U0001F600" * 512,
              "\U0001F600" * 513, "\n" + "y" * 512 + "\t"]
    for title in titles:
        accepted = alice.post("/api/todos/", {"title": title}).status_code == 201
        assert new_todo.is_valid({"title": title}) == accepted, (title[:20], len(title), accepted)
    for body in ({"title": "x", "completed": True, "id": 5, "rev": "r", "created_time": None}, {"title": "x", "y": 1},
                 {"completed": True}, {"title": "x", "completed": "true"}):
        accepted = alice.post("/api/todos/", body).status_code == 201
        assert new_todo.is_valid(body) == accepted, body

    todo = alice.create_todo("patched")
    changes = schema_validator(spec, {"$ref": "#/components/schemas/TodoChanges"})
    for body in ({}, {"id": todo["id"]}, {"title": "y"}, {"completed": False}, {**todo, "title": "z"}):
        accepted = alice.patch(f"/api/todos/{todo['id']}/", body).status_code == 200
        assert changes.is_valid(body) == accepted, body

    credentials = schema_validator(spec, {"$ref": "#/components/schemas/Credentials"})
    suffix = uuid.uuid4().hex[:8]
    for username, password in (("abc" + suffix, "12345678"), ("ab", "12345678"), ("a" * 65, "12345678"),
                               ("a b", "12345678"), ("n1" + suffix, "1234567"), ("n2" + suffix, "x" * 1025),
                               ("n3" + suffix, "\U0001F600" * 8), ("n4" + suffix, "pass\x00word"),
                               ("N.5-" + suffix, " " * 8), ("\u00e9t\u00e9", "12345678")):
        body = {"username": username, "password": password}
        accepted = anonymous.post("/api/users/", body).status_code == 201
        assert credentials.is_valid(body) == accepted, body


# -- real responses against the documented schemas -----------------------------

def test_real_responses_match_the_documented_schemas_and_headers(spec, server, sql):
    base = server.base_url
    anonymous = Api(base)
    todo_path = "/api/todos/{todo_id}/"

    def call(method: str, template: str, api: Api, path: str | None = None, **kwargs: Any) -> requests.Response:
        response = api.request(method, path or template, **kwargs)
        check_response(spec, method, template, response)
        return response

    username = new_username()
    credentials = {"username": username, "password": PASSWORD}
    signed_up = call("POST", "/api/users/", anonymous, json_body=credentials).json()
    call("POST", "/api/users/", Api(base), json_body=credentials)                        # 409
    call("POST", "/api/users/", Api(base), json_body={"username": "x"})                  # 422
    user = Api(base, signed_up["token"])
    call("POST", "/api/session/", Api(base), json_body=credentials)                      # 200
    call("POST", "/api/session/", Api(base), json_body={**credentials, "password": "wrong password"})   # 401
    call("GET", "/api/session/", user)
    call("GET", "/api/session/", Api(base))                                              # 401
    call("HEAD", "/api/session/", user)

    created = call("POST", "/api/todos/", user, json_body={"title": "documented"}).json()
    path = f"/api/todos/{created['id']}/"
    call("POST", "/api/todos/", user, json_body={"title": "done", "completed": True})
    call("GET", "/api/todos/", user)
    call("GET", "/api/todos/", user, path="/api/todos/?completed=true")
    call("GET", "/api/todos/", user, path="/api/todos/?completed=maybe")                 # 422
    call("GET", "/api/todos/", Api(base))                                                # 401
    call("GET", todo_path, user, path=path)
    call("HEAD", todo_path, user, path=path)
    call("GET", todo_path, user, path=f"/api/todos/{signed_up['user']['id']}/")          # 404
    call("HEAD", todo_path, user, path=f"/api/todos/{signed_up['user']['id']}/")         # 404, no body
    call("HEAD", "/api/todos/", Api(base))                                               # 401, no body
    replaced = call("PUT", todo_path, user, path=path, json_body={"title": "replaced", "completed": False}).json()
    call("PUT", todo_path, user, path=path, json_body={"title": "x"})                    # 422
    call("PATCH", todo_path, user, path=path, json_body={"completed": True}, headers={"If-Match": '"1"'})  # 412
    call("PATCH", todo_path, user, path=path, json_body={"completed": True},
         headers={"If-Match": f'"{replaced["rev"]}"'})
    for raw, content_type in ((b"{", "application/json"), (b"{}", "text/plain"), (b" " * 70_000, "application/json")):
        response = send_raw(user, "PATCH", path, raw, content_type)                       # 400, 415, 413
        check_response(spec, "PATCH", todo_path, response)
    call("PATCH", "/api/todos/", user, json_body={"completed": False})
    cookie = Api(base)
    cookie.http.cookies.set("todopy_session", signed_up["token"])
    call("PATCH", "/api/todos/", cookie, json_body={"completed": True}, headers={"Origin": "http://evil.example"})  # 403
    call("DELETE", "/api/todos/", user, path="/api/todos/?completed=true")
    call("DELETE", "/api/todos/", user)                                                  # 422
    call("DELETE", todo_path, user, path=path)
    call("DELETE", todo_path, user, path=path)                                           # 404

    for _ in range(11):                                                                  # 401s, then 429
        last = call("POST", "/api/session/", Api(base), json_body={"username": "nobody_here", "password": "12345678"})
    assert last.status_code == 429

    call("GET", "/healthz", anonymous)
    call("HEAD", "/healthz", anonymous)
    call("GET", "/api/openapi.json", anonymous)
    call("GET", "/metrics", anonymous)
    call("GET", "/", anonymous)
    call("GET", "/assets/{filename}", anonymous, path="/assets/no-such-file.js")         # 404
    call("DELETE", "/api/session/", user)
    call("DELETE", "/api/session/", user)                                                # 401

    not_allowed = user.request("PUT", "/api/session/")
    method_not_allowed = {"responses": {"405": {"$ref": "#/components/responses/MethodNotAllowed"}}}
    check_response({**spec, "paths": {"/x": {"put": method_not_allowed}}}, "PUT", "/x", not_allowed)


def test_keyed_writes_and_bulk_preconditions_answer_as_documented(spec, server):
    user = Api(server.base_url, requests.post(server.base_url + "/api/users/", timeout=10, json={
        "username": new_username(), "password": PASSWORD}).json()["token"])

    def call(method: str, template: str, path: str | None = None, **kwargs: Any) -> requests.Response:
        response = user.request(method, path or template, **kwargs)
        check_response(spec, method, template, response)
        return response

    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = call("POST", "/api/todos/", json_body={"title": "keyed"}, headers=key)
    replayed = call("POST", "/api/todos/", json_body={"title": "keyed"}, headers=key)
    assert first.status_code == replayed.status_code == 201
    assert call("POST", "/api/todos/", json_body={"title": "other"}, headers=key).status_code == 422
    assert call("POST", "/api/todos/", json_body={"title": "x"}, headers={"Idempotency-Key": ""}).status_code == 400
    todo_path = f"/api/todos/{first.json()['id']}/"
    assert call("DELETE", "/api/todos/{todo_id}/", todo_path, headers=key).status_code == 422
    assert call("DELETE", "/api/todos/{todo_id}/", todo_path, headers={"Idempotency-Key": "d"}).status_code == 204
    assert call("DELETE", "/api/todos/{todo_id}/", todo_path, headers={"Idempotency-Key": "d"}).status_code == 204
    stale = {"If-Match": '"1"'}
    assert call("PATCH", "/api/todos/", json_body={"completed": True}, headers=stale).status_code == 412
    assert call("DELETE", "/api/todos/", "/api/todos/?completed=true", headers=stale).status_code == 412
    etag = {"If-Match": call("GET", "/api/todos/").headers["ETag"]}
    assert call("PATCH", "/api/todos/", json_body={"completed": True}, headers=etag).status_code == 200
    assert call("DELETE", "/api/todos/", "/api/todos/?completed=true", headers={"Idempotency-Key": "c"}).status_code \
        == 200
