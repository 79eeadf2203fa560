"""The front end's unit tests answer fetch with the real server's replies, recorded here.

`static/test/fixtures/server-replies.json` is what the node tests feed their
fake fetch. This test asks the running server the same questions and fails
when its answers drift from the file, so the fakes cannot disagree with the
server (issue 15: they once said `too_many_attempts`, the server
`too_many_requests`). Rewrite the file with TODOPY_RECORD_FIXTURES=1.
"""
from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

import requests

from tests.browser import PASSWORD
from tests.support import register

FIXTURES = Path(__file__).resolve().parent.parent / "static" / "test" / "fixtures" / "server-replies.json"


def reply(response: requests.Response) -> dict:
    recorded = {"status": response.status_code, "body": response.json()}
    if "Retry-After" in response.headers:
        recorded["headers"] = {"Retry-After": response.headers["Retry-After"]}
    return recorded


def record(base: str) -> dict[str, dict]:
    alice, bob = register(base), register(base)
    name = alice.user["username"]
    replies = {}
    replies["session_missing"] = reply(requests.get(base + "/api/session/", timeout=10))
    replies["sign_in_wrong_password"] = reply(
        requests.post(base + "/api/session/", json={"username": name, "password": "wrong horse battery"}, timeout=10))
    replies["sign_up_taken"] = reply(
        requests.post(base + "/api/users/", json={"username": name.upper(), "password": PASSWORD}, timeout=10))
    replies["sign_up_short_password"] = reply(
        requests.post(base + "/api/users/", json={"username": "x" + uuid.uuid4().hex[:10], "password": "short"},
                      timeout=10))
    todo = alice.create_todo("fixture")
    alice.patch(f"/api/todos/{todo['id']}/", {"completed": True})
    replies["update_precondition_failed"] = reply(alice.http.patch(
        base + f"/api/todos/{todo['id']}/", json={"title": "stale"},
        headers={**alice.headers(), "If-Match": f'"{todo["rev"]}"'}, timeout=10))
    replies["update_title_too_long"] = reply(alice.http.patch(
        base + f"/api/todos/{todo['id']}/", json={"title": "x" * 513}, headers=alice.headers(), timeout=10))
    replies["todo_missing"] = reply(alice.http.get(base + f"/api/todos/{uuid.uuid4()}/", headers=alice.headers(),
                                                   timeout=10))
    replies["create_id_taken"] = reply(bob.http.post(base + "/api/todos/", json={"title": "mine", "id": todo["id"]},
                                                     headers=bob.headers(), timeout=10))
    replies["create_id_repeated"] = reply(alice.http.post(base + "/api/todos/", json={"title": "again", "id": todo["id"]},
                                                          headers=alice.headers(), timeout=10))
    shared = alice.http.post(base + "/api/lists/", json={"title": "Shared"}, headers=alice.headers(), timeout=10).json()
    alice.http.put(base + f"/api/lists/{shared['id']}/members/{bob.user['username']}/", json={"role": "viewer"},
                   headers=alice.headers(), timeout=10)
    replies["viewer_writes"] = reply(bob.http.post(base + f"/api/lists/{shared['id']}/todos/", json={"title": "no"},
                                                   headers=bob.headers(), timeout=10))
    replies["member_unknown"] = reply(alice.http.put(
        base + f"/api/lists/{shared['id']}/members/nobody-{uuid.uuid4().hex[:8]}/", json={"role": "editor"},
        headers=alice.headers(), timeout=10))
    replies["owner_leaves"] = reply(alice.http.delete(base + f"/api/lists/{shared['id']}/members/{name}/",
                                                      headers=alice.headers(), timeout=10))
    # Last: the throttle (the shared server allows 10 failures in a row).
    for _ in range(10):
        throttled = requests.post(base + "/api/session/", json={"username": name, "password": "wrong horse battery"},
                                  timeout=10)
        if throttled.status_code == 429:
            break
    replies["sign_in_throttled"] = reply(throttled)
    return replies


def comparable(replies: dict[str, dict]) -> dict[str, dict]:
    """What must match: statuses, codes, headers present; messages with their numbers blanked."""
    out = {}
    for name, r in replies.items():
        body = json.loads(re.sub(r"\d+", "N", json.dumps(r["body"]))) if "error" in r["body"] else sorted(r["body"])
        out[name] = {"status": r["status"], "headers": sorted(r.get("headers", {})), "body": body}
    return out


def test_recorded_replies_match_the_server(server):
    live = record(server.base_url)
    if os.environ.get("TODOPY_RECORD_FIXTURES") == "1":
        FIXTURES.parent.mkdir(parents=True, exist_ok=True)
        FIXTURES.write_text(json.dumps(live, indent=2, sort_keys=True) + "\n")
    stored = json.loads(FIXTURES.read_text())
    assert comparable(stored) == comparable(live), (
        "the server's replies changed: re-record with TODOPY_RECORD_FIXTURES=1 and check static/test")
    assert live["sign_in_throttled"]["status"] == 429
    assert live["update_precondition_failed"]["status"] == 412
