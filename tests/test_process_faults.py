"""Worker processes: one killed is replaced while the other serves; slow clients cannot exhaust a worker."""
from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import requests

from tests.support import Stream, register, wait_for


def worker_pids(master_pid: int) -> set[int]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return {int(pid) for pid in children}


def two_workers(master_pid: int, without: int | None = None) -> set[int] | None:
    pids = worker_pids(master_pid)
    return pids if len(pids) == 2 and without not in pids else None


def test_a_killed_worker_is_replaced_while_the_other_keeps_serving(start_server):
    server = start_server(args=("--workers", "2"))
    workers = wait_for(lambda: two_workers(server.process.pid))
    user = register(server.base_url)
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    # The survivor answers meanwhile (requests may land on either worker; all must succeed).
    for index in range(20):
        assert user.post("/api/todos/", {"title": f"during {index}"}).status_code == 201
    replaced = wait_for(lambda: two_workers(server.process.pid, without=victim))
    assert victim not in replaced
    # A change made through one worker reaches streams on every worker.
    streams = [Stream(server.ws_url, "/api/todos/", user.token) for _ in range(6)]
    try:
        for stream in streams:
            stream.sync()
        todo = user.create_todo("after the restart")
        for stream in streams:
            assert stream.recv(5)["todo"]["id"] == todo["id"]
    finally:
        for stream in streams:
            stream.close()


def test_sigterm_closes_streams_with_1001_and_exits_promptly(start_server):
    server = start_server(args=("--workers", "2"))
    user = register(server.base_url)
    streams = [Stream(server.ws_url, "/api/todos/", user.token) for _ in range(4)]
    for stream in streams:
        stream.sync()
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    for stream in streams:
        assert stream.recv(10) is None
        assert stream.close_code == 1001
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
            assert answer == b"" or answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer
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
    from tests.test_observability import metric

    server = start_server(args=("--workers", "2"))
    wait_for(lambda: two_workers(server.process.pid))
    user = register(server.base_url)
    streams = [Stream(server.ws_url, "/api/todos/", user.token) for _ in range(8)]
    try:
        for stream in streams:
            stream.sync()
        for _ in range(6):   # whichever worker answers, it reports both
            text = requests.get(server.base_url + "/metrics", timeout=5).text
            assert metric(text, "todopy_open_streams") == 8
    finally:
        for stream in streams:
            stream.close()
    wait_for(lambda: metric(requests.get(server.base_url + "/metrics", timeout=5).text,
                            "todopy_open_streams") == 0)
