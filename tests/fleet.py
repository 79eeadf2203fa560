"""Many streams read by one thread, each checked as a client would: ordered, exactly once, converging."""
from __future__ import annotations

import json
import selectors
import threading
import time
from dataclasses import dataclass, field

import websocket


@dataclass
class Replica:
    """What one stream has told its client: the todos it would show, and every rev it saw."""

    owner_token: str
    ws: websocket.WebSocket
    todos: dict[str, dict] = field(default_factory=dict)
    revs: list[int] = field(default_factory=list)
    ready: bool = False
    rev: int = 0
    close_code: int | None = None
    problems: list[str] = field(default_factory=list)

    def apply(self, message: dict) -> None:
        kind = message["type"]
        if kind == "snapshot":
            self.todos = {todo["id"]: todo for todo in message["todos"]}
            self.rev = message["rev"]
        elif kind == "ready":
            if message["rev"] < self.rev:
                self.problems.append(f"ready rev {message['rev']} < {self.rev}")
            self.rev = message["rev"]
            self.ready = True
        elif kind == "change":
            rev = message["rev"]
            if self.revs and rev <= self.revs[-1]:
                self.problems.append(f"rev {rev} after {self.revs[-1]} (duplicate or out of order)")
            if self.ready and rev <= self.rev:
                self.problems.append(f"live rev {rev} not above the synced rev {self.rev}")
            self.revs.append(rev)
            todo = message["todo"]
            if message["op"] == "delete":
                self.todos.pop(todo["id"], None)
            else:
                self.todos[todo["id"]] = todo
        else:
            self.problems.append(f"unknown message {message}")


class Fleet:
    """Opens streams and reads them all from one background thread."""

    def __init__(self, ws_url: str) -> None:
        self.ws_url = ws_url
        self.replicas: list[Replica] = []
        self.messages = 0
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read_forever, daemon=True)

    def open(self, token: str, path: str = "/api/todos/") -> Replica:
        ws = websocket.create_connection(self.ws_url + path, header=[f"Authorization: Bearer {token}"],
                                         timeout=30)
        replica = Replica(token, ws)
        while not replica.ready:
            self._receive(replica)
        ws.settimeout(5)
        with self._lock:
            self.replicas.append(replica)
            self._selector.register(ws.sock, selectors.EVENT_READ, replica)
        return replica

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for replica in self.replicas:
            try:
                replica.ws.close(timeout=0.2)
            except Exception:
                pass
            finally:
                replica.ws.shutdown()
        self._selector.close()

    def _receive(self, replica: Replica) -> None:
        opcode, frame = replica.ws.recv_data_frame(True)
        if opcode == websocket.ABNF.OPCODE_TEXT:
            replica.apply(json.loads(frame.data))
            self.messages += 1
        elif opcode == websocket.ABNF.OPCODE_CLOSE:
            replica.close_code = int.from_bytes(frame.data[:2], "big") if len(frame.data) >= 2 else 1005
            raise ConnectionError(f"stream closed with {replica.close_code}")

    def _read_forever(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                events = self._selector.select(timeout=0.05)
            for key, _ in events:
                replica: Replica = key.data
                try:
                    self._receive(replica)
                except Exception as error:
                    replica.problems.append(f"read failed: {error!r}")
                    with self._lock:
                        self._selector.unregister(key.fileobj)

    def wait_quiet(self, seconds: float = 1.0, timeout: float = 30.0) -> None:
        """Until no message arrived for `seconds` (everything in flight delivered)."""
        deadline = time.monotonic() + timeout
        last, quiet_since = self.messages, time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            if self.messages != last:
                last, quiet_since = self.messages, time.monotonic()
            elif time.monotonic() - quiet_since >= seconds:
                return
        raise AssertionError("streams never went quiet")
