"""Access in the list's order: a membership change and a todo change are ordered by the list's revs,
for every request, stream and process alike (issue 19's findings, each raced as an attacker would)."""
from __future__ import annotations

import random
import socket
import threading
import time
import urllib.parse

import pytest
import websocket

from tests.support import Api, Stream, new_list, register, share

ROUNDS = 60       # each race below has a window of a few percent of its rounds, or less


def todos_path(list_id: str) -> str:
    return f"/api/lists/{list_id}/todos/"


@pytest.fixture
def second(start_server):
    """A second server process on the same database: access must hold across processes."""
    return start_server()


def removal_rev(sql, list_id: str, user_id: str) -> int:
    rows = sql("SELECT max(rev) FROM changes WHERE list_id = %s AND kind = 'member' AND op = 'delete'"
               " AND user_id = %s", (list_id, user_id))
    assert rows[0][0] is not None
    return rows[0][0]


def open_stream(server, path: str, token: str) -> Stream | int:
    """The stream, or the handshake's refusal status."""
    try:
        return Stream(server.ws_url, path, token)
    except websocket.WebSocketBadStatusException as error:
        return error.status_code


def test_a_stream_opened_while_its_member_is_removed_never_outlives_the_removal(server, second, alice: Api, sql):
    lst = new_list(alice)
    path = todos_path(lst["id"])
    survivors = []
    for round_ in range(ROUNDS):
        bob = register(server.base_url)
        share(alice, lst["id"], bob, "viewer")
        opened: list[Stream | int] = []
        opener = threading.Thread(target=lambda: opened.append(open_stream(second, path, bob.token)))
        opener.start()
        time.sleep(random.uniform(0, 0.02))
        assert alice.delete(f"/api/lists/{lst['id']}/members/{bob.user['username']}/").status_code == 204
        opener.join()
        stream = opened[0]
        if isinstance(stream, int):
            assert stream == 404
            continue
        try:
            after = alice.post(path, {"title": f"after the removal {round_}"}).json()
            # The stream may have synced before the removal; then the removal reaches it, and it ends.
            while True:
                message = stream.recv(10)
                if message is None:
                    assert stream.close_code == 4403
                    break
                if message.get("type") == "change" and message["todo"]["id"] == after["id"]:
                    survivors.append(round_)
                    break
        finally:
            stream.close()
    assert survivors == [], f"removed members kept streaming in rounds {survivors}"


def raw_request(server, method: str, path: str, token: str, body: bytes, before_body) -> tuple[int, bytes]:
    """Send a request's headers, run `before_body`, then send its body: the status and body answered."""
    url = urllib.parse.urlsplit(server.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=20) as conn:
        conn.sendall((f"{method} {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                      "Connection: close\r\n\r\n").encode())
        time.sleep(0.3)         # the server has read the headers, checked the role, and waits for the body
        before_body()
        conn.sendall(body)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), payload


@pytest.mark.parametrize("loss, status", [("removed", 404), ("viewer", 403), ("signed_out", 401)])
def test_a_body_sent_after_its_sender_lost_access_writes_nothing(server, alice: Api, bob: Api, sql, loss, status):
    lst = new_list(alice)
    share(alice, lst["id"], bob, "editor")
    rev = alice.get(f"/api/lists/{lst['id']}/").json()["rev"]

    def lose_access() -> None:
        if loss == "removed":
            alice.delete(f"/api/lists/{lst['id']}/members/{bob.user['username']}/")
        elif loss == "viewer":
            alice.put(f"/api/lists/{lst['id']}/members/{bob.user['username']}/", {"role": "viewer"})
        else:
            bob.delete("/api/session/")

    got, payload = raw_request(server, "POST", todos_path(lst["id"]), bob.token, b'{"title": "defaced"}',
                               lose_access)
    assert got == status, payload
    todos = alice.get(todos_path(lst["id"])).json()
    assert todos["todos"] == [] and todos["rev"] == rev + (0 if loss == "signed_out" else 1)


def test_a_write_racing_its_writers_removal_is_ordered_before_it_or_refused(server, second, alice: Api, sql):
    lst = new_list(alice)
    path = todos_path(lst["id"])
    for round_ in range(ROUNDS):
        bob = register(second.base_url)
        share(alice, lst["id"], bob, "editor")
        results: list[int] = []
        writer = threading.Thread(target=lambda: results.append(bob.post(path, {"title": f"racing {round_}"})
                                                                .status_code))
        writer.start()
        time.sleep(random.uniform(0, 0.01))
        assert alice.delete(f"/api/lists/{lst['id']}/members/{bob.user['username']}/").status_code == 204
        writer.join()
        removed_at = removal_rev(sql, lst["id"], bob.user["id"])
        written = sql("SELECT rev FROM changes WHERE list_id = %s AND kind = 'todo' AND title = %s",
                      (lst["id"], f"racing {round_}"))
        assert results[0] in (201, 404), results
        if results[0] == 201:
            assert len(written) == 1 and written[0][0] < removed_at, (round_, written, removed_at)
        else:
            assert written == [], (round_, written)


def test_a_new_members_history_starts_when_they_joined(server, alice: Api, bob: Api):
    lst = new_list(alice)
    path = todos_path(lst["id"])
    secret = alice.post(path, {"title": "before bob"}).json()
    assert alice.delete(f"{path}{secret['id']}/").status_code == 204
    alice.patch(f"/api/lists/{lst['id']}/", {"title": "a title bob never saw"})
    kept = alice.post(path, {"title": "still here"}).json()
    share(alice, lst["id"], bob, "viewer")
    for since in (0, secret["rev"], kept["rev"] - 1):
        resumed = Stream(server.ws_url, f"{path}?since={since}", bob.token)
        try:
            messages, ready = resumed.sync()
            assert [m["type"] for m in messages] == ["snapshot"], messages
            assert [t["id"] for t in messages[0]["todos"]] == [kept["id"]]
        finally:
            resumed.close()
    # From the join on, a resume is a resume.
    joined = alice.get(f"/api/lists/{lst['id']}/").json()["rev"]
    later = alice.post(path, {"title": "after bob joined"}).json()
    resumed = Stream(server.ws_url, f"{path}?since={joined}", bob.token)
    try:
        messages, _ = resumed.sync()
        assert messages == [{"type": "change", "op": "insert", "todo": later, "rev": later["rev"],
                             "by": alice.user["username"]}]
    finally:
        resumed.close()


def test_a_removal_older_than_a_streams_start_does_not_end_it(server, second, alice: Api, bob: Api):
    lst = new_list(alice)
    path = todos_path(lst["id"])
    member = f"/api/lists/{lst['id']}/members/{bob.user['username']}/"
    share(alice, lst["id"], bob, "viewer")
    watcher = Stream(second.ws_url, path, alice.token)     # keeps the list followed on the second process
    watcher.sync()
    spurious = []
    try:
        for round_ in range(ROUNDS):
            assert alice.delete(member).status_code == 204
            assert alice.put(member, {"role": "viewer"}).status_code == 201
            stream = Stream(second.ws_url, path, bob.token)
            try:
                stream.sync()
                todo = alice.post(path, {"title": f"round {round_}"}).json()
                while True:
                    message = stream.recv(10)
                    if message is None:
                        spurious.append((round_, stream.close_code))
                        break
                    if message.get("type") == "change" and message["todo"]["id"] == todo["id"]:
                        break
            finally:
                stream.close()
    finally:
        watcher.close()
    assert spurious == []


def test_a_membership_moved_with_sql_ends_the_old_members_stream_and_tells_the_new_one(server, alice: Api, bob: Api,
                                                                                       sql):
    carol = register(server.base_url)
    lst = new_list(alice)
    share(alice, lst["id"], bob, "editor")
    stream = Stream(server.ws_url, todos_path(lst["id"]), bob.token)
    lists = Stream(server.ws_url, "/api/lists/", carol.token)
    try:
        stream.sync()
        lists.sync()
        sql("UPDATE memberships SET user_id = %s WHERE list_id = %s AND user_id = %s",
            (carol.user["id"], lst["id"], bob.user["id"]))
        while (message := stream.recv(10)) is not None:
            assert message.get("type") != "change", message
        assert stream.close_code == 4403
        message = lists.recv(10)
        assert message["type"] == "change" and message["op"] == "insert" and message["list"]["id"] == lst["id"]
        assert message["list"]["role"] == "editor"
        changes = sql("SELECT op, user_id::text, role FROM changes WHERE list_id = %s AND kind = 'member'"
                      " ORDER BY rev DESC LIMIT 2", (lst["id"],))
        assert sorted(changes) == [("delete", bob.user["id"], None), ("insert", carol.user["id"], "editor")]
    finally:
        stream.close()
        lists.close()
