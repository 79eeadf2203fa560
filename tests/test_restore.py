"""docs/api.md "Client-chosen ids": a deleted todo created again with its id (undo) comes back in its place."""
from __future__ import annotations

import uuid

from tests.support import new_list, read_until, register, Stream


def test_a_deleted_todo_restored_with_its_id_takes_its_old_place_and_created_time(server):
    alice = register(server.base_url)
    first, middle, last = (alice.create_todo(title) for title in ("first", "middle", "last"))
    assert alice.delete(f"/api/todos/{middle['id']}/").status_code == 204
    s = Stream(server.ws_url, "/api/todos/", alice.token)
    try:
        s.sync()
        restored = alice.post("/api/todos/", {"id": middle["id"], "title": "middle"})
        assert restored.status_code == 201
        assert restored.json()["created_time"] == middle["created_time"]
        assert [t["id"] for t in alice.list_todos()["todos"]] == [first["id"], middle["id"], last["id"]]
        (change,) = read_until(s, lambda m: m["type"] == "change")
        assert change["op"] == "insert" and change["todo"]["created_time"] == middle["created_time"]
    finally:
        s.close()


def test_restored_twice_it_still_comes_back_in_place_and_a_fresh_id_is_new(server):
    alice = register(server.base_url)
    first, second = alice.create_todo("first"), alice.create_todo("second")
    for _ in range(2):
        alice.delete(f"/api/todos/{first['id']}/")
        assert alice.post("/api/todos/", {"id": first["id"], "title": "first"}).json() == {
            **first, "rev": alice.get(f"/api/todos/{first['id']}/").json()["rev"]}
    assert [t["id"] for t in alice.list_todos()["todos"]] == [first["id"], second["id"]]
    fresh = alice.post("/api/todos/", {"id": str(uuid.uuid4()), "title": "new"}).json()
    assert fresh["created_time"] > second["created_time"]


def test_another_lists_deleted_todo_cannot_be_restored_here(server):
    alice = register(server.base_url)
    other = new_list(alice, "Other")
    todo = alice.post(f"/api/lists/{other['id']}/todos/", {"title": "elsewhere"}).json()
    alice.delete(f"/api/lists/{other['id']}/todos/{todo['id']}/")
    response = alice.post("/api/todos/", {"id": todo["id"], "title": "elsewhere"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "id_taken"
