"""The WebSocket codec (todopy.realtime.frames), frame by frame, with wsproto (sans-IO) as the oracle.

The server reads client frames with its own `FrameReader` (it drops data frames
unbuffered, which wsproto would buffer) and writes with `encode_frame`; both are
held to wsproto's reading of the same bytes, on frames hypothesis generates
(invalid ones most of all). tests/test_websocket_frames.py checks the same rules
against a running server.
"""
from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import CloseConnection, Message, Ping, Pong

from tests.unit.realtime.client_frames import (CLOSE_CODES, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                                               RESERVED_OPCODES, client_frame)
from todopy.realtime.frames import MAX_CLIENT_FRAME, FrameReader, encode_frame


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
