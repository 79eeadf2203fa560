"""The WebSocket codec against the real server over a raw socket: each rule of RFC 6455 a hostile
client could break (the codec itself is held to wsproto in tests/unit/realtime/test_frames.py)."""
from __future__ import annotations

import base64
import os
import socket
import struct
import time

import pytest
import requests

from tests.support import Api, register, wait_for
from tests.unit.realtime.client_frames import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, client_frame
from todopy.realtime.frames import MAX_CLIENT_FRAME


# -- the real server ------------------------------------------------------------------

class RawStream:
    """A stream opened by hand over a TCP socket: frames go out exactly as written."""

    def __init__(self, port: int, token: str, path: str = "/api/todos/", receive_buffer: int | None = None) -> None:
        self.sock = socket.socket()
        if receive_buffer is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)   # before connecting
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"Authorization: Bearer {token}\r\n\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        # Snapshot, then ready: the stream is live.
        assert self.next_frame()[0] == OP_TEXT and b'"ready"' in self.next_frame()[1]

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server dropped the connection")
        return data

    def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.buffer += self._recv()
        taken, self.buffer = self.buffer[:n], self.buffer[n:]
        return taken

    def next_frame(self) -> tuple[int, bytes]:
        first, second = self._take(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._take(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._take(8))[0]
        assert not second & 0x80, "server frames are not masked"
        return first & 0x0F, self._take(length)

    def next_control_reply(self) -> tuple[int, bytes]:
        """The next frame that is not the server's own ping (with a short ping interval, one may come first)."""
        while True:
            opcode, payload = self.next_frame()
            if opcode != OP_PING:
                return opcode, payload

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_payload(self) -> bytes:
        """The payload of the server's close frame (pongs and other frames before it are skipped)."""
        while True:
            opcode, payload = self.next_frame()
            if opcode == OP_CLOSE:
                return payload

    def close(self) -> None:
        self.sock.close()


def close_code(payload: bytes) -> int | None:
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


@pytest.fixture
def stream(server, alice: Api):
    opened: list[RawStream] = []

    def open_stream() -> RawStream:
        opened.append(RawStream(server.port, alice.token))
        return opened[-1]

    yield open_stream
    for raw in opened:
        raw.close()


def test_a_ping_gets_a_pong_with_its_payload_and_the_stream_stays_open(stream):
    raw = stream()
    for payload in (b"", b"hello", os.urandom(125)):
        raw.send(client_frame(OP_PING, payload))
        assert raw.next_control_reply() == (OP_PONG, payload)
    # Data frames (whole or in fragments) are ignored; the stream lives on.
    raw.send(client_frame(OP_TEXT, "caf".encode(), fin=False) + client_frame(OP_CONT, "é".encode()) +
             client_frame(OP_BINARY, os.urandom(1000)) + client_frame(OP_PING, b"after"))
    assert raw.next_control_reply() == (OP_PONG, b"after")


@pytest.mark.parametrize("payload, echoed", [
    (struct.pack("!H", 1000), 1000), (struct.pack("!H", 1001) + b"bye", 1001), (struct.pack("!H", 3000), 3000),
    (struct.pack("!H", 4999) + "ça va".encode(), 4999), (b"", None),
])
def test_a_close_is_echoed_with_its_code(stream, payload, echoed):
    raw = stream()
    raw.send(client_frame(OP_CLOSE, payload))
    answer = raw.close_payload()
    assert close_code(answer) == echoed and (echoed is not None or answer == b"")


@pytest.mark.parametrize("frame, code", [
    pytest.param(client_frame(OP_CLOSE, b"\x03"), 1002, id="one-byte close"),
    *[pytest.param(client_frame(OP_CLOSE, struct.pack("!H", reserved)), 1002, id=f"close code {reserved}")
      for reserved in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000)],
    pytest.param(client_frame(OP_CLOSE, struct.pack("!H", 1000) + b"\xc3("), 1007, id="close reason not UTF-8"),
    pytest.param(client_frame(OP_TEXT, b"hi", masked=False), 1002, id="unmasked"),
    pytest.param(client_frame(OP_TEXT, b"hi", rsv=0x40), 1002, id="RSV1"),
    pytest.param(client_frame(OP_BINARY, b"hi", rsv=0x10), 1002, id="RSV3"),
    pytest.param(client_frame(0x3, b"hi"), 1002, id="reserved data opcode"),
    pytest.param(client_frame(0xB, b"hi"), 1002, id="reserved control opcode"),
    pytest.param(client_frame(OP_CONT, b"orphan"), 1002, id="orphan continuation"),
    pytest.param(client_frame(OP_TEXT, b"a", fin=False) + client_frame(OP_TEXT, b"b"), 1002, id="interleaved"),
    pytest.param(client_frame(OP_PING, b"x" * 126), 1002, id="oversized ping"),
    pytest.param(client_frame(OP_PING, b"x", fin=False), 1002, id="fragmented ping"),
    pytest.param(client_frame(OP_TEXT, b"\xff"), 1007, id="text not UTF-8"),
    pytest.param(client_frame(OP_TEXT, "é".encode()[:1], fin=False) + client_frame(OP_CONT, b"x"), 1007,
                 id="fragmented text not UTF-8"),
    pytest.param(client_frame(OP_BINARY, b"x" * (MAX_CLIENT_FRAME + 1)), 1009, id="over 64 KiB"),
    pytest.param(client_frame(OP_BINARY, b"x" * 8, length_form="64"), 1002, id="long form for a short length"),
])
def test_protocol_violations_get_their_close_code_not_a_dropped_connection(stream, frame, code):
    raw = stream()
    try:
        raw.send(frame)
    except OSError:
        pass        # the server may close before the rest of a large frame is sent
    assert close_code(raw.close_payload()) == code


# -- a client that never reads ---------------------------------------------------------

def metric(base_url: str, name: str) -> float:
    text = requests.get(base_url + "/metrics", timeout=10).text
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")]
    return sum(values)


def test_a_client_that_pings_but_never_reads_is_dropped_at_the_write_timeout(start_server):
    server = start_server(env={"TODOPY_WRITE_TIMEOUT": "2", "TODOPY_PING_INTERVAL": "1"})
    alice = register(server.base_url)
    title = "x" * 500
    todos = [alice.create_todo(f"{title} {i}") for i in range(300)]
    raw = RawStream(server.port, alice.token, receive_buffer=4096)
    try:
        assert metric(server.base_url, "todopy_open_streams") == 1
        # Stop reading; keep proving we are alive, while every toggle of all todos sends ~170 KB.
        started = time.monotonic()
        completed = False
        while metric(server.base_url, "todopy_open_streams") > 0:
            assert time.monotonic() - started < 40, "the stream still holds the connection of a client that never reads"
            completed = not completed
            response = alice.patch("/api/todos/", {"completed": completed})
            assert response.status_code == 200 and len(response.json()["todos"]) == len(todos)
            try:
                raw.send(client_frame(OP_PING, b"alive"))
            except OSError:
                break       # dropped
            time.sleep(0.2)
        wait_for(lambda: metric(server.base_url, "todopy_open_streams") == 0, timeout=10)
        assert metric(server.base_url, "todopy_stream_slow_consumers_dropped_total") >= 1
    finally:
        raw.close()
    # The server serves on, streams included.
    fresh = RawStream(server.port, alice.token)
    fresh.send(client_frame(OP_PING, b"ok"))
    assert fresh.next_control_reply() == (OP_PONG, b"ok")
    fresh.close()
