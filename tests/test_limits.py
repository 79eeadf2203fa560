"""Limits that hold against a greedy or hostile user (issue 21): counted for every path
that adds, exact under concurrency, and the server's own descriptors kept for everyone."""
from __future__ import annotations

import concurrent.futures
import json
import math
import threading
import uuid
from typing import Callable

import pytest
import requests
import websocket

from tests.support import LIST, Api, Stream, metric, new_list, refused, register, stream
from todopy.views.lists import MAX_LISTS_PER_USER, MAX_MEMBERS_PER_LIST
from todopy.writes import MAX_TODOS_PER_LIST

RACE_ROUNDS = 5       # each round is one burst of concurrent requests racing for the last places


def at_once(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Run every call in its own thread, released together, and return their responses."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], requests.Response]) -> requests.Response:
        start.wait()
        return call()

    with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def make_users(sql, count: int) -> list[dict]:
    """Users made by SQL (no password hashing): enough to be added to lists by name."""
    tag = uuid.uuid4().hex[:8]
    rows = sql("INSERT INTO users (username, password_hash) SELECT 'x' || n || %s, 'x'"
               " FROM generate_series(1, %s) n RETURNING id::text, username", (tag, count))
    return [{"id": row[0], "username": row[1]} for row in rows]


def give_lists(sql, user_id: str, count: int) -> None:
    """`count` more lists for the user, owned by others (SQL writers)."""
    owners = make_users(sql, count)
    sql("WITH made AS (INSERT INTO lists (owner, title) SELECT id::uuid, 'theirs' FROM unnest(%s::text[]) id"
        " RETURNING id) INSERT INTO memberships (list_id, user_id, role) SELECT id, %s, 'viewer' FROM made",
        ([owner["id"] for owner in owners], user_id))


def codes(responses: list[requests.Response]) -> list[tuple[int, str | None]]:
    return sorted((r.status_code, r.json()["error"]["code"] if r.status_code >= 400 else None) for r in responses)


# -- 1. memberships count toward the lists limit ------------------------------------

def test_being_added_to_lists_counts_toward_the_lists_limit_and_leaving_frees_a_place(alice: Api, bob: Api,
                                                                                     server, sql):
    give_lists(sql, alice.user["id"], MAX_LISTS_PER_USER - 2)       # with her personal list: one place left
    bobs = [new_list(bob, f"bob's {n}") for n in range(2)]
    watch = stream(server, alice, "/api/lists/")
    try:
        watch.sync()
        added = bob.put(f"/api/lists/{bobs[0]['id']}/members/{alice.user['username']}/", {"role": "viewer"})
        assert added.status_code == 201
        # She learns she was added: her lists stream says so at once.
        news = watch.recv(timeout=10)
        assert news["type"] == "change" and news["op"] == "insert" and news["list"]["id"] == bobs[0]["id"]
    finally:
        watch.close()
    full = bob.put(f"/api/lists/{bobs[1]['id']}/members/{alice.user['username']}/", {"role": "viewer"})
    assert full.status_code == 409 and full.json()["error"]["code"] == "limit_reached"
    assert "lists" in full.json()["error"]["message"]
    assert len(alice.get("/api/lists/").json()["lists"]) == MAX_LISTS_PER_USER
    # She refuses the list she did not ask for by leaving it; then she can make her own.
    assert alice.delete(f"/api/lists/{bobs[0]['id']}/members/{alice.user['username']}/").status_code == 204
    assert alice.post("/api/lists/", {"title": "mine"}).status_code == 201


def test_concurrent_adds_and_creates_never_exceed_the_lists_limit(server, sql):
    alice = register(server.base_url)
    owners = [register(server.base_url) for _ in range(6)]
    for round_ in range(RACE_ROUNDS):
        have = len(alice.get("/api/lists/").json()["lists"])
        give_lists(sql, alice.user["id"], MAX_LISTS_PER_USER - 3 - have)     # three places left
        theirs = [new_list(owner, f"r{round_}") for owner in owners]
        calls = [lambda lst=lst, owner=owner: owner.put(f"/api/lists/{lst['id']}/members/{alice.user['username']}/",
                                                         {"role": "viewer"}) for lst, owner in zip(theirs, owners)]
        calls += [lambda n=n: alice.post("/api/lists/", {"title": f"own {n}"}) for n in range(6)]
        answers = at_once(calls)
        assert sum(r.status_code == 201 for r in answers) == 3, codes(answers)
        assert all(r.status_code == 201 or r.json()["error"]["code"] == "limit_reached" for r in answers)
        (count,), = sql("SELECT count(*) FROM memberships WHERE user_id = %s", (alice.user["id"],))
        assert count == MAX_LISTS_PER_USER, f"round {round_}"
        # Free the places again for the next round: leave the lists others added her to.
        sql("DELETE FROM memberships WHERE user_id = %s AND role <> 'owner'", (alice.user["id"],))


# -- 2. the members limit under concurrency ------------------------------------------

def test_concurrent_adds_never_exceed_the_members_limit(alice: Api, sql):
    for round_ in range(RACE_ROUNDS):
        lst = new_list(alice, f"crowded {round_}")
        present = make_users(sql, MAX_MEMBERS_PER_LIST - 10)
        sql("INSERT INTO memberships (list_id, user_id, role) SELECT %s, id::uuid, 'viewer' FROM unnest(%s::text[]) id",
            (lst["id"], [user["id"] for user in present]))
        newcomers = make_users(sql, 30)
        answers = at_once([lambda user=user: alice.put(f"/api/lists/{lst['id']}/members/{user['username']}/",
                                                        {"role": "viewer"}) for user in newcomers])
        assert codes(answers) == [(201, None)] * 9 + [(409, "limit_reached")] * 21, f"round {round_}"
        (count,), = sql("SELECT count(*) FROM memberships WHERE list_id = %s", (lst["id"],))
        assert count == MAX_MEMBERS_PER_LIST


def test_concurrent_creates_never_exceed_the_todos_limit(alice: Api, sql):
    sql("INSERT INTO todos (list_id, title) SELECT personal_list(%s), 't' FROM generate_series(1, %s)",
        (alice.user["id"], MAX_TODOS_PER_LIST - 5))
    for round_ in range(RACE_ROUNDS):
        answers = at_once([lambda n=n: alice.post(LIST, {"title": f"race {n}"}) for n in range(20)])
        assert sum(r.status_code == 201 for r in answers) == 5, codes(answers)
        (count,), = sql("SELECT count(*) FROM todos WHERE list_id = personal_list(%s)", (alice.user["id"],))
        assert count == MAX_TODOS_PER_LIST, f"round {round_}"
        sql("DELETE FROM todos WHERE list_id = personal_list(%s) AND title LIKE 'race %%'", (alice.user["id"],))


# -- 5. ids are not reused across lists ----------------------------------------------

def test_a_deleted_lists_id_is_taken_for_good(alice: Api, bob: Api):
    lid = str(uuid.uuid4())
    assert alice.post("/api/lists/", {"id": lid, "title": "short-lived"}).status_code == 201
    assert alice.delete(f"/api/lists/{lid}/").status_code == 204
    for who in (alice, bob):
        again = who.post("/api/lists/", {"id": lid, "title": "again"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "id_taken", again.text
    assert lid not in {lst["id"] for lst in alice.get("/api/lists/").json()["lists"]}


def test_a_deleted_todos_id_comes_back_only_to_its_own_list(alice: Api, sql):
    other = new_list(alice, "other")
    tid = str(uuid.uuid4())
    assert alice.post(LIST, {"id": tid, "title": "undo me"}).status_code == 201
    assert alice.delete(f"{LIST}{tid}/").status_code == 204
    moved = alice.post(f"/api/lists/{other['id']}/todos/", {"id": tid, "title": "elsewhere"})
    assert moved.status_code == 409 and moved.json()["error"]["code"] == "id_taken"
    # A list's id is not a todo's either, and neither is a deleted list's todos' ids.
    gone = new_list(alice, "gone")
    inner = str(uuid.uuid4())
    assert alice.post(f"/api/lists/{gone['id']}/todos/", {"id": inner, "title": "in a list"}).status_code == 201
    assert alice.delete(f"/api/lists/{gone['id']}/").status_code == 204
    for reused in (inner, gone["id"]):
        taken = alice.post(LIST, {"id": reused, "title": "reused"})
        assert taken.status_code == 409 and taken.json()["error"]["code"] == "id_taken", taken.text
    # Undo puts it back where it was, with its id.
    assert alice.post(LIST, {"id": tid, "title": "undo me"}).status_code == 201
    # The rule is the database's: a SQL writer cannot reuse the id either.
    with pytest.raises(Exception, match="taken"):
        sql("INSERT INTO todos (id, list_id, title) VALUES (%s, %s, 'psql')", (inner, other["id"]))


# -- 3. streams per user, and descriptors --------------------------------------------

def test_streams_per_user_are_capped_with_429_and_retry_after(start_server):
    server = start_server(env={"TODOPY_MAX_STREAMS_PER_USER": "3"})
    alice, bob = register(server.base_url), register(server.base_url)
    opened = [stream(server, alice, path) for path in (LIST, "/api/lists/", LIST + "?completed=true")]
    try:
        for s in opened:
            s.sync()
        with pytest.raises(websocket.WebSocketBadStatusException) as caught:
            stream(server, alice).close()
        assert caught.value.status_code == 429
        assert json.loads(caught.value.resp_body)["error"]["code"] == "too_many_streams"
        assert int(caught.value.resp_headers["retry-after"]) >= 1
        assert refused(server, "/api/lists/", alice.token) == 429
        # Another user is not affected, nor alice's REST.
        other = stream(server, bob)
        other.sync()
        other.close()
        assert alice.get(LIST).status_code == 200
        # A closed stream gives its place back.
        opened.pop().close()
        again = None
        for _ in range(50):
            try:
                again = stream(server, alice)
                break
            except Exception:
                threading.Event().wait(0.1)
        assert again is not None
        opened.append(again)
        page = requests.get(server.base_url + "/metrics", timeout=10).text
        assert metric(page, "todopy_streams_refused_total", 'limit="streams_per_user"') >= 2
    finally:
        for s in opened:
            s.close()


def _open_until_refused(server, api: Api, most: int, into: list[Stream]) -> int:
    """Open streams as `api` until one is refused; the refusal's status (0: never refused)."""
    for _ in range(most):
        try:
            into.append(stream(server, api, "/api/lists/", timeout=20))
        except Exception as error:          # websocket-client's refusal carries the status
            return getattr(error, "status_code", -1)
    return 0


def _still_serving(server) -> None:
    """/healthz, and a sign-up and a sign-in of someone new, all answer."""
    assert requests.get(server.base_url + "/healthz", timeout=5).status_code == 200
    newcomer = register(server.base_url)
    signed = requests.post(server.base_url + "/api/session/", timeout=10,
                           json={"username": newcomer.user["username"], "password": "correct horse"})
    assert signed.status_code == 200
    assert newcomer.get(LIST).status_code == 200


def test_a_user_at_the_stream_cap_leaves_descriptors_for_everyone(start_server):
    # A soft limit of 64 open files, as a service may be started with: the server raises it to
    # the hard limit, so the default cap of 100 streams per user fits, and then holds.
    server = start_server(open_files=(64, 400))
    greedy = register(server.base_url)
    held: list[Stream] = []
    try:
        status = _open_until_refused(server, greedy, 150, held)
        assert status == 429 and len(held) == 100
        _still_serving(server)
    finally:
        for s in held:
            s.close()


def test_streams_are_refused_before_descriptors_run_out(start_server):
    # 400 descriptors, 200 kept in reserve: two users at their cap of 100 fill what streams may use.
    server = start_server(open_files=(400, 400), env={"TODOPY_FD_RESERVE": "200"})
    held: list[Stream] = []
    try:
        for _ in range(2):
            assert _open_until_refused(server, register(server.base_url), 100, held) == 0
        assert _open_until_refused(server, register(server.base_url), 10, held) == 503
        _still_serving(server)
        page = requests.get(server.base_url + "/metrics", timeout=10).text
        assert metric(page, "todopy_streams_refused_total", 'limit="descriptors"') >= 1
    finally:
        for s in held:
            s.close()


# -- 4. the write budget ----------------------------------------------------------------

def test_the_write_budget_counts_changed_rows_and_answers_slow_down(start_server, sql):
    server = start_server(env={"TODOPY_WRITE_BURST": "100", "TODOPY_WRITE_RATE": "50"})
    alice, bob = register(server.base_url), register(server.base_url)
    sql("INSERT INTO todos (list_id, title) SELECT personal_list(%s), 't' FROM generate_series(1, 80)",
        (alice.user["id"],))
    assert alice.patch(LIST, {"completed": True}).status_code == 200       # 80 rows: 20 left
    assert alice.patch(LIST, {"completed": False}).status_code == 200      # 80 more: 60 in debt
    (before,), = sql("SELECT count(*) FROM changes WHERE list_id = personal_list(%s)", (alice.user["id"],))
    slow = alice.patch(LIST, {"completed": True})
    assert slow.status_code == 429 and slow.json()["error"]["code"] == "slow_down"
    wait = int(slow.headers["Retry-After"])
    assert 1 <= wait <= math.ceil(61 / 50) + 1
    assert alice.post(LIST, {"title": "one more"}).status_code == 429
    (after,), = sql("SELECT count(*) FROM changes WHERE list_id = personal_list(%s)", (alice.user["id"],))
    assert after == before                        # a refused write changes nothing
    assert alice.get(LIST).status_code == 200     # reading is not writing
    assert bob.create_todo("unaffected")["title"] == "unaffected"
    page = requests.get(server.base_url + "/metrics", timeout=10).text
    assert metric(page, "todopy_writes_refused_total") >= 2
    threading.Event().wait(wait + 0.2)
    assert alice.post(LIST, {"title": "after the wait"}).status_code == 201
