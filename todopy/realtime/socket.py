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
"""
from __future__ import annotations

import os
import struct
import time
from typing import Callable

import gevent
import gevent.event

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_CLIENT_FRAME = 64 * 1024     # clients have nothing to tell us; refuse to buffer more
READ_SIZE = 64 * 1024
READ = 1                         # libev's EV_READ

# Close codes this server uses.
NORMAL, GOING_AWAY, PROTOCOL_ERROR, POLICY, TOO_BIG, SERVER_ERROR, TOO_SLOW = 1000, 1001, 1002, 1008, 1009, 1011, 4008
NOT_A_MEMBER, LIST_DELETED = 4403, 4404


class ConnectionClosed(Exception):
    """The peer closed, vanished, or broke the protocol."""


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


def _unmask(payload: bytes, mask: bytes) -> bytes:
    if not mask:
        return payload
    key = int.from_bytes((mask * (len(payload) // 4 + 1))[:len(payload)], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(len(payload), "big")


class Socket:
    """Writes frames (from the stream's greenlet, or try_send) and reads the peer's in the event loop.

    `start_reading(on_control, on_end)`: `on_control()` when a pong is due,
    `on_end()` once the peer closed, vanished or broke the protocol; both are
    called in the event loop and must not block.
    """

    __slots__ = ("_sock", "_inbox", "_watcher", "_on_control", "_on_end", "_ended", "_clock", "last_seen",
                 "close_sent", "close_received", "input_done", "pong_due", "_answer", "unsent")

    def __init__(self, sock, buffered: bytes = b"", clock: Callable[[], float] = time.monotonic) -> None:
        self._sock = sock
        self._inbox = bytearray(buffered)      # client bytes that arrived with the handshake
        self._watcher = None
        self._on_control: Callable[[], None] | None = None
        self._on_end: Callable[[], None] | None = None
        self._ended: gevent.event.Event | None = None   # made only when someone waits for the end
        self._clock = clock
        self.last_seen = clock()
        self.close_sent = False
        self.close_received = False
        self.input_done = False
        self.pong_due: bytes | None = None     # the payload of the latest unanswered ping
        self._answer: tuple[int, str] | None = None   # the close frame the peer's last frame calls for
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

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Send a close frame with `code` (once); the caller then drops the connection."""
        if self.close_sent:
            return
        self.close_sent = True
        try:
            self._write(encode_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode("utf-8")[:120]))
        except ConnectionClosed:
            pass

    def answer_close(self) -> None:
        """Send the close frame the peer's input calls for: the echo of its close, or 1009."""
        if self._answer is not None:
            self.close(*self._answer)

    def _write(self, data: bytes) -> None:
        if self.unsent:
            data, self.unsent = self.unsent + data, b""
        try:
            # One send() nearly always takes a whole frame; sendall() only for the rest
            # (it costs a getsockopt per call, which adds up over thousands of sockets).
            sent = self._sock.send(data)
            if sent < len(data):
                self._sock.sendall(memoryview(data)[sent:])
        except OSError as error:
            raise ConnectionClosed(str(error)) from None

    # -- reading (event-loop callbacks) ---------------------------------------

    def start_reading(self, on_control: Callable[[], None], on_end: Callable[[], None]) -> None:
        self._on_control, self._on_end = on_control, on_end
        if self._inbox:
            self._parse()
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
        self._inbox += data
        self._parse()

    def _parse(self) -> None:
        """Act on every complete frame in the inbox; ignore data frames, answer control frames."""
        inbox = self._inbox
        while len(inbox) >= 2 and not self.input_done:
            first, second = inbox[0], inbox[1]
            opcode, length, start = first & 0x0F, second & 0x7F, 2
            if opcode >= OP_CLOSE and (not first & 0x80 or length > 125):
                self._finish()              # fragmented or oversized control frame: a broken peer
                return
            if length == 126:
                if len(inbox) < 4:
                    return
                length, start = struct.unpack_from("!H", inbox, 2)[0], 4
            elif length == 127:
                if len(inbox) < 10:
                    return
                length, start = struct.unpack_from("!Q", inbox, 2)[0], 10
            if length > MAX_CLIENT_FRAME:
                self._answer = (TOO_BIG, "frames from clients are ignored; keep them small")
                self._finish()
                return
            mask = b""
            if second & 0x80:
                if len(inbox) < start + 4:
                    return
                mask, start = bytes(inbox[start:start + 4]), start + 4
            if len(inbox) < start + length:
                return
            payload = bytes(inbox[start:start + length]) if opcode >= OP_CLOSE else b""
            del inbox[:start + length]
            self.last_seen = self._clock()
            if opcode == OP_PING:
                self.pong_due = _unmask(payload, mask)
                self._on_control()
            elif opcode == OP_CLOSE:
                self.close_received = True
                code = struct.unpack("!H", _unmask(payload, mask)[:2])[0] if len(payload) >= 2 else NORMAL
                self._answer = (code if 1000 <= code < 5000 else PROTOCOL_ERROR, "")
                self._finish()
                return
            # Text, binary, continuation and pong frames only prove the peer is alive.

    def _finish(self) -> None:
        self.input_done = True
        self._inbox = bytearray()
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
