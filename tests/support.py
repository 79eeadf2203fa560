"""Test support: a real PostgreSQL, the real server as a subprocess, small HTTP/WS clients,
and a client-side replica of a stream; what more than one test module uses lives here."""
from __future__ import annotations

import functools
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import psycopg2
import pytest
import requests
import websocket

from todopy.embedded import EmbeddedPostgres, free_port

TODOPY = str(Path(sys.executable).with_name("todopy"))
PASSWORD = "correct horse"           # every test user's password
LIST = "/api/todos/"                 # the personal list's todos


def wait_healthy(process: subprocess.Popen, base_url: str, log: Callable[[], str], timeout: float = 30.0) -> None:
    """Until the server at `base_url` answers /healthz with 200; RuntimeError, with its log, when it
    exits first or is not healthy within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log()}")
        try:
            if requests.get(base_url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not healthy within {timeout}s:\n{log()}")


class ServerProcess:
    """`todopy serve` on a free port (or the given one, e.g. to restart in place), against `dsn`."""

    def __init__(self, dsn: str | None, log_path: Path, *, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = (), port: int | None = None,
                 open_files: tuple[int, int] | None = None) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.log_path = log_path
        environment = {k: v for k, v in os.environ.items() if not k.startswith("TODOPY_")}
        environment.pop("DATABASE_URL", None)
        if dsn is not None:
            environment["DATABASE_URL"] = dsn
        environment.update(env or {})
        # `open_files`: the (soft, hard) RLIMIT_NOFILE the server starts with, as a service manager sets it.
        limit = None if open_files is None else functools.partial(resource.setrlimit, resource.RLIMIT_NOFILE,
                                                                  open_files)
        # The child writes the log through its own descriptor: ours is closed at once, leaking nothing.
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen([TODOPY, "serve", "--port", str(self.port), *args], env=environment,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                            preexec_fn=limit)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        try:
            wait_healthy(self.process, self.base_url, self.log, timeout)
        except RuntimeError:
            self.stop()      # a server that never became healthy must not outlive the test
            raise

    def log(self) -> str:
        """The log's tail, for failure messages."""
        return self.full_log()[-5000:]

    def full_log(self) -> str:
        """Everything the server has logged so far (for checks that must see every line)."""
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def stop(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


class Api:
    """requests against one server, optionally as one user (bearer token)."""

    def __init__(self, base_url: str, token: str | None = None, user: dict | None = None) -> None:
        self.base_url = base_url
        self.token = token
        self.user = user
        self.http = requests.Session()

    def headers(self, extra: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(extra or {})
        return headers

    def request(self, method: str, path: str, *, json_body: Any = None, data: Any = None,
                headers: dict | None = None, **kwargs: Any) -> requests.Response:
        if json_body is not None:
            data = json.dumps(json_body)
            headers = {"Content-Type": "application/json", **(headers or {})}
        return self.http.request(method, self.base_url + path, data=data, headers=self.headers(headers),
                                 allow_redirects=False, timeout=30, **kwargs)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.request("POST", path, json_body=body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.request("PUT", path, json_body=body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.request("PATCH", path, json_body=body, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)

    def create_todo(self, title: str = "a todo", completed: bool = False) -> dict:
        response = self.post("/api/todos/", {"title": title, "completed": completed})
        assert response.status_code == 201, response.text
        return response.json()

    def list_todos(self, query: str = "") -> dict:
        response = self.get("/api/todos/" + query)
        assert response.status_code == 200, response.text
        return response.json()


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.1) -> Any:
    """The first true value `predicate()` returns, polled every `interval`; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def new_username(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def register(base_url: str, username: str | None = None, password: str = PASSWORD) -> Api:
    """A new user with a bearer token."""
    username = username or new_username()
    response = requests.post(base_url + "/api/users/", json={"username": username, "password": password},
                             timeout=30)
    assert response.status_code == 201, response.text
    body = response.json()
    return Api(base_url, body["token"], body["user"])


def new_list(api: Api, title: str = "Groceries") -> dict:
    response = api.post("/api/lists/", {"title": title})
    assert response.status_code == 201, response.text
    return response.json()


def share(owner: Api, list_id: str, member: Api, role: str) -> None:
    response = owner.put(f"/api/lists/{list_id}/members/{member.user['username']}/", {"role": role})
    assert response.status_code == 201, response.text


def by_id(todos: list[dict]) -> dict[str, dict]:
    return {todo["id"]: todo for todo in todos}


def metric(text: str, name: str, labels: str = "") -> float:
    """The sum of `name`'s samples (with `labels`) in a /metrics page; sample lines only, not HELP text."""
    pattern = "^" + re.escape(name) + (r"\{" + labels + r"[^}]*\}" if labels else r"(\{[^}]*\})?") + r" ([0-9.e+-]+)$"
    values = [float(match.group(match.lastindex)) for match in re.finditer(pattern, text, re.M)]
    return sum(values)


def open_streams_gauge(server: ServerProcess) -> float:
    return metric(requests.get(server.base_url + "/metrics", timeout=10).text, "todopy_open_streams")


def elected(server: ServerProcess) -> bool:
    """Whether `server` is the ringer now (by its /metrics)."""
    text = requests.get(server.base_url + "/metrics", timeout=5).text
    return metric(text, "todopy_ringer_elected") >= 1


def ringer_of(servers: list[ServerProcess]) -> ServerProcess:
    """The one server of `servers` that rings (exactly one of them)."""
    def find() -> ServerProcess | None:
        holders = [srv for srv in servers if elected(srv)]
        assert len(holders) <= 1, "two ringers"
        return holders[0] if holders else None
    return wait_for(find, timeout=10)


class Stream:
    """A websocket-client connection that parses JSON messages and reads close codes."""

    def __init__(self, ws_url: str, path: str, token: str | None = None, *, timeout: float = 10,
                 headers: list[str] | None = None, **options: Any) -> None:
        header = list(headers or [])
        if token:
            header.append(f"Authorization: Bearer {token}")
        self.ws = websocket.create_connection(ws_url + path, header=header, timeout=timeout, **options)
        self.close_code: int | None = None

    def recv(self, timeout: float | None = None) -> dict | None:
        """The next JSON message, or None when the server closed (close_code is set)."""
        if timeout is not None:
            self.ws.settimeout(timeout)
        while True:
            opcode, frame = self.ws.recv_data_frame(True)
            if opcode == websocket.ABNF.OPCODE_TEXT:
                return json.loads(frame.data.decode("utf-8"))
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                data = frame.data
                self.close_code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
                try:
                    self.ws.send_close()
                except Exception:
                    pass
                # The closing handshake is done: let the socket go now (send_close leaves it
                # open, and ws.close() then does nothing), so no caller can leak it.
                self.ws.shutdown()
                return None

    def sync(self, timeout: float = 10) -> tuple[list[dict], dict]:
        """Messages up to and including `ready`."""
        messages = []
        while True:
            message = self.recv(timeout)
            assert message is not None, f"closed with {self.close_code} before ready"
            if message["type"] == "ready":
                return messages, message
            messages.append(message)

    def expect_silence(self, seconds: float = 0.3) -> None:
        self.ws.settimeout(seconds)
        try:
            message = self.recv()
        except websocket.WebSocketTimeoutException:
            return
        raise AssertionError(f"expected no message, got {message}")

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass
        finally:
            self.ws.shutdown()     # close() returns early, socket open, when no longer "connected"


def stream(server: ServerProcess, api: Api | None, path: str = LIST, **options: Any) -> Stream:
    return Stream(server.ws_url, path, api.token if api else None, **options)


def refused(server: ServerProcess, path: str, token: str | None = None, **options: Any) -> int:
    """The HTTP status of a handshake that must be refused before the upgrade."""
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        Stream(server.ws_url, path, token, **options).close()
    return caught.value.status_code


def read_until(s: Stream, done: Callable[[dict], bool], timeout: float = 10.0) -> list[dict]:
    """Messages up to and including the first for which `done` is true."""
    deadline = time.monotonic() + timeout
    messages = []
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"timed out; got {messages[-5:]}"
        message = s.recv(left)
        assert message is not None, f"closed with {s.close_code}; got {messages[-5:]}"
        messages.append(message)
        if done(message):
            return messages


def expect_close(s: Stream, code: int, timeout: float = 10) -> list[dict]:
    """Read until the server closes; the messages before, and the close code checked."""
    messages = []
    while True:
        message = s.recv(timeout)
        if message is None:
            assert s.close_code == code, f"closed with {s.close_code}, expected {code}"
            return messages
        messages.append(message)


class Replica:
    """A client's copy of one (filtered) list, built from a stream's messages as docs/api.md
    tells clients to; the one replica every stream test uses.

    Checks, as it applies, what docs/api.md promises, and fails (AssertionError) at the first
    broken promise: a snapshot or resumed changes, then one ready, then only changes (and `list`
    messages); every change's rev after the position the copy already had, strictly increasing (so exactly once).
    """

    def __init__(self, todos: dict[str, dict] | None = None, rev: int | None = None) -> None:
        self.todos: dict[str, dict] = dict(todos or {})
        self.rev = rev                 # the latest rev this copy reflects
        self.ready = False
        self.changes = 0               # on this connection
        self.applied = 0               # on every connection
        self.title: str | None = None  # the list's title, once a `list` message told it
        # Every rev this copy was sent a change or `list` message for, in order, on every
        # connection; and the (from, to) spans a snapshot covered after the first one (a resume
        # that came back as a snapshot): what a soak checks against the change log.
        self.revs: list[int] = []
        self.skipped: list[tuple[int, int]] = []

    def reconnect(self) -> None:
        """A new connection (with `since`) syncs again, from the position this copy has."""
        self.ready = False
        self.changes = 0

    def apply(self, message: dict) -> None:
        kind = message["type"]
        if kind == "snapshot":
            assert not self.ready and self.changes == 0, f"snapshot after sync: {message}"
            if self.rev is not None:
                self.skipped.append((self.rev, message["rev"]))
            self.todos = by_id(message["todos"])
            self.rev = message["rev"]
        elif kind == "ready":
            assert not self.ready, "two ready messages"
            assert self.rev is not None and message["rev"] >= self.rev, (message, self.rev)
            self.ready = True
            self.rev = message["rev"]
        elif kind == "change":
            assert self.rev is not None, f"change before any snapshot or since: {message}"
            assert message["rev"] > self.rev, f"rev {message['rev']} not after {self.rev}: duplicate or disorder"
            self.rev = message["rev"]
            self.revs.append(self.rev)
            self.changes += 1
            self.applied += 1
            todo = message["todo"]
            if message["op"] == "delete":
                self.todos.pop(todo["id"], None)
            else:
                assert message["op"] in ("insert", "update"), message
                assert todo["rev"] == message["rev"], message
                self.todos[todo["id"]] = todo
        elif kind == "list":
            assert self.rev is not None, f"list message before any snapshot or since: {message}"
            assert message["rev"] > self.rev, f"rev {message['rev']} not after {self.rev}: duplicate or disorder"
            assert message["list"]["rev"] == message["rev"], message
            self.rev = message["rev"]
            self.revs.append(self.rev)
            self.title = message["list"]["title"]
        else:
            raise AssertionError(f"unknown message {message}")


def start_postgres(data_dir: Path) -> EmbeddedPostgres:
    """A new cluster, with two-phase commit enabled: PREPARE TRANSACTION refuses a
    transaction that sent a NOTIFY, which lets a test prove that writers send none."""
    cluster = EmbeddedPostgres(data_dir)
    cluster.start()
    conn = psycopg2.connect(cluster.dsn())
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("ALTER SYSTEM SET max_prepared_transactions = 4")
    finally:
        conn.close()
    cluster.stop()
    cluster.start()
    return cluster
