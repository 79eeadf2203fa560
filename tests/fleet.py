"""Many streams read by one thread, each into a Replica that checks it as a client would: ordered,
exactly once, converging."""
from __future__ import annotations

import json
import selectors
import threading
import time
from dataclasses import dataclass, field

import websocket

from tests.support import Replica


@dataclass
class FleetStream:
    """One stream of the fleet: whose it is, and the replica its messages build."""

    owner_token: str
    ws: websocket.WebSocket
    replica: Replica = field(default_factory=Replica)
    close_code: int | None = None
    problems: list[str] = field(default_factory=list)     # what the reading thread caught


class Fleet:
    """Opens streams and reads them all from one background thread."""

    def __init__(self, ws_url: str) -> None:
        self.ws_url = ws_url
        self.streams: list[FleetStream] = []
        self.messages = 0
        self.resumed = 0            # streams resumed here with `since` after ending elsewhere
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read_forever, daemon=True)

    def open(self, token: str, path: str = "/api/todos/", replica: Replica | None = None) -> FleetStream:
        """A stream of `path`; given the `replica` of a stream that ended elsewhere, it resumes
        it (`path` then carries `?since=` its rev)."""
        ws = websocket.create_connection(self.ws_url + path, header=[f"Authorization: Bearer {token}"],
                                         timeout=30)
        if replica is not None:
            replica.reconnect()
        stream = FleetStream(token, ws, replica or Replica())
        while not stream.replica.ready:
            self._receive(stream)
        ws.settimeout(5)
        with self._lock:
            self.streams.append(stream)
            self._selector.register(ws.sock, selectors.EVENT_READ, stream)
        return stream

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for stream in self.streams:
            try:
                stream.ws.close(timeout=0.2)
            except Exception:
                pass
            finally:
                stream.ws.shutdown()
        self._selector.close()

    def abandon(self, stream: FleetStream) -> None:
        """Give a stream up without a closing handshake, as a client does whose server is unreachable."""
        with self._lock:
            if stream in self.streams:
                self.streams.remove(stream)
                try:
                    self._selector.unregister(stream.ws.sock)
                except (KeyError, ValueError):
                    pass             # already unregistered by a failed read
        stream.ws.shutdown()

    def _receive(self, stream: FleetStream) -> None:
        opcode, frame = stream.ws.recv_data_frame(True)
        if opcode == websocket.ABNF.OPCODE_TEXT:
            stream.replica.apply(json.loads(frame.data))      # a broken promise raises, and is a problem
            self.messages += 1
        elif opcode == websocket.ABNF.OPCODE_CLOSE:
            stream.close_code = int.from_bytes(frame.data[:2], "big") if len(frame.data) >= 2 else 1005
            raise ConnectionError(f"stream closed with {stream.close_code}")

    def _read_forever(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                events = self._selector.select(timeout=0.05)
            for key, _ in events:
                stream: FleetStream = key.data
                try:
                    self._receive(stream)
                except Exception as error:
                    stream.problems.append(f"read failed: {error!r}")
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
