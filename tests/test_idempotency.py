"""Idempotency-Key on every write: performed once, replayed on retry, refused when reused, per user, expiring,
bounded; and If-Match with the list's ETag on the bulk writes."""
from __future__ import annotations

import concurrent.futures
import json
import threading
import time
import uuid

import pytest

from tests.support import Api, new_list, register, wait_for

KEY = "Idempotency-Key"


def keyed(key: str, **headers: str) -> dict[str, str]:
    return {KEY: key, **headers}


def todos_of(api: Api, path: str = "/api/todos/") -> list[dict]:
    response = api.get(path)
    assert response.status_code == 200, response.text
    return response.json()["todos"]


def same_response(first, again) -> None:
    """`again` is `first` replayed: status, body and the headers that matter, byte for byte."""
    assert again.status_code == first.status_code
    assert again.content == first.content
    for name in ("Location", "ETag", "Content-Type"):
        assert again.headers.get(name) == first.headers.get(name), name
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers


# -- once, and the first response again -------------------------------------------------

def test_a_retried_create_writes_once_and_gets_the_first_response(alice: Api, sql):
    key = str(uuid.uuid4())
    first = alice.post("/api/todos/", {"title": "milk"}, headers=keyed(key))
    assert first.status_code == 201, first.text
    # The key's record and the write were committed by one transaction.
    (todo_xid,) = sql("SELECT xmin::text FROM todos WHERE id = %s", (first.json()["id"],))[0]
    assert sql("SELECT xmin::text FROM idempotency_keys WHERE key = %s", (key,)) == [(todo_xid,)]
    again = alice.post("/api/todos/", {"title": "milk"}, headers=keyed(key))
    same_response(first, again)
    assert todos_of(alice) == [first.json()]
    # Without a key, the same request is another write.
    assert alice.post("/api/todos/", {"title": "milk"}).status_code == 201
    assert len(todos_of(alice)) == 2


def test_a_replayed_clear_completed_does_not_delete_what_was_completed_since(alice: Api):
    """Issue 20's lost todo: a clear-completed sent again after the user completed Y must not delete Y."""
    x, y = alice.create_todo("X"), alice.create_todo("Y")
    assert alice.patch(f"/api/todos/{x['id']}/", {"completed": True}).status_code == 200
    key = str(uuid.uuid4())
    first = alice.delete("/api/todos/?completed=true", headers=keyed(key))
    assert first.status_code == 200 and first.json()["deleted"] == 1
    assert alice.patch(f"/api/todos/{y['id']}/", {"completed": True}).status_code == 200
    again = alice.delete("/api/todos/?completed=true", headers=keyed(key))
    same_response(first, again)
    assert [todo["id"] for todo in todos_of(alice)] == [y["id"]]


def test_every_kind_of_write_replays_its_first_response(alice: Api, bob: Api):
    todo = alice.create_todo("t")
    listed = new_list(alice, "Shared")
    writes = [
        ("PATCH", f"/api/todos/{todo['id']}/", {"completed": True}),
        ("PUT", f"/api/todos/{todo['id']}/", {"title": "t2", "completed": False}),
        ("PATCH", "/api/todos/", {"completed": True}),
        ("POST", "/api/lists/", {"title": "Another"}),
        ("PATCH", f"/api/lists/{listed['id']}/", {"title": "Renamed"}),
        ("PUT", f"/api/lists/{listed['id']}/members/{bob.user['username']}/", {"role": "editor"}),
        ("POST", f"/api/lists/{listed['id']}/todos/", {"title": "in a list"}),
        ("DELETE", f"/api/todos/{todo['id']}/", None),
        ("DELETE", f"/api/lists/{listed['id']}/members/{bob.user['username']}/", None),
    ]
    for method, path, body in writes:
        key = str(uuid.uuid4())
        first = alice.request(method, path, json_body=body, headers=keyed(key))
        assert first.status_code in (200, 201, 204), (method, path, first.text)
        again = alice.request(method, path, json_body=body, headers=keyed(key))
        same_response(first, again)
    # The replayed DELETE answered 204, not the 404 a second delete would get; the
    # replayed POST made one list, the replayed PUT added bob once.
    assert alice.get(f"/api/todos/{todo['id']}/").status_code == 404
    assert [lst["title"] for lst in alice.get("/api/lists/").json()["lists"]] == ["Todos", "Renamed", "Another"]
    assert [m["user"]["username"] for m in alice.get(f"/api/lists/{listed['id']}/members/").json()["members"]] \
        == [alice.user["username"]]


# -- one key, one request ----------------------------------------------------------------

def test_a_key_sent_with_another_request_is_422_and_changes_nothing(alice: Api):
    key = str(uuid.uuid4())
    first = alice.post("/api/todos/", {"title": "one"}, headers=keyed(key))
    assert first.status_code == 201
    other_requests = [
        ("POST", "/api/todos/", {"title": "two"}, {}),                      # another body
        ("PATCH", "/api/todos/", {"completed": True}, {}),                   # another method and path
        ("POST", "/api/todos/?x=1", {"title": "one"}, {}),                   # another query
        ("POST", "/api/todos/", {"title": "one"}, {"If-Match": '"1"'}),      # another precondition
    ]
    for method, path, body, headers in other_requests:
        response = alice.request(method, path, json_body=body, headers=keyed(key, **headers))
        assert response.status_code == 422, (method, path, response.text)
        assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert todos_of(alice) == [first.json()]


def test_keys_are_per_user(alice: Api, bob: Api):
    key = "the-same-key"
    mine = alice.post("/api/todos/", {"title": "alice's"}, headers=keyed(key))
    theirs = bob.post("/api/todos/", {"title": "bob's"}, headers=keyed(key))
    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert [todo["title"] for todo in todos_of(alice)] == ["alice's"]
    assert [todo["title"] for todo in todos_of(bob)] == ["bob's"]


def test_a_refused_request_records_nothing_and_its_retry_is_judged_afresh(alice: Api):
    key = str(uuid.uuid4())
    refused = alice.post("/api/todos/", {"title": ""}, headers=keyed(key))
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid"
    taken = str(uuid.uuid4())
    other = register(alice.base_url)
    other.post("/api/todos/", {"title": "theirs", "id": taken})
    conflict = alice.post("/api/todos/", {"title": "x", "id": taken}, headers=keyed(key))
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "id_taken"
    done = alice.post("/api/todos/", {"title": "fixed"}, headers=keyed(key))
    assert done.status_code == 201 and "Idempotent-Replayed" not in done.headers
    assert [todo["title"] for todo in todos_of(alice)] == ["fixed"]


def test_a_retried_create_with_a_client_id_replays_the_201(alice: Api):
    """The write path's own retry handling (the todo exists: 200) runs inside the key's transaction too."""
    body = {"title": "mine", "id": str(uuid.uuid4())}
    first = alice.post("/api/todos/", body, headers=keyed("k1"))
    assert first.status_code == 201
    same_response(first, alice.post("/api/todos/", body, headers=keyed("k1")))
    second = alice.post("/api/todos/", body, headers=keyed("k2"))
    assert second.status_code == 200 and second.json() == first.json()


# -- concurrent retries -------------------------------------------------------------------

ROUNDS, RACERS = 40, 8


def test_concurrent_retries_with_one_key_write_exactly_once(alice: Api):
    """A retry arriving while the first is in flight is refused (409, Retry-After), never performed again;
    once the first has committed, every retry gets its response."""
    start = threading.Barrier(RACERS)
    apis = [Api(alice.base_url, alice.token) for _ in range(RACERS)]     # a connection each

    def send(api: Api, key: str, title: str):
        start.wait()
        return api.post("/api/todos/", {"title": title}, headers=keyed(key))

    in_use = 0
    with concurrent.futures.ThreadPoolExecutor(RACERS) as pool:
        for n in range(ROUNDS):
            key, title = str(uuid.uuid4()), f"round {n}"
            responses = list(pool.map(send, apis, [key] * RACERS, [title] * RACERS))
            created = [r for r in responses if r.status_code == 201]
            refused = [r for r in responses if r.status_code == 409]
            assert len(created) + len(refused) == RACERS, [(r.status_code, r.text) for r in responses]
            assert created, "someone must have performed it"
            assert all(r.json()["error"]["code"] == "idempotency_key_in_use" and r.headers["Retry-After"] == "1"
                       for r in refused)
            assert len({r.content for r in created}) == 1           # the one write, and replays of it
            in_use += len(refused)
            retry = alice.post("/api/todos/", {"title": title}, headers=keyed(key))
            assert retry.status_code == 201 and retry.content == created[0].content
    titles = [todo["title"] for todo in todos_of(alice)]
    assert sorted(titles) == sorted(f"round {n}" for n in range(ROUNDS)), titles
    print(f"{ROUNDS} rounds of {RACERS}: {in_use} retries refused in flight, the rest replayed")


def test_racing_keyed_creates_of_one_client_id_make_one_todo_and_answer_each_as_a_retry(alice: Api):
    """Different keys, one client-chosen id: the losers' inserts are refused by the database inside their
    keyed transactions, and answered as a retried create (200), as they are without a key."""
    start = threading.Barrier(RACERS)
    apis = [Api(alice.base_url, alice.token) for _ in range(RACERS)]

    def send(api: Api, todo_id: str):
        start.wait()
        return api.post("/api/todos/", {"title": "once", "id": todo_id}, headers=keyed(str(uuid.uuid4())))

    with concurrent.futures.ThreadPoolExecutor(RACERS) as pool:
        for _ in range(10):
            todo_id = str(uuid.uuid4())
            responses = list(pool.map(send, apis, [todo_id] * RACERS))
            statuses = sorted(r.status_code for r in responses)
            assert statuses == [200] * (RACERS - 1) + [201], [(r.status_code, r.text) for r in responses]
            assert len({json.dumps(r.json(), sort_keys=True) for r in responses}) == 1
    assert len(todos_of(alice)) == 10


# -- malformed keys -------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["", "a" * 256, "caf\u00e9", "tab\there", "bell\x07", '"escaped\\"', 'quote"inside',
                                 '""'],
                         ids=["empty", "256 chars", "not ascii", "tab", "control", "backslash", "quote", "empty quoted"])
def test_a_malformed_key_is_400_and_changes_nothing(alice: Api, key: str):
    response = alice.request("POST", "/api/todos/", data=b'{"title": "x"}',
                             headers={"Content-Type": "application/json", KEY: key.encode("latin-1")})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert todos_of(alice) == []


def test_a_malformed_key_keeps_its_place_in_the_order_of_errors(alice: Api, bob: Api):
    bad = {KEY: "", "Content-Type": "application/json"}
    missing = f"/api/todos/{uuid.uuid4()}/"
    assert alice.request("PATCH", missing, data=b"{}", headers=bad).status_code == 404
    assert bob.request("POST", f"/api/lists/{new_list(alice)['id']}/todos/", data=b"{}", headers=bad).status_code == 404
    assert alice.request("POST", "/api/todos/", data=b"x" * (65 * 1024), headers=bad).status_code == 413
    assert alice.request("POST", "/api/todos/", data=b"title=x",
                         headers={KEY: "", "Content-Type": "text/plain"}).status_code == 415
    assert alice.request("POST", "/api/todos/", data=b"{", headers=bad).status_code == 400
    assert alice.request("POST", "/api/todos/", data=b"{", headers=bad).json()["error"]["code"] \
        == "invalid_idempotency_key"


def test_a_key_may_be_255_characters_and_quoted_as_the_draft_writes_it(alice: Api):
    long_key = "k" * 255
    assert alice.post("/api/todos/", {"title": "long"}, headers=keyed(long_key)).status_code == 201
    quoted = alice.post("/api/todos/", {"title": "q"}, headers=keyed('"8e03978e-40d5-43e8-bc93-6894a57f9324"'))
    bare = alice.post("/api/todos/", {"title": "q"}, headers=keyed("8e03978e-40d5-43e8-bc93-6894a57f9324"))
    assert quoted.status_code == 201 and bare.headers.get("Idempotent-Replayed") == "true"
    assert len(todos_of(alice)) == 2


def test_reads_and_sign_up_ignore_the_header(server, alice: Api):
    assert alice.get("/api/todos/", headers=keyed("")).status_code == 200
    assert register(server.base_url).user       # sign-up is not keyed (no user yet): unaffected
    response = Api(server.base_url).post("/api/users/", {"username": "keyless_" + uuid.uuid4().hex[:8],
                                                          "password": "correct horse"}, headers=keyed(""))
    assert response.status_code == 201


# -- retention and the bound ---------------------------------------------------------------

def test_a_key_expires_after_its_time_and_housekeeping_forgets_it(start_server, sql):
    server = start_server(env={"TODOPY_IDEMPOTENCY_TTL": "2", "TODOPY_HOUSEKEEPING_INTERVAL": "0.5"})
    api = register(server.base_url)
    first = api.post("/api/todos/", {"title": "early"}, headers=keyed("k"))
    assert first.status_code == 201
    assert api.post("/api/todos/", {"title": "early"}, headers=keyed("k")).headers["Idempotent-Replayed"] == "true"
    assert sql("SELECT count(*) FROM idempotency_keys")[0][0] == 1
    wait_for(lambda: sql("SELECT count(*) FROM idempotency_keys")[0][0] == 0, timeout=10)
    # Forgotten: the key may name another request now, and that one is performed.
    later = api.post("/api/todos/", {"title": "later"}, headers=keyed("k"))
    assert later.status_code == 201 and "Idempotent-Replayed" not in later.headers
    assert [todo["title"] for todo in todos_of(api)] == ["early", "later"]


def test_an_expired_key_is_forgotten_even_before_housekeeping_runs(start_server):
    server = start_server(env={"TODOPY_IDEMPOTENCY_TTL": "1", "TODOPY_HOUSEKEEPING_INTERVAL": "3600"})
    api = register(server.base_url)
    assert api.post("/api/todos/", {"title": "a"}, headers=keyed("k")).status_code == 201
    time.sleep(1.5)
    again = api.post("/api/todos/", {"title": "a"}, headers=keyed("k"))
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert len(todos_of(api)) == 2
    assert api.post("/api/todos/", {"title": "a"}, headers=keyed("k")).headers["Idempotent-Replayed"] == "true"


def test_past_the_bound_a_new_key_is_429_and_nothing_else_is_refused(start_server):
    server = start_server(env={"TODOPY_IDEMPOTENCY_MAX_KEYS": "3"})
    api, other = register(server.base_url), register(server.base_url)
    for n in range(3):
        assert api.post("/api/todos/", {"title": f"t{n}"}, headers=keyed(f"k{n}")).status_code == 201
    refused = api.post("/api/todos/", {"title": "t3"}, headers=keyed("k3"))
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "too_many_idempotency_keys"
    assert 1 <= int(refused.headers["Retry-After"]) <= 24 * 3600
    assert len(todos_of(api)) == 3
    # Known keys still replay, writes without a key still go through, other users are not affected.
    assert api.post("/api/todos/", {"title": "t0"}, headers=keyed("k0")).headers["Idempotent-Replayed"] == "true"
    assert api.post("/api/todos/", {"title": "unkeyed"}).status_code == 201
    assert other.post("/api/todos/", {"title": "o"}, headers=keyed("k3")).status_code == 201


# -- If-Match on the bulk writes -------------------------------------------------------------

@pytest.mark.parametrize("in_list", [False, True], ids=["personal", "any list"])
def test_bulk_writes_take_if_match_with_the_lists_etag(alice: Api, in_list: bool):
    if in_list:
        lid = new_list(alice)["id"]
        base = f"/api/lists/{lid}/todos/"
    else:
        lid = alice.get("/api/lists/").json()["lists"][0]["id"]
        base = "/api/todos/"
    first = alice.post(base, {"title": "a"}).json()
    alice.post(base, {"title": "b", "completed": True})
    read = alice.get(base)
    etag = read.headers["ETag"]
    assert etag == f'"{read.json()["rev"]}"' == alice.get(f"/api/lists/{lid}/").headers["ETag"]
    assert alice.get(base + "?completed=true").headers["ETag"] == etag

    alice.patch(f"{base}{first['id']}/", {"title": "a2"})         # the list moves on
    stale = alice.patch(base, {"completed": True}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.json()["error"]["code"] == "precondition_failed"
    now = alice.get(base)
    assert stale.headers["ETag"] == now.headers["ETag"] != etag
    assert [todo["completed"] for todo in now.json()["todos"]] == [False, True]     # nothing changed
    cleared = alice.delete(base + "?completed=true", headers={"If-Match": etag})
    assert cleared.status_code == 412 and len(alice.get(base).json()["todos"]) == 2

    toggled = alice.patch(base, {"completed": True}, headers={"If-Match": now.headers["ETag"]})
    assert toggled.status_code == 200 and [t["title"] for t in toggled.json()["todos"]] == ["a2"]
    assert toggled.headers["ETag"] == f'"{toggled.json()["rev"]}"' == alice.get(base).headers["ETag"]
    nothing = alice.patch(base, {"completed": True}, headers={"If-Match": toggled.headers["ETag"]})
    assert nothing.status_code == 200 and nothing.json() == {"todos": [], "rev": toggled.json()["rev"]}
    cleared = alice.delete(base + "?completed=true", headers={"If-Match": f'"1", {toggled.headers["ETag"]}'})
    assert cleared.status_code == 200 and cleared.json()["deleted"] == 2
    assert cleared.headers["ETag"] == f'"{cleared.json()["rev"]}"'
    assert alice.get(base).json()["todos"] == []
    weak = alice.delete(base + "?completed=true", headers={"If-Match": f'W/{cleared.headers["ETag"]}'})
    assert weak.status_code == 412                                  # strong comparison, as for one todo


def test_bulk_if_match_lets_one_of_racing_toggles_through(alice: Api):
    """Check and write are one step: of racers holding one ETag, exactly one toggles, every round."""
    for n in range(5):
        alice.create_todo(f"t{n}")
    start = threading.Barrier(RACERS)
    apis = [Api(alice.base_url, alice.token) for _ in range(RACERS)]

    def toggle(api: Api, etag: str, completed: bool):
        start.wait()
        return api.patch("/api/todos/", {"completed": completed}, headers={"If-Match": etag})

    with concurrent.futures.ThreadPoolExecutor(RACERS) as pool:
        for n in range(15):
            etag = alice.get("/api/todos/").headers["ETag"]
            completed = n % 2 == 0
            responses = list(pool.map(toggle, apis, [etag] * RACERS, [completed] * RACERS))
            statuses = sorted(r.status_code for r in responses)
            assert statuses == [200] + [412] * (RACERS - 1), (n, statuses)
            (winner,) = [r.json() for r in responses if r.status_code == 200]
            assert len(winner["todos"]) == 5 and all(t["completed"] is completed for t in winner["todos"])
