"""docs/api.md "Activity: who changed what": authors on stream messages and the activity route, paged,
read as the list's other routes are (members only, from when they joined)."""
from __future__ import annotations

import psycopg2
import pytest

from tests.support import Api, Stream, new_list, register, share


@pytest.fixture
def alice(server) -> Api:
    return register(server.base_url)


@pytest.fixture
def bob(server) -> Api:
    return register(server.base_url)


def activity(api: Api, list_id: str, query: str = "") -> dict:
    response = api.get(f"/api/lists/{list_id}/activity/{query}")
    assert response.status_code == 200, response.text
    return response.json()


def test_activity_names_each_change_and_its_author_newest_first(alice, bob):
    lst = new_list(alice, "Shared")
    share(alice, lst["id"], bob, "editor")
    todo = bob.post(f"/api/lists/{lst['id']}/todos/", {"title": "milk"}).json()
    done = alice.patch(f"/api/lists/{lst['id']}/todos/{todo['id']}/", {"completed": True}).json()
    alice.patch(f"/api/lists/{lst['id']}/", {"title": "Shopping"})
    bob.delete(f"/api/lists/{lst['id']}/todos/{todo['id']}/")

    changes = activity(alice, lst["id"])["changes"]
    assert [(c["kind"], c["op"], c["by"]) for c in changes] == [
        ("todo", "delete", bob.user["username"]), ("list", "update", alice.user["username"]),
        ("todo", "update", alice.user["username"]), ("todo", "insert", bob.user["username"]),
        ("member", "insert", alice.user["username"]), ("member", "insert", alice.user["username"])]
    assert changes[2]["todo"] == done and changes[3]["todo"] == todo
    assert changes[1]["list"] == {"title": "Shopping"}
    assert changes[4]["member"] == {"username": bob.user["username"], "role": "editor"}
    assert changes[5]["member"] == {"username": alice.user["username"], "role": "owner"}
    assert [c["rev"] for c in changes] == sorted((c["rev"] for c in changes), reverse=True)
    assert all(c["time"].endswith("+00:00") for c in changes)


def test_activity_pages_backwards_with_next_until_null(alice):
    lst = new_list(alice)
    for n in range(5):
        alice.post(f"/api/lists/{lst['id']}/todos/", {"title": f"t{n}"})
    seen, query = [], "?limit=2"
    while True:
        page = activity(alice, lst["id"], query)
        assert len(page["changes"]) <= 2
        seen += [c["rev"] for c in page["changes"]]
        if page["next"] is None:
            break
        assert page["next"] == page["changes"][-1]["rev"]
        query = f"?limit=2&before={page['next']}"
    assert seen == list(range(6, 0, -1))          # 5 todos and the owner's joining, each once


def test_a_members_activity_starts_when_they_joined_and_strangers_get_404(alice, bob, server):
    lst = new_list(alice)
    alice.post(f"/api/lists/{lst['id']}/todos/", {"title": "before bob"})
    share(alice, lst["id"], bob, "viewer")
    after = alice.post(f"/api/lists/{lst['id']}/todos/", {"title": "after bob"}).json()
    changes = activity(bob, lst["id"])["changes"]
    assert [c.get("todo", {}).get("title") for c in changes] == ["after bob", None]
    assert changes[0]["todo"] == after and changes[1]["member"]["username"] == bob.user["username"]

    stranger = register(server.base_url)
    assert stranger.get(f"/api/lists/{lst['id']}/activity/").status_code == 404
    alice.delete(f"/api/lists/{lst['id']}/members/{bob.user['username']}/")
    assert bob.get(f"/api/lists/{lst['id']}/activity/").status_code == 404
    assert Api(server.base_url).get(f"/api/lists/{lst['id']}/activity/").status_code == 401


@pytest.mark.parametrize("query", ["?before=0", "?before=-1", "?before=x", "?before=01", "?limit=0", "?limit=201",
                                   "?limit=", "?before=1234567890123456789", "?limit=\u0661"])
def test_activity_refuses_bad_paging_with_422(alice, query):
    lst = new_list(alice)
    response = alice.get(f"/api/lists/{lst['id']}/activity/{query}")
    assert response.status_code == 422, (query, response.text)
    field = "before" if "before" in query else "limit"
    assert field in response.json()["error"]["message"]


def test_a_database_writer_is_the_author_it_names_or_none(alice, server, dsn):
    lst = new_list(alice)
    s = Stream(server.ws_url, f"/api/lists/{lst['id']}/todos/", alice.token)
    conn = psycopg2.connect(dsn)
    try:
        s.sync()
        with conn, conn.cursor() as cur:
            cur.execute("INSERT INTO todos (id, list_id, title) VALUES (gen_random_uuid(), %s, 'anonymous')",
                        (lst["id"],))
        with conn, conn.cursor() as cur:
            cur.execute("SELECT set_config('todopy.user', %s, true)", (alice.user["id"],))
            cur.execute("INSERT INTO todos (id, list_id, title) VALUES (gen_random_uuid(), %s, 'named')",
                        (lst["id"],))
        anonymous, named = s.recv(10), s.recv(10)
        assert (anonymous["todo"]["title"], anonymous["by"]) == ("anonymous", None)
        assert (named["todo"]["title"], named["by"]) == ("named", alice.user["username"])
        assert [c["by"] for c in activity(alice, lst["id"])["changes"][:2]] == [alice.user["username"], None]
    finally:
        conn.close()
        s.close()


def test_list_messages_and_resumed_changes_carry_their_author(alice, bob, server):
    lst = new_list(alice)
    share(alice, lst["id"], bob, "editor")
    path = f"/api/lists/{lst['id']}/todos/"
    s = Stream(server.ws_url, path, alice.token)
    try:
        _, ready = s.sync()
        bob.patch(f"/api/lists/{lst['id']}/", {"title": "Bob's now"})
        message = s.recv(10)
        assert message["type"] == "list" and message["by"] == bob.user["username"]
    finally:
        s.close()
    todo = bob.post(path, {"title": "while away"}).json()
    resumed = Stream(server.ws_url, f"{path}?since={ready['rev']}", alice.token)
    try:
        messages, _ = resumed.sync()
        assert [m["by"] for m in messages] == [bob.user["username"]] * 2
        assert messages[1] == {"type": "change", "op": "insert", "todo": todo, "rev": todo["rev"],
                               "by": bob.user["username"]}
    finally:
        resumed.close()
