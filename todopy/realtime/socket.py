"""A server-side WebSocket connection: frames out from one writer, control frames in, real close codes.

gevent-websocket 0.10.1 performs the handshake for us, but its WebSocket object
drops the close code (clients see 1005), reads client frames of any size into
memory, and str()s bytes payloads; so after the handshake we speak the frame
protocol (todopy.realtime.frames) here.

The stream's own greenlet writes; while it is parked with nothing to do, the
dispatcher may write a frame the socket takes at once (`try_send`, the fast path
todopy.realtime.streams.Stream.send_now measures). Reading needs no greenlet of its own:
clients send nothing but control frames (and frames we ignore), so an event-loop
watcher parses whatever arrives and leaves what needs an answer (a pong, the echo
of a close) to the writer. An idle stream is one parked greenlet, not two, which
is most of what it costs in memory.
"""
from __future__ import annotations

import enum
import os
import socket
import struct
import time
from typing import Any, Callable

import gevent
import gevent.event
import gevent.socket

from todopy.realtime.frames import FrameReader, Opcode, close_frame, encode_frame, text_frame

READ_SIZE = 64 * 1024
READ = 1                         # libev's EV_READ


class State(enum.Enum):
    """The connection's two halves, as wsproto names them."""

    OPEN = "open"
    LOCAL_CLOSING = "our close frame sent"             # the peer's input may still come
    REMOTE_CLOSING = "the peer's input ended"          # it closed, vanished or broke the protocol
    CLOSED = "closed both ways"


def _nothing() -> None:
    """The control callback before `start_reading` gives the real one."""


class ConnectionClosed(Exception):
    """The peer closed, vanished, or broke the protocol."""


class WriteStalled(ConnectionClosed):
    """The peer took no byte for the write timeout (it stopped reading); the connection was dropped."""


class Socket:
    """Writes frames (from the stream's greenlet) and reads the peer's in the event loop.

    `start_reading(on_control, on_end)`: `on_control()` when a pong is due,
    `on_end()` once the peer closed, vanished or broke the protocol; both are
    called in the event loop and must not block.
    """

    __slots__ = ("_sock", "_reader", "_buffered", "_watcher", "_on_control", "_on_end", "_on_text", "_ended", "_clock",
                 "last_seen", "state", "pong_due", "_answer", "unsent", "write_timeout", "on_released")

    def __init__(self, sock, buffered: bytes = b"", clock: Callable[[], float] = time.monotonic,
                 write_timeout: float | None = 30.0) -> None:
        self._sock = sock                       # non-blocking: writes wait in `_send`, reads in the event loop
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
        self.state = State.OPEN
        self.pong_due: bytes | None = None     # the payload of the latest unanswered ping
        self._answer: tuple[int | None, str] | None = None   # the close frame the peer's input calls for
        self.unsent = b""                       # the tail of a frame try_send() could not write whole
        # What the connection holds besides its descriptor (its admission place): given back on release.
        self.on_released: Callable[[], None] = _nothing

    @property
    def close_sent(self) -> bool:
        return self.state in (State.LOCAL_CLOSING, State.CLOSED)

    @property
    def input_done(self) -> bool:
        return self.state in (State.REMOTE_CLOSING, State.CLOSED)

    def _closed_locally(self) -> None:
        self.state = State.CLOSED if self.state is State.REMOTE_CLOSING else \
            State.LOCAL_CLOSING if self.state is State.OPEN else self.state

    def _closed_remotely(self) -> None:
        self.state = State.CLOSED if self.state is State.LOCAL_CLOSING else \
            State.REMOTE_CLOSING if self.state is State.OPEN else self.state

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
            sent = self._sock.send(frame)
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
        self.send_frames(encode_frame(Opcode.PING, b""))

    def answer_ping(self) -> None:
        """Send the pong a ping asked for, if one is due."""
        payload, self.pong_due = self.pong_due, None
        if payload is not None and not self.close_sent:
            self._write(encode_frame(Opcode.PONG, payload))

    def close(self, code: int | None, reason: str = "") -> None:
        """Send a close frame with `code` (None: no code) once; the caller then drops the connection."""
        if self.close_sent:
            return
        self._closed_locally()
        try:
            self._write(close_frame(code, reason))
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
        """Send what the socket takes now, waiting at most write_timeout for it to take anything."""
        while True:
            try:
                return self._sock.send(data)
            except BlockingIOError:
                pass
            gevent.socket.wait_write(self._sock.fileno(), timeout=self.write_timeout,
                                     timeout_exc=TimeoutError("no write progress"))

    def drop(self) -> None:
        """Reset the connection when it closes, discarding what the peer never read."""
        self._closed_locally()          # nothing more can be framed after a partial frame
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
            if opcode == Opcode.PING:
                self.pong_due = payload
                self._on_control()
            # Pongs (and data frames) only prove the peer is alive.
        if reader.closed is not None:
            self._answer = (reader.closed[0], "")
            self._finish()
        elif reader.failure is not None:
            self._answer = reader.failure
            self._finish()

    def _finish(self) -> None:
        self._closed_remotely()
        self.stop_reading()
        if self._ended is not None:
            self._ended.set()
        if self._on_end is not None:
            self._on_end()

    def release(self) -> None:
        """End the connection: stop reading, close its descriptor (the stream's own since the
        handshake: the server no longer holds it) and give back what it held. Later calls do nothing
        (closing a closed socket is nothing, and what it held is given back once)."""
        self.stop_reading()
        try:
            self._sock.close()
        finally:
            on_released, self.on_released = self.on_released, _nothing
            on_released()

    def abort(self) -> None:
        """Drop the TCP connection without ceremony (dead or misbehaving peer)."""
        try:
            self._sock.shutdown(2)
        except OSError:
            pass
