"""Streams (docs/api.md "Streams"): the contract of one stream, black-box, against the shared server."""
from __future__ import annotations

import time
import uuid
from typing import Callable

import pytest
import websocket

from tests.support import LIST, Api, Stream, read_until, refused, stream


def change_of(todo_id: str, op: str | None = None) -> Callable[[dict], bool]:
    return lambda m: (m["type"] == "change" and m["todo"]["id"] == todo_id
                      and (op is None or m["op"] == op))


# -- the first messages ---------------------------------------------------------------


def test_fresh_list_stream_sends_snapshot_then_ready(server, alice):
    first, second = alice.create_todo("one"), alice.create_todo("two", completed=True)
    s = stream(server, alice)
    try:
        before, ready = s.sync()
        assert [m["type"] for m in before] == ["snapshot"]
        snapshot = before[0]
        assert snapshot["todos"] == [first, second]          # the todos exactly as REST has them, oldest first
        assert snapshot["rev"] >= second["rev"]
        assert ready == {"type": "ready", "rev": ready["rev"]} and ready["rev"] >= snapshot["rev"]
        s.expect_silence()
    finally:
        s.close()


def test_one_todo_stream_sends_that_todo_its_changes_and_closes_1000_after_delete(server, alice):
    todo, other = alice.create_todo("watched"), alice.create_todo("not watched")
    s = stream(server, alice, f"/api/todos/{todo['id']}/")
    try:
        before, ready = s.sync()
        assert len(before) == 1 and before[0]["type"] == "snapshot"
        assert before[0]["todo"] == todo and before[0]["rev"] >= todo["rev"]
        assert ready["rev"] >= before[0]["rev"]

        alice.patch(f"/api/todos/{other['id']}/", {"title": "elsewhere"})
        updated = alice.patch(f"/api/todos/{todo['id']}/", {"completed": True}).json()
        assert s.recv(10) == {"type": "change", "op": "update", "todo": updated, "rev": updated["rev"],
                              "by": alice.user["username"]}

        assert alice.delete(f"/api/todos/{todo['id']}/").status_code == 204
        deleted = s.recv(10)
        assert deleted["type"] == "change" and deleted["op"] == "delete"
        assert deleted["todo"]["id"] == todo["id"] and deleted["rev"] > updated["rev"]
        assert s.recv(10) is None and s.close_code == 1000
    finally:
        s.close()


# -- changes --------------------------------------------------------------------------


def test_changes_carry_the_todo_right_after_the_change_and_its_rev(server, alice):
    s = stream(server, alice)
    try:
        s.sync()
        created = alice.create_todo("write tests")
        assert s.recv(10) == {"type": "change", "op": "insert", "todo": created, "rev": created["rev"],
                              "by": alice.user["username"]}

        renamed = alice.put(f"/api/todos/{created['id']}/", {"title": "write more tests", "completed": False}).json()
        assert s.recv(10) == {"type": "change", "op": "update", "todo": renamed, "rev": renamed["rev"],
                              "by": alice.user["username"]}

        toggled = alice.patch(LIST, {"completed": True}).json()
        assert toggled["todos"] == [{**renamed, "completed": True, "rev": toggled["todos"][0]["rev"]}]
        assert s.recv(10) == {"type": "change", "op": "update", "todo": toggled["todos"][0],
                              "rev": toggled["todos"][0]["rev"], "by": alice.user["username"]}

        cleared = alice.delete(LIST + "?completed=true").json()
        deleted = s.recv(10)
        assert deleted["op"] == "delete" and deleted["todo"]["id"] == created["id"]
        assert deleted["rev"] == cleared["rev"] > toggled["todos"][0]["rev"]
        s.expect_silence()
    finally:
        s.close()


def test_bulk_statement_delivers_one_change_per_row_in_rev_order(server, alice):
    todos = [alice.create_todo(f"todo {i}") for i in range(5)]
    s = stream(server, alice)
    try:
        s.sync()
        toggled = alice.patch(LIST, {"completed": True}).json()
        messages = read_until(s, lambda m: m["rev"] == toggled["rev"])
        assert [m["todo"]["id"] for m in messages] == [t["id"] for t in todos]
        assert [m["todo"] for m in messages] == toggled["todos"]
        assert len({m["rev"] for m in messages}) == 5
    finally:
        s.close()


def test_client_frames_are_ignored(server, alice):
    s = stream(server, alice)
    try:
        s.sync()
        s.ws.send('{"type": "change", "op": "insert", "todo": {"title": "injected"}}')
        s.ws.send_binary(b"\x00\x01 not json")
        s.ws.send("x" * 10_000)
        s.expect_silence(0.3)
        created = alice.create_todo("through REST")
        assert s.recv(10)["todo"] == created
        assert [t["title"] for t in alice.list_todos()["todos"]] == ["through REST"]
    finally:
        s.close()


def test_a_change_made_with_plain_sql_reaches_the_streams(server, alice, sql):
    s, live = stream(server, alice), stream(server, alice, LIST + "?completed=true")
    try:
        s.sync(), live.sync()
        (todo_id,) = sql("INSERT INTO todos (list_id, title) VALUES (personal_list(%s), 'from psql') RETURNING id",
                         (alice.user["id"],))[0]
        todo_id = str(todo_id)
        inserted = s.recv(10)
        assert inserted["op"] == "insert" and inserted["todo"]["title"] == "from psql"
        assert inserted["todo"] == alice.get(f"/api/todos/{todo_id}/").json()

        sql("UPDATE todos SET completed = true WHERE id = %s", (todo_id,))
        updated = s.recv(10)
        assert updated["op"] == "update" and updated["todo"]["completed"] is True
        assert live.recv(10) == {**updated, "op": "insert"}

        sql("DELETE FROM todos WHERE id = %s", (todo_id,))
        assert s.recv(10)["op"] == "delete"
        gone = live.recv(10)
        assert gone["op"] == "delete" and gone["todo"]["id"] == todo_id
    finally:
        s.close(), live.close()


# -- live queries ---------------------------------------------------------------------


def test_live_query_sends_rows_entering_as_insert_and_leaving_as_delete(server, alice):
    open_before = alice.create_todo("open before")
    alice.create_todo("done before", completed=True)
    s = stream(server, alice, LIST + "?completed=false")
    try:
        before, ready = s.sync()
        assert before == [{"type": "snapshot", "todos": [open_before], "rev": before[0]["rev"]}]

        a = alice.create_todo("a")
        assert s.recv(10) == {"type": "change", "op": "insert", "todo": a, "rev": a["rev"],
                              "by": alice.user["username"]}
        b = alice.create_todo("b", completed=True)                   # never matches: not sent
        b = alice.patch(f"/api/todos/{b['id']}/", {"title": "b, still done"}).json()
        alice.delete(f"/api/todos/{b['id']}/")

        a_done = alice.patch(f"/api/todos/{a['id']}/", {"completed": True}).json()
        leaving = s.recv(10)
        assert leaving["op"] == "delete" and leaving["todo"]["id"] == a["id"] and leaving["rev"] == a_done["rev"]

        a_renamed = alice.patch(f"/api/todos/{a['id']}/", {"title": "a, done"}).json()  # outside: not sent
        a_open = alice.patch(f"/api/todos/{a['id']}/", {"completed": False}).json()
        assert a_open["rev"] > a_renamed["rev"]
        assert s.recv(10) == {"type": "change", "op": "insert", "todo": a_open, "rev": a_open["rev"],
                              "by": alice.user["username"]}

        a_edit = alice.patch(f"/api/todos/{a['id']}/", {"title": "a again"}).json()
        assert s.recv(10) == {"type": "change", "op": "update", "todo": a_edit, "rev": a_edit["rev"],
                              "by": alice.user["username"]}
        alice.delete(f"/api/todos/{a['id']}/")
        assert s.recv(10)["op"] == "delete"
        s.expect_silence()
    finally:
        s.close()


def test_live_query_completed_true_follows_bulk_toggles(server, alice):
    todos = [alice.create_todo(f"t{i}") for i in range(3)]
    s = stream(server, alice, LIST + "?completed=true")
    try:
        before, _ = s.sync()
        assert before[0]["todos"] == []
        done = alice.patch(LIST, {"completed": True}).json()
        entering = read_until(s, lambda m: m["rev"] == done["rev"])
        assert [(m["op"], m["todo"]) for m in entering] == [("insert", t) for t in done["todos"]]
        undone = alice.patch(LIST, {"completed": False}).json()
        leaving = read_until(s, lambda m: m["rev"] == undone["rev"])
        assert [(m["op"], m["todo"]["id"]) for m in leaving] == [("delete", t["id"]) for t in todos]
    finally:
        s.close()


# -- handshakes -----------------------------------------------------------------------


def test_handshake_by_bearer_token_and_by_cookie(server, alice):
    todo = alice.create_todo()
    cookie = f"todopy_session={alice.token}"
    for options in ({"token": alice.token}, {"cookie": cookie}, {"cookie": cookie, "suppress_origin": True}):
        token = options.pop("token", None)
        for path in (LIST, f"/api/todos/{todo['id']}/"):
            s = Stream(server.ws_url, path, token, **options)
            try:
                assert s.sync()[0][0]["type"] == "snapshot"
            finally:
                s.close()


@pytest.mark.parametrize("path", [LIST, LIST + "?completed=true", "/api/todos/%s/" % uuid.uuid4()])
def test_missing_or_bad_credentials_are_401_before_the_upgrade(server, alice, path):
    assert refused(server, path) == 401
    assert refused(server, path, token="not-a-token") == 401
    assert refused(server, path, cookie="todopy_session=not-a-token") == 401
    assert refused(server, path, headers=["Authorization: Basic YWxpY2U6eA=="]) == 401


def test_a_signed_out_token_is_refused(server, alice):
    api = Api(server.base_url, alice.token)
    assert api.delete("/api/session/").status_code == 204
    time.sleep(0.2)   # the revocation reaches the server's token cache through NOTIFY
    assert refused(server, LIST, token=alice.token) == 401


def test_unknown_or_foreign_todo_is_404(server, alice, bob):
    theirs = alice.create_todo("alice's")
    assert refused(server, f"/api/todos/{uuid.uuid4()}/", token=alice.token) == 404
    assert refused(server, f"/api/todos/{theirs['id']}/", token=bob.token) == 404
    assert refused(server, "/api/todos/not-a-uuid/", token=alice.token) == 404


def test_cookie_handshake_from_a_foreign_origin_is_403_same_origin_passes(server, alice):
    cookie = f"todopy_session={alice.token}"
    assert refused(server, LIST, cookie=cookie, origin="https://evil.example") == 403
    assert refused(server, LIST, cookie=cookie, origin="null") == 403
    for ok in (Stream(server.ws_url, LIST, cookie=cookie, origin=server.base_url),
               Stream(server.ws_url, LIST, alice.token, origin="https://evil.example")):   # bearer: not a browser's
        try:
            assert ok.sync()[0][0]["type"] == "snapshot"
        finally:
            ok.close()


@pytest.mark.parametrize("query", ["since=abc", "since=-1", "since=1.5", "since=", "since=%C2%B2",
                                   "since=1e3", "since=99999999999999999999999"])
def test_malformed_since_is_422_before_the_upgrade(server, alice, query):
    assert refused(server, f"{LIST}?{query}", token=alice.token) == 422


@pytest.mark.parametrize("query", ["completed=yes", "completed=", "completed=True", "completed=1"])
def test_bad_completed_is_422(server, alice, query):
    assert refused(server, f"{LIST}?{query}", token=alice.token) == 422


def test_refusals_are_json_errors(server, alice):
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        Stream(server.ws_url, LIST + "?since=x", alice.token)
    assert caught.value.resp_headers["content-type"].startswith("application/json")


# -- isolation ------------------------------------------------------------------------


def test_streams_never_carry_another_users_changes(server, alice, bob):
    mine = bob.create_todo("bob's")
    theirs = alice.create_todo("alice's")
    streams = [stream(server, bob), stream(server, bob, LIST + "?completed=true"),
               stream(server, bob, LIST + "?completed=false"), stream(server, bob, LIST + "?since=1"),
               stream(server, bob, f"/api/todos/{mine['id']}/")]
    try:
        for s in streams:
            before, _ = s.sync()
            for message in before:
                ids = [t["id"] for t in message.get("todos", [])] + [message.get("todo", {}).get("id")]
                assert theirs["id"] not in ids
        alice.create_todo("alice's second", completed=True)
        alice.patch(f"/api/todos/{theirs['id']}/", {"completed": True})
        alice.patch(LIST, {"completed": False})
        alice.delete(f"/api/todos/{theirs['id']}/")
        marker = bob.patch(f"/api/todos/{mine['id']}/", {"completed": True}).json()
        for s in streams:
            message = s.recv(10)
            assert message["todo"]["id"] == mine["id"] and message["rev"] == marker["rev"], message
            s.expect_silence(0.1)
    finally:
        for s in streams:
            s.close()
