"""A server-side WebSocket connection: frames out, control frames in, real close codes.

gevent-websocket 0.10.1 performs the handshake for us, but its WebSocket object
drops the close code (clients see 1005), reads client frames of any size into
memory, and str()s bytes payloads; so after the handshake we speak the frame
protocol here, reusing its Header codec.
"""
from __future__ import annotations

import struct
import time
from typing import Callable

import gevent.lock
from geventwebsocket.exceptions import WebSocketError
from geventwebsocket.websocket import Header

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA
MAX_CLIENT_FRAME = 64 * 1024     # clients have nothing to tell us; refuse to buffer more

# Close codes this server uses.
NORMAL, GOING_AWAY, PROTOCOL_ERROR, POLICY, TOO_BIG, SERVER_ERROR, TOO_SLOW = 1000, 1001, 1002, 1008, 1009, 1011, 4008


class ConnectionClosed(Exception):
    """The peer closed, vanished, or broke the protocol."""


class Socket:
    __slots__ = ("_sock", "_rfile", "_write_lock", "_clock", "last_seen", "close_sent", "close_received")

    def __init__(self, sock, rfile, clock: Callable[[], float] = time.monotonic) -> None:
        self._sock = sock
        self._rfile = rfile
        self._write_lock = gevent.lock.Semaphore()   # the reader answers pings while the writer writes
        self._clock = clock
        self.last_seen = clock()
        self.close_sent = False
        self.close_received = False

    # -- writing --------------------------------------------------------------

    def send_text(self, payload: bytes) -> None:
        self._send(OP_TEXT, payload)

    def send_ping(self) -> None:
        self._send(OP_PING, b"")

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Send a close frame with `code` (once); the caller then drops the connection."""
        if self.close_sent:
            return
        self.close_sent = True
        try:
            self._send(OP_CLOSE, struct.pack("!H", code) + reason.encode("utf-8")[:120], force=True)
        except ConnectionClosed:
            pass

    def _send(self, opcode: int, payload: bytes, force: bool = False) -> None:
        if self.close_sent and not force:
            raise ConnectionClosed("close already sent")
        frame = bytes(Header.encode_header(True, opcode, b"", len(payload), 0)) + payload
        try:
            with self._write_lock:
                self._sock.sendall(frame)
        except OSError as error:
            raise ConnectionClosed(str(error)) from None

    # -- reading --------------------------------------------------------------

    def read_until_closed(self) -> int | None:
        """Read and answer control frames until the peer closes or fails; return its close code."""
        while True:
            try:
                header = Header.decode_header(self._rfile)
                if header.length > MAX_CLIENT_FRAME:
                    self.close(TOO_BIG, "frames from clients are ignored; keep them small")
                    return None
                payload = self._rfile.read(header.length) if header.length else b""
            except (WebSocketError, OSError, ValueError):
                return None
            if len(payload) != header.length:
                return None
            if header.mask:
                payload = bytes(header.unmask_payload(payload))
            self.last_seen = self._clock()
            if header.opcode == OP_PING:
                try:
                    self._send(OP_PONG, payload)
                except ConnectionClosed:
                    return None
            elif header.opcode == OP_CLOSE:
                self.close_received = True
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else NORMAL
                self.close(code if 1000 <= code < 5000 else PROTOCOL_ERROR)
                return code
            # Text, binary and pong frames only prove the peer is alive: writes go through REST.

    def abort(self) -> None:
        """Drop the TCP connection without ceremony (dead or misbehaving peer)."""
        try:
            self._sock.shutdown(2)
        except OSError:
            pass
