"""Worker processes: one killed is replaced while the other serves; slow clients cannot exhaust a worker."""
from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import requests

from tests.support import Api, ServerProcess, Stream, metric, register, wait_for


def open_streams(server: ServerProcess) -> float:
    return metric(requests.get(server.base_url + "/metrics", timeout=5).text, "todopy_open_streams")


def worker_pids(master_pid: int) -> set[int]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return {int(pid) for pid in children}


def two_workers(master_pid: int, without: int | None = None) -> set[int] | None:
    pids = worker_pids(master_pid)
    return pids if len(pids) == 2 and without not in pids else None


STREAM_OPEN = re.compile(r"\[(\d+)\] todopy\.streams: stream open \S+ user=(\S+)")


def stream_workers(server: ServerProcess, user_id: str) -> list[int]:
    """The worker pid of each stream the user opened, in order (from the log's stream-open lines)."""
    return [int(pid) for pid, user in STREAM_OPEN.findall(server.full_log()) if user == user_id]


def serving(server: ServerProcess, workers: set[int]) -> set[int]:
    """`workers`, once each has answered a request (a new worker takes a while to start accepting)."""
    def answered() -> bool:
        requests.get(server.base_url + "/healthz", timeout=5)     # a new connection each time
        return workers <= {int(pid) for pid in re.findall(r"\[(\d+)\] todopy\.access: ", server.full_log())}
    wait_for(answered, timeout=30, interval=0.05)
    return workers


def streams_on_every_worker(server: ServerProcess, user: Api, workers: set[int], at_least: int,
                            limit: int = 60) -> list[tuple[int, Stream]]:
    """At least `at_least` synced streams of `user`, opened until every worker holds one: (pid, stream).

    Which worker accepts a connection is the kernel's choice; a test that only hopes
    its streams spread out may well run on one worker alone.
    """
    opened: list[Stream] = []
    for _ in range(limit):
        stream = Stream(server.ws_url, "/api/todos/", user.token)
        opened.append(stream)
        stream.sync()       # its stream-open line is logged before the snapshot is sent
        pids = stream_workers(server, user.user["id"])[-len(opened):]
        if len(opened) >= at_least and set(pids) >= workers:
            return list(zip(pids, opened))
    for stream in opened:
        stream.close()
    raise AssertionError(f"{limit} streams, none of them on one of the workers {workers}")


def test_a_killed_worker_is_replaced_while_the_other_keeps_serving(start_server):
    server = start_server(args=("--workers", "2"))
    workers = serving(server, wait_for(lambda: two_workers(server.process.pid)))
    user = register(server.base_url)
    placed = streams_on_every_worker(server, user, workers, at_least=6)
    victim = placed[0][0]
    survivors = [stream for pid, stream in placed if pid != victim]
    assert 0 < len(survivors) < len(placed)
    assert open_streams(server) == len(placed)
    os.kill(victim, signal.SIGKILL)
    # The survivor answers meanwhile (requests may land on either worker; all must succeed).
    for index in range(20):
        assert user.post("/api/todos/", {"title": f"during {index}"}).status_code == 201
    replaced = serving(server, wait_for(lambda: two_workers(server.process.pid, without=victim)))
    assert victim not in replaced
    # The dead worker's gauge is dropped: only the survivor's streams count.
    wait_for(lambda: open_streams(server) == len(survivors), timeout=10)
    # A change made through one worker reaches streams on every worker, the new one included.
    fresh = streams_on_every_worker(server, user, replaced, at_least=4)
    streams = survivors + [stream for _, stream in fresh]
    try:
        for stream in survivors:
            while stream.recv(5)["todo"]["title"] != "during 19":
                pass
        todo = user.create_todo("after the restart")
        for stream in streams:
            assert stream.recv(5)["todo"]["id"] == todo["id"]
    finally:
        for stream in streams + [stream for _, stream in placed]:
            stream.close()


GRACEFUL_TIMEOUT = 8.0     # gunicorn's: after it, workers are killed and streams just drop
PROMPT = 3.0               # 1001 arrives within this of SIGTERM: well before that kill, with room for a busy box


def test_sigterm_closes_streams_on_every_worker_with_1001_and_exits_promptly(start_server):
    server = start_server(args=("--workers", "2"))
    workers = serving(server, wait_for(lambda: two_workers(server.process.pid)))
    user = register(server.base_url)
    streams = [stream for _, stream in streams_on_every_worker(server, user, workers, at_least=4)]
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    for stream in streams:
        assert stream.recv(GRACEFUL_TIMEOUT + 2) is None
        assert stream.close_code == 1001
        assert time.monotonic() - started < PROMPT, "1001 must come from the server, before gunicorn's kill"
    assert server.process.wait(10) == 0
    assert time.monotonic() - started < 10


def read_to_eof(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def test_slow_headers_are_cut_off_and_do_not_starve_other_clients(start_server):
    server = start_server(env={"TODOPY_READ_TIMEOUT": "1"})
    slow = []
    for _ in range(50):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")    # and never the end of the headers
        slow.append(sock)
    half_open = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(50)]  # says nothing
    try:
        assert requests.get(server.base_url + "/healthz", timeout=2).status_code == 200
        time.sleep(1.5)
        for sock in slow + half_open:
            sock.settimeout(2)
            answer = read_to_eof(sock)   # raises a timeout if the server kept it open
            assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer
            assert answer == b"" or answer.endswith(b'"code": "request_timeout", "message": "request headers took too long"}}')
    finally:
        for sock in slow + half_open:
            sock.close()


def test_a_slow_body_is_cut_off(start_server):
    server = start_server(env={"TODOPY_READ_TIMEOUT": "1"})
    user = register(server.base_url)
    sock = socket.create_connection(("127.0.0.1", server.port))
    try:
        sock.sendall(b"POST /api/todos/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + user.token.encode()
                     + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"title\":")
        sock.settimeout(5)
        started = time.monotonic()
        data = sock.recv(4096)
        while data and not data.endswith(b"}"):
            more = sock.recv(4096)
            if not more:
                break
            data += more
        assert time.monotonic() - started < 4
        assert data.startswith(b"HTTP/1.1 408"), data
        assert b'"code":"request_timeout"' in data.replace(b" ", b""), data
    finally:
        sock.close()
    assert user.list_todos()["todos"] == []


def test_metrics_add_up_over_every_worker(start_server):
    server = start_server(args=("--workers", "2"))
    workers = serving(server, wait_for(lambda: two_workers(server.process.pid)))
    user = register(server.base_url)
    streams = [stream for _, stream in streams_on_every_worker(server, user, workers, at_least=8)]
    try:
        for _ in range(6):   # whichever worker answers, it reports both
            text = requests.get(server.base_url + "/metrics", timeout=5).text
            assert metric(text, "todopy_open_streams") == len(streams)
    finally:
        for stream in streams:
            stream.close()
    wait_for(lambda: metric(requests.get(server.base_url + "/metrics", timeout=5).text,
                            "todopy_open_streams") == 0)
