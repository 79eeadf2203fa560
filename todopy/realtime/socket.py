"""A server-side WebSocket connection: frames out, control frames in, real close codes.

gevent-websocket 0.10.1 performs the handshake for us, but its WebSocket object
drops the close code (clients see 1005), reads client frames of any size into
memory, and str()s bytes payloads; so after the handshake we speak the frame
protocol here.

The stream's own greenlet writes; while it is idle, the dispatcher may write a
frame the socket takes at once (try_send), which spares a wake-up per message.
Reading needs no greenlet of its own: clients send nothing but control frames
(and frames we ignore), so an event-loop watcher parses whatever arrives and
leaves what needs an answer (a pong, the echo of a close) to the writer. An
idle stream is one parked greenlet, not two, which is most of what it costs in
memory.

`FrameReader` is the receiving half of RFC 6455 written sans-IO, as strict as a
server must be (tests/test_websocket_frames.py holds it to wsproto's verdicts on
generated frames); wsproto itself would buffer every client message we ignore.
"""
from __future__ import annotations

import codecs
import os
import socket
import struct
import time
from typing import Any, Callable

import gevent
import gevent.event
import gevent.socket

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_CLIENT_FRAME = 64 * 1024     # clients have little to tell us; refuse to buffer more
READ_SIZE = 64 * 1024
READ = 1                         # libev's EV_READ

# Close codes this server uses.
NORMAL, GOING_AWAY, PROTOCOL_ERROR, POLICY, TOO_BIG, SERVER_ERROR, TOO_SLOW = 1000, 1001, 1002, 1008, 1009, 1011, 4008
INVALID_DATA = 1007
DATA_OPCODES = frozenset({OP_CONTINUATION, OP_TEXT, OP_BINARY})
CONTROL_OPCODES = frozenset({OP_CLOSE, OP_PING, OP_PONG})
# Close codes a peer may send (RFC 6455 section 7.4 and IANA's registry): 1004-1006 and
# 1015 are reserved or local-only, 1016-2999 unassigned, 3000-4999 for applications.
VALID_PEER_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013}) | \
    frozenset(range(3000, 5000))
NOT_A_MEMBER, LIST_DELETED = 4403, 4404


def _nothing() -> None:
    """The control callback before `start_reading` gives the real one."""


class ConnectionClosed(Exception):
    """The peer closed, vanished, or broke the protocol."""


class WriteStalled(ConnectionClosed):
    """The peer took no byte for the write timeout (it stopped reading); the connection was dropped."""


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked frame, as a server sends it."""
    length = len(payload)
    if length < 126:
        return bytes((0x80 | opcode, length)) + payload
    if length <= 0xFFFF:
        return struct.pack("!BBH", 0x80 | opcode, 126, length) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, length) + payload


def text_frame(payload: bytes) -> bytes:
    return encode_frame(OP_TEXT, payload)


def _truncate(text: str, limit: int) -> bytes:
    """`text` in UTF-8, cut to at most `limit` bytes without splitting a character."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore").encode("utf-8")


def _unmask(payload: bytes, mask: bytes) -> bytes:
    if not mask:
        return payload
    key = int.from_bytes((mask * (len(payload) // 4 + 1))[:len(payload)], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(len(payload), "big")


class FrameReader:
    """A client's frames in, what they call for out (RFC 6455 sections 5 and 7), without I/O.

    `feed(data)` returns the control frames that completed, as (opcode, payload)
    pairs for pings and pongs; data frames are checked (framing, UTF-8 of text)
    and dropped, but for short text messages, kept in `texts` for the reader's owner. Reading stops at the peer's close (`closed` holds its code, or
    None for a close without one, and its reason) or at the first violation
    (`failure` holds the close code and reason to answer with).
    """

    __slots__ = ("_inbox", "_message", "_utf8", "_text", "closed", "failure", "frames", "texts")
    # A text message longer than this (in characters) is read, its UTF-8 checked, but not handed on.
    # Not a module constant: the module's numbers from 1000 to 4999 are its close codes.
    MAX_TEXT = 1024

    def __init__(self) -> None:
        self._inbox = bytearray()
        self._message: int | None = None     # opcode of the fragmented message in progress
        self._utf8: codecs.IncrementalDecoder | None = None
        self._text: list[str] | None = None    # the text message in progress, while short enough to keep
        self.texts: list[str] = []             # short text messages completed, until their owner takes them
        self.closed: tuple[int | None, str] | None = None
        self.failure: tuple[int, str] | None = None
        self.frames = 0                      # complete frames read: each proves the peer alive

    @property
    def done(self) -> bool:
        return self.closed is not None or self.failure is not None

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        controls: list[tuple[int, bytes]] = []
        if self.done:
            return controls
        inbox = self._inbox
        inbox += data
        while len(inbox) >= 2 and not self.done:
            first, second = inbox[0], inbox[1]
            fin, opcode, length, start = first & 0x80, first & 0x0F, second & 0x7F, 2
            if opcode not in DATA_OPCODES and opcode not in CONTROL_OPCODES:
                return self._fail(PROTOCOL_ERROR, "reserved opcode", controls)
            if opcode in CONTROL_OPCODES and (not fin or length > 125):
                return self._fail(PROTOCOL_ERROR, "control frames are single and at most 125 bytes", controls)
            if length == 126:
                if len(inbox) < 4:
                    break
                length, start = struct.unpack_from("!H", inbox, 2)[0], 4
                if length < 126:
                    return self._fail(PROTOCOL_ERROR, "payload length not in its shortest form", controls)
            elif length == 127:
                if len(inbox) < 10:
                    break
                length, start = struct.unpack_from("!Q", inbox, 2)[0], 10
                if length <= 0xFFFF or length >> 63:
                    return self._fail(PROTOCOL_ERROR, "payload length not in its shortest form", controls)
            if first & 0x70:
                return self._fail(PROTOCOL_ERROR, "no extension was negotiated: RSV bits must be 0", controls)
            if not second & 0x80:
                return self._fail(PROTOCOL_ERROR, "client frames must be masked", controls)
            if length > MAX_CLIENT_FRAME:
                return self._fail(TOO_BIG, "frames from clients are ignored; keep them small", controls)
            if len(inbox) < start + 4 + length:
                break
            mask = bytes(inbox[start:start + 4])
            # Only control frames and text (its UTF-8 is checked) need their payload unmasked.
            wanted = opcode in CONTROL_OPCODES or opcode == OP_TEXT or \
                (opcode == OP_CONTINUATION and self._utf8 is not None)
            payload = _unmask(bytes(inbox[start + 4:start + 4 + length]), mask) if wanted else b""
            del inbox[:start + 4 + length]
            self.frames += 1
            if opcode in CONTROL_OPCODES:
                if opcode == OP_CLOSE:
                    self._close(payload)
                else:
                    controls.append((opcode, payload))
            else:
                self._data(opcode, bool(fin), payload)
        if self.done:
            self._inbox = bytearray()
        return controls

    def _data(self, opcode: int, fin: bool, payload: bytes) -> None:
        if opcode == OP_CONTINUATION:
            if self._message is None:
                self.failure = (PROTOCOL_ERROR, "continuation frame without a message to continue")
                return
        elif self._message is not None:
            self.failure = (PROTOCOL_ERROR, "a new message began before the last one ended")
            return
        else:
            self._message = opcode
            self._utf8 = codecs.getincrementaldecoder("utf-8")() if opcode == OP_TEXT else None
            self._text = [] if opcode == OP_TEXT else None
        if self._utf8 is not None:
            try:
                text = self._utf8.decode(payload, fin)
            except UnicodeDecodeError:
                self.failure = (INVALID_DATA, "text messages must be UTF-8")
                return
            if self._text is not None:
                self._text.append(text)
                if sum(map(len, self._text)) > self.MAX_TEXT:
                    self._text = None
        if fin:
            if self._text is not None:
                self.texts.append("".join(self._text))
            self._message, self._utf8, self._text = None, None, None

    def _close(self, payload: bytes) -> None:
        if not payload:
            self.closed = (None, "")
        elif len(payload) == 1:
            self.failure = (PROTOCOL_ERROR, "a close frame's code takes two bytes")
        else:
            code = struct.unpack_from("!H", payload)[0]
            if code not in VALID_PEER_CODES:
                self.failure = (PROTOCOL_ERROR, "reserved or unknown close code")
                return
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                self.failure = (INVALID_DATA, "close reasons must be UTF-8")
                return
            self.closed = (code, reason)

    def _fail(self, code: int, reason: str, controls: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        self.failure = (code, reason)
        self._inbox = bytearray()
        return controls


class Socket:
    """Writes frames (from the stream's greenlet, or try_send) and reads the peer's in the event loop.

    `start_reading(on_control, on_end)`: `on_control()` when a pong is due,
    `on_end()` once the peer closed, vanished or broke the protocol; both are
    called in the event loop and must not block.
    """

    __slots__ = ("_sock", "_reader", "_buffered", "_watcher", "_on_control", "_on_end", "_on_text", "_ended", "_clock",
                 "last_seen",
                 "close_sent", "close_received", "input_done", "pong_due", "_answer", "unsent", "write_timeout")

    def __init__(self, sock, buffered: bytes = b"", clock: Callable[[], float] = time.monotonic,
                 write_timeout: float | None = 30.0) -> None:
        self._sock = sock
        # A write that makes no progress for this long drops the connection: a client that
        # never reads (yet answers pings) would otherwise hold its greenlet, its queue and
        # megabytes of kernel send buffer for ever.
        self.write_timeout = write_timeout
        self._reader = FrameReader()
        self._buffered = buffered               # client bytes that arrived with the handshake
        self._watcher: Any = None               # the event loop's io watcher while reading
        self._on_control: Callable[[], None] = _nothing
        self._on_end: Callable[[], None] | None = None
        self._on_text: Callable[[str], None] | None = None
        self._ended: gevent.event.Event | None = None   # made only when someone waits for the end
        self._clock = clock
        self.last_seen = clock()
        self.close_sent = False
        self.close_received = False
        self.input_done = False
        self.pong_due: bytes | None = None     # the payload of the latest unanswered ping
        self._answer: tuple[int | None, str] | None = None   # the close frame the peer's input calls for
        self.unsent = b""                       # the tail of a frame try_send() could not write whole

    # -- writing ----------------------------------------------------------------

    def send_text(self, payload: bytes) -> None:
        self.send_frames(text_frame(payload))

    def send_frames(self, frames: bytes) -> None:
        """Write already encoded frames (one or several, back to back)."""
        if self.close_sent:
            raise ConnectionClosed("close already sent")
        self._write(frames)

    def try_send(self, frame: bytes) -> bool:
        """Write `frame` now without waiting (from any greenlet); False if the socket takes none of it.

        A frame taken in part leaves its tail in `unsent`, which the next write sends
        first: the writer's greenlet must then be woken to `flush()`.
        """
        if self.close_sent or self.unsent:
            return False
        try:
            sent = self._sock.send(frame, 0, timeout=0.0)
        except OSError:
            return False                # full (EAGAIN), or broken: the writer's own write will tell
        if sent < len(frame):
            if not sent:
                return False
            self.unsent = frame[sent:]
        return True

    def flush(self) -> None:
        """Send what try_send() left over."""
        if self.unsent and not self.close_sent:
            self._write(b"")

    def send_ping(self) -> None:
        self.send_frames(encode_frame(OP_PING, b""))

    def answer_ping(self) -> None:
        """Send the pong a ping asked for, if one is due."""
        payload, self.pong_due = self.pong_due, None
        if payload is not None and not self.close_sent:
            self._write(encode_frame(OP_PONG, payload))

    def close(self, code: int | None = NORMAL, reason: str = "") -> None:
        """Send a close frame with `code` (None: no code) once; the caller then drops the connection."""
        if self.close_sent:
            return
        self.close_sent = True
        payload = b"" if code is None else struct.pack("!H", code) + _truncate(reason, 123)
        try:
            self._write(encode_frame(OP_CLOSE, payload))
        except ConnectionClosed:
            pass

    def answer_close(self) -> None:
        """Send the close frame the peer's input calls for: the echo of its close code, or the
        code of its violation (1002, 1007, 1009)."""
        if self._answer is not None:
            self.close(*self._answer)

    def _write(self, data: bytes) -> None:
        if self.unsent:
            data, self.unsent = self.unsent + data, b""
        try:
            # One send() nearly always takes a whole frame; a loop only for the rest. Each
            # send waits at most write_timeout for room: a progress deadline, not a total one.
            sent = self._send(data)
            if sent < len(data):
                view = memoryview(data)[sent:]
                while view:
                    view = view[self._send(view):]
        except TimeoutError:
            self.drop()
            raise WriteStalled(f"the peer read nothing for {self.write_timeout} s") from None
        except OSError as error:
            raise ConnectionClosed(str(error)) from None

    def _send(self, data: bytes | memoryview) -> int:
        """Send what the socket takes now, waiting at most write_timeout for it to take anything.

        (gevent's `send(timeout=...)` waits with the socket's own timeout, here none.)
        """
        while True:
            try:
                return self._sock.send(data, 0, timeout=0.0)
            except BlockingIOError:
                pass
            gevent.socket.wait_write(self._sock.fileno(), timeout=self.write_timeout,
                                     timeout_exc=TimeoutError("no write progress"))

    def drop(self) -> None:
        """Reset the connection when it closes, discarding what the peer never read."""
        self.close_sent = True          # nothing more can be framed after a partial frame
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass

    # -- reading (event-loop callbacks) ---------------------------------------

    def start_reading(self, on_control: Callable[[], None], on_end: Callable[[], None],
                      on_text: Callable[[str], None] | None = None) -> None:
        """`on_text(message)`, if given, for each short text message the peer sends (in the event loop too)."""
        self._on_control, self._on_end, self._on_text = on_control, on_end, on_text
        if self._buffered:
            buffered, self._buffered = self._buffered, b""
            self._received(buffered)
        if not self.input_done:
            self._watcher = gevent.get_hub().loop.io(self._sock.fileno(), READ)
            self._watcher.start(self._readable)

    def stop_reading(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher.close()
            self._watcher = None

    def wait_input_done(self, timeout: float) -> None:
        """Wait (up to `timeout`) for the peer's close frame or the connection's end."""
        if not self.input_done:
            self._ended = gevent.event.Event()
            self._ended.wait(timeout)

    def _readable(self) -> None:
        try:
            data = os.read(self._sock.fileno(), READ_SIZE)   # the socket is non-blocking; it is readable
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._finish()
            return
        self._received(data)

    def _received(self, data: bytes) -> None:
        """Act on the frames `data` completes: answer pings, echo a close, refuse a violation."""
        reader = self._reader
        seen = reader.frames
        controls = reader.feed(data)
        if reader.frames != seen:
            self.last_seen = self._clock()
        if reader.texts:
            texts, reader.texts = reader.texts, []
            if self._on_text is not None:
                for text in texts:
                    self._on_text(text)
        for opcode, payload in controls:
            if opcode == OP_PING:
                self.pong_due = payload
                self._on_control()
            # Pongs (and data frames) only prove the peer is alive.
        if reader.closed is not None:
            self.close_received = True
            self._answer = (reader.closed[0], "")
            self._finish()
        elif reader.failure is not None:
            self._answer = reader.failure
            self._finish()

    def _finish(self) -> None:
        self.input_done = True
        self.stop_reading()
        if self._ended is not None:
            self._ended.set()
        if self._on_end is not None:
            self._on_end()

    def abort(self) -> None:
        """Drop the TCP connection without ceremony (dead or misbehaving peer)."""
        try:
            self._sock.shutdown(2)
        except OSError:
            pass
