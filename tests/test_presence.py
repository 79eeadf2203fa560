"""docs/api.md "Presence": who has a list open and what they edit, across server processes; gone at once on a
clean close, within the timeout when a tab goes quiet; only for the list's members."""
from __future__ import annotations

import json
import time

import pytest
import websocket

from tests.support import Stream, expect_close, new_list, read_until, register, share

TIMEOUT = "3"          # TODOPY_PRESENCE_TIMEOUT for these servers: quiet tabs go within seconds


@pytest.fixture
def pair(start_server):
    env = {"TODOPY_PRESENCE_TIMEOUT": TIMEOUT}
    return start_server(env), start_server(env)


def here(s: Stream, editing: str | None = None) -> None:
    s.ws.send(json.dumps({"type": "presence", "editing": editing}))


def until_users(s: Stream, users: list[dict], timeout: float = 10, editing: str | None = None) -> float:
    """Read until a presence message lists exactly `users`; the seconds it took. Meanwhile the
    stream's tab beats every second (as the page does), so that it stays present itself."""
    start = time.monotonic()
    while True:
        left = start + timeout - time.monotonic()
        assert left > 0, f"presence never became {users}"
        here(s, editing)
        try:
            read_until(s, lambda m: m["type"] == "presence" and m["users"] == users, min(1.0, left))
            return time.monotonic() - start
        except (AssertionError, websocket.WebSocketTimeoutException):
            continue


def todos_path(list_id: str) -> str:
    return f"/api/lists/{list_id}/todos/"


def test_people_in_a_list_are_seen_across_processes_with_what_they_edit_and_leave_at_once(pair):
    a, b = pair
    alice, bob = register(a.base_url), register(a.base_url)
    lst = new_list(alice)
    share(alice, lst["id"], bob, "editor")
    todo = alice.post(todos_path(lst["id"]), {"title": "milk"}).json()
    sa, sb = Stream(a.ws_url, todos_path(lst["id"]), alice.token), Stream(b.ws_url, todos_path(lst["id"]), bob.token)
    try:
        sa.sync(), sb.sync()
        here(sa), here(sb)
        me, him = alice.user["username"], bob.user["username"]
        both = sorted([{"username": me, "editing": None}, {"username": him, "editing": None}],
                      key=lambda u: u["username"].lower())
        until_users(sa, both)
        until_users(sb, both)
        here(sb, todo["id"])
        editing = [{**u, "editing": todo["id"] if u["username"] == him else None} for u in both]
        assert until_users(sa, editing) < 2
        sb.close()                                            # a clean close: gone at once
        assert until_users(sa, [{"username": me, "editing": None}]) < 2
    finally:
        sa.close(), sb.close()


def test_a_quiet_tab_is_gone_within_the_timeout_and_a_viewer_edits_nothing(pair):
    a, b = pair
    alice, carol = register(a.base_url), register(a.base_url)
    lst = new_list(alice)
    share(alice, lst["id"], carol, "viewer")
    todo = alice.post(todos_path(lst["id"]), {"title": "milk"}).json()
    sa, sc = Stream(a.ws_url, todos_path(lst["id"]), alice.token), Stream(b.ws_url, todos_path(lst["id"]), carol.token)
    try:
        sa.sync(), sc.sync()
        here(sa)
        here(sc, todo["id"])                               # a viewer: shown, but editing nothing
        me, her = alice.user["username"], carol.user["username"]
        until_users(sa, sorted([{"username": me, "editing": None}, {"username": her, "editing": None}],
                               key=lambda u: u["username"].lower()))
        # carol's tab says nothing more (and answers no ping): gone within the timeout and a beat.
        gone = until_users(sa, [{"username": me, "editing": None}], timeout=15)
        print(f"\na quiet tab left the list's presence after {gone:.1f}s (timeout {TIMEOUT}s)")
        assert gone <= 3 * float(TIMEOUT)
    finally:
        sa.close(), sc.close()


def test_a_removed_member_leaves_the_presence_and_hears_no_more(server):
    alice, bob, dave = register(server.base_url), register(server.base_url), register(server.base_url)
    lst, other = new_list(alice), new_list(dave, "Dave's")
    share(alice, lst["id"], bob, "editor")
    sa = Stream(server.ws_url, todos_path(lst["id"]), alice.token)
    sb = Stream(server.ws_url, todos_path(lst["id"]), bob.token)
    sd = Stream(server.ws_url, todos_path(other["id"]), dave.token)
    try:
        sa.sync(), sb.sync(), sd.sync()
        here(sa), here(sb), here(sd)
        me, him = alice.user["username"], bob.user["username"]
        until_users(sa, sorted([{"username": me, "editing": None}, {"username": him, "editing": None}],
                               key=lambda u: u["username"].lower()))
        until_users(sd, [{"username": dave.user["username"], "editing": None}])   # another list: only dave
        alice.delete(f"/api/lists/{lst['id']}/members/{him}/")
        messages = expect_close(sb, 4403)
        assert all(m["type"] == "presence" for m in messages)
        until_users(sa, [{"username": me, "editing": None}])
        sd.expect_silence(1.0)                                 # nothing of alice's list reaches dave
    finally:
        sa.close(), sb.close(), sd.close()


@pytest.mark.parametrize("frame", ['{"type": "presence", "editing": "nope"}', "[]", "{", '{"type": "presence"}',
                                   '{"type": "presence", "editing": null, "list": "other"}', "x" * 5000])
def test_a_stream_that_never_says_a_valid_presence_frame_gets_no_presence_and_stays_open(server, frame):
    alice = register(server.base_url)
    s = Stream(server.ws_url, "/api/todos/", alice.token)
    try:
        s.sync()
        s.ws.send(frame)
        s.expect_silence(0.5)
        todo = alice.create_todo("still served")
        assert read_until(s, lambda m: m["type"] == "change")[-1]["todo"] == todo
    finally:
        s.close()
