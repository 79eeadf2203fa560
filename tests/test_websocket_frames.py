"""The WebSocket codec, frame by frame: wsproto (sans-IO) is the oracle, then the real server over a raw socket.

The server reads client frames with its own `FrameReader` (it drops data frames
unbuffered, which wsproto would buffer) and writes with `encode_frame`; both are
held to wsproto's reading of the same bytes, on frames hypothesis generates
(invalid ones most of all). Then each rule of RFC 6455 a hostile client could
break is checked against a running server.
"""
from __future__ import annotations

import base64
import os
import socket
import struct
import time

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import CloseConnection, Message, Ping, Pong

from tests.support import Api, register, wait_for
from todopy.realtime.socket import MAX_CLIENT_FRAME, FrameReader, encode_frame

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
RESERVED_OPCODES = [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF]
CLOSE_CODES = [0, 999, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
               1015, 1016, 2000, 2999, 3000, 3999, 4000, 4008, 4999, 5000, 65535]


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, masked: bool = True,
                 length_form: str = "shortest", mask: bytes | None = None) -> bytes:
    """One frame as a client would send it, or as a broken one would (any of its fields)."""
    length = len(payload)
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    mask_bit = 0x80 if masked else 0
    if length_form == "16" or (length_form == "shortest" and 126 <= length <= 0xFFFF):
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    elif length_form == "64" or (length_form == "shortest" and length > 0xFFFF):
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    else:
        head += bytes([mask_bit | length])
    if not masked:
        return head + payload
    mask = mask if mask is not None else os.urandom(4)
    return head + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


# -- the oracle ---------------------------------------------------------------------

def wsproto_verdict(chunks: list[bytes]) -> tuple[list[tuple[int, bytes]], tuple[str, int] | None]:
    """Pings and pongs wsproto sees in `chunks`, and how it ends: ("closed"|"failed", code) or None."""
    conn = Connection(ConnectionType.SERVER)
    controls: list[tuple[int, bytes]] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        for event in conn.events():
            if isinstance(event, Ping):
                controls.append((OP_PING, bytes(event.payload)))
            elif isinstance(event, Pong):
                controls.append((OP_PONG, bytes(event.payload)))
            elif isinstance(event, CloseConnection):
                kind = "closed" if conn.state is ConnectionState.REMOTE_CLOSING else "failed"
                return controls, (kind, int(event.code))
            else:
                assert isinstance(event, Message)
    return controls, None


def our_verdict(chunks: list[bytes]) -> tuple[list[tuple[int, bytes]], tuple[str, int] | None]:
    reader = FrameReader()
    controls: list[tuple[int, bytes]] = []
    for chunk in chunks:
        controls += reader.feed(chunk)
        if reader.closed is not None:
            return controls, ("closed", reader.closed[0] or 1005)
        if reader.failure is not None:
            return controls, ("failed", reader.failure[0])
    return controls, None


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    # Mostly valid frames, each field broken now and then: a sequence then often gets far
    # enough for its close frame (or its UTF-8 across fragments) to decide the outcome.
    kind = draw(st.sampled_from(["text"] * 3 + ["binary", "continuation", "continuation", "ping", "ping", "pong",
                                 "close", "close", "close", "reserved"]))
    opcode = {"text": OP_TEXT, "binary": OP_BINARY, "continuation": OP_CONT, "ping": OP_PING, "pong": OP_PONG,
              "close": OP_CLOSE}.get(kind) or draw(st.sampled_from(RESERVED_OPCODES))
    if kind == "close":
        payload = draw(st.one_of(
            st.just(b""), st.binary(min_size=1, max_size=1),
            st.tuples(st.sampled_from(CLOSE_CODES), st.text(max_size=20).map(str.encode))
            .map(lambda pair: struct.pack("!H", pair[0]) + pair[1]),
            st.tuples(st.sampled_from(CLOSE_CODES), st.binary(max_size=8))
            .map(lambda pair: struct.pack("!H", pair[0]) + pair[1])))
    elif kind in ("text", "continuation"):
        # Valid UTF-8 cut anywhere (a character may span fragments), or any bytes.
        payload = draw(st.one_of(
            st.tuples(st.text(max_size=30).map(str.encode), st.integers(0, 3), st.booleans())
            .map(lambda t: t[0][t[1]:] if t[2] else t[0][:max(0, len(t[0]) - t[1])]),
            st.binary(max_size=12)))
    elif kind in ("ping", "pong"):
        payload = draw(st.one_of(st.binary(max_size=16), st.binary(max_size=16),
                                 st.binary(min_size=124, max_size=128)))
    else:
        payload = draw(st.binary(max_size=300))
    control = opcode >= OP_CLOSE
    fin = draw(st.sampled_from([True] * 20 + [False])) if control else draw(st.booleans())
    rsv = draw(st.sampled_from([0] * 40 + [0x40, 0x20, 0x10]))
    masked = draw(st.sampled_from([True] * 40 + [False]))
    length_form = draw(st.sampled_from(["shortest"] * 40 + ["16", "64"]))
    return client_frame(opcode, payload, fin=fin, rsv=rsv, masked=masked, length_form=length_form)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """One well-formed message in 1-4 fragments (text cut anywhere, even inside a character)."""
    text = draw(st.booleans())
    data = draw(st.text(max_size=40).map(str.encode)) if text else draw(st.binary(max_size=60))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=3)))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
    return b"".join(client_frame((OP_TEXT if text else OP_BINARY) if i == 0 else OP_CONT, piece,
                                 fin=i == len(pieces) - 1) for i, piece in enumerate(pieces))


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]


@settings(max_examples=int(os.environ.get("TODOPY_FUZZ_EXAMPLES", "600")), deadline=None)
@given(st.lists(st.one_of(frames(), messages()), min_size=1, max_size=6), st.lists(st.integers(0, 10_000), max_size=6))
def test_the_reader_agrees_with_wsproto_on_generated_frames(sequence, cuts):
    chunks = split(b"".join(sequence), cuts)
    assert our_verdict(chunks) == wsproto_verdict(chunks)


@pytest.mark.parametrize("frame, code", [
    (client_frame(OP_CLOSE, b"\x03"), 1002),
    (client_frame(OP_CLOSE, struct.pack("!H", 1005)), 1002),
    (client_frame(OP_CLOSE, struct.pack("!H", 1000) + b"\xff\xfe"), 1007),
    (client_frame(OP_TEXT, b"\xed\xa0\x80"), 1007),
    (client_frame(OP_CONT, b"x"), 1002),
    (client_frame(OP_TEXT, b"x", masked=False), 1002),
    (client_frame(OP_TEXT, b"x", rsv=0x40), 1002),
    (client_frame(0x3, b""), 1002),
    (client_frame(OP_PING, b"x" * 126), 1002),
    (client_frame(OP_PING, b"x", fin=False), 1002),
    (client_frame(OP_BINARY, b"x" * 10, length_form="64"), 1002),
])
def test_known_violations_get_wsprotos_close_code(frame, code):
    assert our_verdict([frame]) == wsproto_verdict([frame]) == ([], ("failed", code))


def test_client_frames_over_64_kib_are_refused_with_1009_before_their_payload_arrives():
    reader = FrameReader()
    header = client_frame(OP_BINARY, b"x" * (MAX_CLIENT_FRAME + 1))[:14]
    assert reader.feed(header) == [] and reader.failure is not None and reader.failure[0] == 1009
    at_limit = FrameReader()
    at_limit.feed(client_frame(OP_BINARY, b"x" * MAX_CLIENT_FRAME) + client_frame(OP_PING, b"still here"))
    assert at_limit.failure is None


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), st.sampled_from([0, 125, 126, 127, 65535, 65536, 70000]).map(lambda n: "x" * n)))
def test_server_frames_read_back_in_wsproto_as_sent(text):
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(encode_frame(OP_TEXT, text.encode()) + encode_frame(OP_PING, b"p"))
    events = list(client.events())
    received = "".join(event.data for event in events if isinstance(event, Message))
    assert received == text and isinstance(events[-1], Ping) and events[-1].payload == b"p"


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
