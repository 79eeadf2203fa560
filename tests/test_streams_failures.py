"""Streams when things go wrong or get big: database restarts, many sockets, slow and vanished
peers, graceful stops, and a listener that must not sit on a notification."""
from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import psycopg2
import psycopg2.extensions
import requests
import websocket

from tests.pg import lock_sessions, new_database, waiting_for
from tests.storm import Reader
from tests.support import (LIST, PASSWORD, Api, Replica, ServerProcess, Stream, by_id, metric, open_streams_gauge,
                           read_until, refused, register, start_postgres, wait_for)
from todopy.migrate import migrate


def health(server: ServerProcess) -> int:
    try:
        return requests.get(server.base_url + "/healthz", timeout=5).status_code
    except requests.RequestException:
        return 0


def worker_pids(server: ServerProcess) -> list[int]:
    """gunicorn's workers: the children of the server process."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == server.process.pid:
                children.append(int(entry.name))
    return children


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


# -- the listener --------------------------------------------------------------------------


def test_a_change_committed_while_the_listener_reads_the_log_is_not_held_back(server, alice, bob, dsn):
    """Its notification arrives with the listener's query results, not on an idle socket."""
    s = Stream(server.ws_url, LIST, alice.token)
    bulk, single = psycopg2.connect(dsn), psycopg2.connect(dsn)
    bulk.autocommit = single.autocommit = True
    try:
        s.sync()
        for i in range(12):
            with bulk.cursor() as cur:     # a big batch keeps the listener busy reading the log...
                # (the previous round's noise goes in the same batch: a list holds at most 5,000 todos)
                cur.execute("WITH gone AS (DELETE FROM todos WHERE list_id = personal_list(%(bob)s))"
                            " INSERT INTO todos (list_id, title) SELECT personal_list(%(bob)s), 'noise'"
                            " FROM generate_series(1, 2000)", {"bob": bob.user["id"]})
            time.sleep(0.001 * (i % 6))
            with single.cursor() as cur:   # ...while this commits
                cur.execute("INSERT INTO todos (list_id, title) VALUES (personal_list(%s), %s) RETURNING id",
                            (alice.user["id"], f"round {i}"))
                (todo_id,) = cur.fetchone()
                cur.execute("SELECT rev FROM todos WHERE id = %s", (todo_id,))    # assigned at commit
                (rev,) = cur.fetchone()
            try:
                message = s.recv(3)
            except websocket.WebSocketTimeoutException:
                raise AssertionError(f"round {i}: change {rev} not delivered within 3 s") from None
            assert message["rev"] == rev
    finally:
        s.close(), bulk.close(), single.close()


OUTAGE = 3.0


def test_streams_survive_a_database_restart_without_reconnecting(tmp_path, start_server):
    cluster = start_postgres(tmp_path / "pg")
    try:
        migrate(cluster.dsn())
        server = start_server(database=cluster.dsn())
        api = register(server.base_url)
        keep = api.create_todo("before the restart")
        s = Stream(server.ws_url, LIST, api.token)
        live = Stream(server.ws_url, LIST + "?completed=true", api.token)
        replicas = {"": Replica(), "?completed=true": Replica()}
        for stream, replica in ((s, replicas[""]), (live, replicas["?completed=true"])):
            before, ready = stream.sync()
            for message in before + [ready]:
                replica.apply(message)
        start_rev = replicas[""].rev
        api.patch(f"/api/todos/{keep['id']}/", {"completed": True})
        api.create_todo("also before")
        for message in read_until(s, lambda m: m["todo"]["title"] == "also before"):
            replicas[""].apply(message)

        cluster.stop()
        down = time.monotonic()
        wait_for(lambda: health(server) == 503, timeout=10)
        assert api.post(LIST, {"title": "while down"}).status_code == 503
        assert requests.get(server.base_url + "/healthz", timeout=5).json()["status"] == "unavailable"
        time.sleep(max(0.0, down + OUTAGE - time.monotonic()))   # long enough for the listener to back off

        cluster.start()
        up = time.monotonic()
        conn = psycopg2.connect(cluster.dsn())   # committed before the listener can be back
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("INSERT INTO todos (list_id, title) VALUES (personal_list(%s), 'right after the restart')",
                        (api.user["id"],))
        messages = read_until(s, lambda m: m["type"] == "change", timeout=30)
        resumed = time.monotonic() - up
        # The listener retries at least every 2 s (README), so the stream resumes that soon, plus a
        # second for connecting, replaying and sending on two busy cores.
        assert resumed <= 2.0 + 1.0, f"the first change arrived {resumed:.2f}s after the database was back"
        wait_for(lambda: health(server) == 200, timeout=30, interval=0.05)
        healthy = time.monotonic() - up
        for message in messages:
            replicas[""].apply(message)

        api.patch(LIST, {"completed": True})
        gone = api.create_todo("short-lived")
        assert api.delete(f"/api/todos/{gone['id']}/").status_code == 204
        last = api.create_todo("after the restart", completed=True)
        for stream, query in ((s, ""), (live, "?completed=true")):
            for message in read_until(stream, lambda m: m["todo"]["id"] == last["id"]):
                replicas[query].apply(message)
            assert replicas[query].todos == by_id(api.list_todos(query)["todos"])

        with conn.cursor() as cur:   # every change, exactly once: the log is the ground truth
            cur.execute("SELECT count(*) FROM changes WHERE list_id = personal_list(%s) AND kind = 'todo' AND rev > %s",
                        (api.user["id"], start_rev))
            assert replicas[""].applied == cur.fetchone()[0]
        conn.close()
        s.close(), live.close()
        print(f"\ndatabase restart ({OUTAGE:.0f}s down): first change delivered {resumed:.2f}s after the "
              f"database was back; /healthz 200 after {healthy:.2f}s")
    finally:
        cluster.stop("immediate")


# -- many streams ----------------------------------------------------------------------------


def test_500_streams_hold_no_more_connections_than_the_pool_plus_listener_and_ringer(postgres, sql, start_server):
    dsn = new_database(postgres, sql)
    pool_size = 4
    server = start_server(env={"TODOPY_POOL_SIZE": str(pool_size)}, database=dsn)
    users = [register(server.base_url) for _ in range(5)]
    todos = [api.create_todo("shared") for api in users]
    paths = [LIST, LIST + "?completed=false", LIST + "?since=1", "/api/todos/{id}/"]
    streams: list[tuple[int, Stream]] = []

    def connect(i: int) -> tuple[int, Stream]:
        owner = i % len(users)
        stream = Stream(server.ws_url, paths[i // len(users) % len(paths)].format(id=todos[owner]["id"]),
                        users[owner].token)
        streams.append((owner, stream))
        stream.sync()
        return owner, stream

    try:
        for i in range(400):
            connect(i)
        with concurrent.futures.ThreadPoolExecutor(20) as burst:   # and a reconnect storm
            list(burst.map(connect, range(400, 500)))
        assert open_streams_gauge(server) == 500
        (count,), = sql("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name LIKE 'todopy%%'",
                        (psycopg2.extensions.parse_dsn(dsn)["dbname"],))
        print(f"\n500 open streams: {count} todopy connections to PostgreSQL (pool size {pool_size})")
        # The pool, the LISTEN connection, and the ringer's (one per process, elected or waiting).
        assert count <= pool_size + 2

        changed = users[0].patch(f"/api/todos/{todos[0]['id']}/", {"title": "seen by 100 streams"}).json()
        for owner, stream in streams:
            if owner == 0:
                assert stream.recv(10) == {"type": "change", "op": "update", "todo": changed, "rev": changed["rev"],
                                           "by": users[0].user["username"]}
    finally:
        for _, stream in streams:
            stream.close()


# -- slow and vanished peers ---------------------------------------------------------------------


ROUNDS, CHANGE_BYTES = 30, 650


def test_a_consumer_that_stops_reading_is_closed_with_4008_and_resumes_losing_nothing(start_server, sql):
    server = start_server(env={"TODOPY_STREAM_QUEUE": "20"})
    api = register(server.base_url)
    sql("INSERT INTO todos (list_id, title) SELECT personal_list(%s), repeat('long title ', 46) || n FROM generate_series(1, 300) n",
        (api.user["id"],))
    (worker,) = worker_pids(server)
    rss_before = rss_bytes(worker)

    slow = Stream(server.ws_url, LIST, api.token, sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    fast = Reader(server, api, "", "the end")   # keeps up all along: never 4008, even with bulk changes
    replica = Replica()
    try:
        before, ready = slow.sync()
        for message in before + [ready]:
            replica.apply(message)
        fast.start()
        wait_for(lambda: fast.replica.ready, timeout=10)
        for i in range(ROUNDS):       # 9000 changes of ~650 bytes (6 MB), none of them read yet
            assert api.patch(LIST, {"completed": i % 2 == 0}).status_code == 200
            time.sleep(0.02)          # the reader that keeps up gets its turns even on a busy machine
        rss_peak = rss_bytes(worker)
        api.create_todo("the end")
        fast.join(20)
        if fast.error is not None:
            raise fast.error
        assert fast.replica.todos == by_id(api.list_todos()["todos"])

        deadline = time.monotonic() + 30
        while (message := slow.recv(10)) is not None:
            assert time.monotonic() < deadline
            replica.apply(message)
        assert slow.close_code == 4008
        dropped = metric(requests.get(server.base_url + "/metrics", timeout=5).text,
                         "todopy_stream_slow_consumers_dropped_total")
        assert dropped == 1, "the slow consumer is counted, the one that kept up is not"
    finally:
        slow.close()
    growth = max(rss_peak, rss_bytes(worker)) - rss_before
    written = ROUNDS * 300 * CHANGE_BYTES       # the changes made while it did not read, as frames
    print(f"\nslow consumer: closed with 4008 after {replica.changes} changes; worker RSS grew "
          f"{growth / 2**20:.1f} MB while {written / 2**20:.1f} MB of changes were written")
    # Its queue holds 20 changes (13 KB): the server must not have held the changes for it (holding
    # them grew RSS by 9.8 MB); what grows is the dispatcher's batches and the allocator (1-1.5 MB).
    assert growth < written

    again = Stream(server.ws_url, f"{LIST}?since={replica.rev}", api.token)
    try:
        replica.reconnect()
        before, ready = again.sync()
        for message in before + [ready]:
            replica.apply(message)
        assert replica.todos == by_id(api.list_todos()["todos"])
    finally:
        again.close()


def raw_handshake(server: ServerProcess, token: str) -> socket.socket:
    """A peer that completes the handshake, then never reads, never answers and never closes."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /api/todos/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Authorization: Bearer {token}\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def test_pings_keep_answering_peers_and_drop_vanished_ones(start_server):
    interval = 1.0
    server = start_server(env={"TODOPY_PING_INTERVAL": str(interval)})
    api = register(server.base_url)
    s = Stream(server.ws_url, LIST, api.token)
    vanished = None
    try:
        s.sync()
        baseline = open_streams_gauge(server)
        assert baseline == 1
        vanished = raw_handshake(server, api.token)
        opened = time.monotonic()
        wait_for(lambda: open_streams_gauge(server) == baseline + 1, timeout=5)

        pings, dropped_after = 0, None
        s.ws.settimeout(0.2)
        while time.monotonic() - opened < 6 and (dropped_after is None or pings < 3):
            try:
                opcode, _ = s.ws.recv_data_frame(True)    # answers each ping with a pong
                pings += opcode == websocket.ABNF.OPCODE_PING
            except websocket.WebSocketTimeoutException:
                pass
            if dropped_after is None and open_streams_gauge(server) == baseline:
                dropped_after = time.monotonic() - opened
        print(f"\nheartbeat: {pings} pings; a vanished peer dropped after {dropped_after}s (ping interval {interval}s)")
        assert pings >= 3
        assert dropped_after is not None and dropped_after <= 4 * interval   # 2-3 intervals, plus a busy machine

        todo = api.create_todo("still here")             # the answering peer is still served
        assert s.recv(5) == {"type": "change", "op": "insert", "todo": todo, "rev": todo["rev"],
                             "by": api.user["username"]}
    finally:
        s.close()
        if vanished is not None:
            vanished.close()


# -- stopping ------------------------------------------------------------------------------------


GRACEFUL_TIMEOUT = 8.0     # gunicorn's: after it, workers are killed and streams just drop
PROMPT = 3.0               # 1001 arrives within this of SIGTERM: well before that kill, with room for a busy box


def test_sigterm_closes_streams_with_1001_finishes_requests_in_flight_and_exits_within_10s(start_server, dsn,
                                                                                                    sql):
    """README's graceful stop, each part: 1001 (sent by the server, not a dropped socket), requests in
    flight answered, new streams refused with 503, exit within 10 s."""
    server = start_server()
    api = register(server.base_url)
    todo = api.create_todo("one")
    streams = [Stream(server.ws_url, path, api.token)
               for path in (LIST, LIST + "?completed=false", f"{LIST}?since={todo['rev']}", f"/api/todos/{todo['id']}/")]
    idle = Api(server.base_url, api.token)
    assert idle.get(LIST).status_code == 200          # and an idle keep-alive connection
    # Two requests held in flight across the SIGTERM: their fresh tokens are not cached, so
    # resolving them waits for the sessions table, which this transaction holds.
    tokens = [requests.post(server.base_url + "/api/session/", timeout=10, json={
        "username": api.user["username"], "password": PASSWORD}).json()["token"] for _ in range(2)]
    locker = psycopg2.connect(dsn)
    results: dict = {}

    def in_flight_rest() -> None:
        results["rest"] = Api(server.base_url, tokens[0]).get(LIST)

    def in_flight_handshake() -> None:
        try:
            Stream(server.ws_url, LIST, tokens[1]).close()
            results["handshake"] = 101
        except websocket.WebSocketBadStatusException as refused:
            results["handshake"] = refused.status_code
            results["handshake_body"] = refused.resp_body

    threads = [threading.Thread(target=in_flight_rest), threading.Thread(target=in_flight_handshake)]
    try:
        for stream in streams:
            stream.sync()
        lock_sessions(locker)
        for thread in threads:
            thread.start()
        wait_for(lambda: waiting_for(sql, locker.get_backend_pid()) == 2, timeout=10, interval=0.02)

        stopping = time.monotonic()
        server.signal(signal.SIGTERM)
        for stream in streams:
            assert stream.recv(GRACEFUL_TIMEOUT + 2) is None
            closed_after = time.monotonic() - stopping
            assert stream.close_code == 1001, stream.close_code
            assert closed_after < PROMPT, f"1001 after {closed_after:.1f}s: not the server's own close"
        time.sleep(0.5)                               # the requests are still waiting, the worker with them
        assert server.process.poll() is None and results == {}
    finally:
        locker.rollback()
        locker.close()
    for thread in threads:
        thread.join(10)
    assert results["rest"].status_code == 200, results["rest"].text
    assert [t["id"] for t in results["rest"].json()["todos"]] == [todo["id"]]
    assert results["handshake"] == 503, results
    assert json.loads(results["handshake_body"])["error"]["code"] == "stopping"
    assert server.process.wait(max(0.1, 10 - (time.monotonic() - stopping))) == 0
    exited_after = time.monotonic() - stopping
    print(f"\nSIGTERM: streams closed with 1001 within {closed_after:.2f}s, requests in flight answered, "
          f"process exited after {exited_after:.1f}s")
    assert exited_after < 10
    for stream in streams:
        stream.close()


# -- a stream owns its connection ----------------------------------------------------------------

def server_side_connections(server: ServerProcess, client_ports: set[int]) -> dict[int, str]:
    """The server's side of each TCP connection from one of `client_ports`: the client's port and
    the state (/proc/net/tcp's hex code: 01 established, 08 close-wait: the peer closed, we did not)."""
    found = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if int(local.split(":")[1], 16) == server.port and int(remote.split(":")[1], 16) in client_ports:
            found[int(remote.split(":")[1], 16)] = state
    return found


def open_on_server(server: ServerProcess, client_ports: set[int]) -> list[str]:
    """The states of those connections whose descriptor the server has not closed: established (01)
    or close-wait (08). Once it closed, one is in fin-wait, time-wait, last-ack, or gone."""
    return [state for state in server_side_connections(server, client_ports).values() if state in ("01", "08")]


def test_a_stream_ended_any_way_closes_its_connection_and_gives_back_its_place(start_server):
    """A stream runs on after its handshake's request has ended, and owns the connection: whichever way
    it ends (its client closes or vanishes, the server closes it), the server closes the descriptor and
    the user's stream place is free again."""
    server = start_server(env={"TODOPY_MAX_STREAMS_PER_USER": "4"})
    api = register(server.base_url)
    todo = api.post(LIST, {"title": "deleted while followed"}).json()
    closed_by_client = Stream(server.ws_url, LIST, api.token)
    vanishing = raw_handshake(server, api.token)
    of_the_todo = Stream(server.ws_url, f"{LIST}{todo['id']}/", api.token)
    of_the_lists = Stream(server.ws_url, "/api/lists/", api.token)
    reopened: list[Stream] = []
    try:
        for s in (closed_by_client, of_the_todo, of_the_lists):
            s.sync()
        ports = {s.ws.sock.getsockname()[1] for s in (closed_by_client, of_the_todo, of_the_lists)}
        ports.add(vanishing.getsockname()[1])
        assert len(server_side_connections(server, ports)) == 4
        assert refused(server, LIST, api.token) == 429                  # every place is taken

        closed_by_client.close()
        vanishing.close()                                               # no close frame: the TCP connection ends
        assert api.delete(f"{LIST}{todo['id']}/").status_code == 204     # the server ends the todo's stream
        read_until(of_the_todo, lambda m: m.get("op") == "delete")
        assert of_the_todo.recv(timeout=10) is None                     # then closes it
        # Only the lists stream's connection is still open on the server's side, and none waits there
        # in close-wait (its client gone, its descriptor still open).
        wait_for(lambda: sorted(open_on_server(server, ports)) == ["01"], timeout=10)
        reopened.extend(Stream(server.ws_url, LIST, api.token) for _ in range(3))   # three places free again
        for s in reopened:
            s.sync()
        assert refused(server, LIST, api.token) == 429
    finally:
        for s in (closed_by_client, of_the_todo, of_the_lists, *reopened):
            s.close()
        vanishing.close()
    wait_for(lambda: not open_on_server(server, ports), timeout=10)
