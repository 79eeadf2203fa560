"""Minimal raw-socket clients for the load generator: WebSocket streams and keep-alive HTTP.

Thousands of them live in one gevent process, so they do as little as possible:
no JSON unless asked, frames parsed straight from a bytearray, pings answered.
"""
from __future__ import annotations

import base64
import os
import struct
import time
from typing import Callable

import gevent
from gevent import socket

OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA
READY_MARK = b'"type":"ready"'


# Linux: a socket bound to a source address takes its port at connect, unique per destination.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def connect(host: str, port: int, timeout: float, source: str | None = None) -> socket.socket:
    """A TCP connection with Nagle off; from the loopback address `source` when given.

    One source address has about 28,000 ephemeral ports (net.ipv4.ip_local_port_range):
    more streams than that to one server need several (127.0.0.2, 127.0.0.3, ...).
    """
    if source is None:
        sock = socket.create_connection((host, port), timeout=timeout)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source, 0))
            sock.settimeout(timeout)
            sock.connect((host, port))
        except BaseException:
            sock.close()
            raise
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_head(sock: socket.socket, buffer: bytearray) -> bytes:
    """Read an HTTP response head; leaves what follows it in `buffer`."""
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            head = bytes(buffer[:end])
            del buffer[:end + 4]
            return head
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed during the response head")
        buffer += data


def _masked(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


class Stream:
    """One WebSocket stream: handshake, wait for `ready`, then hand each text frame to `on_text`."""

    __slots__ = ("sock", "buffer", "ready", "close_code", "on_text")

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.buffer = bytearray()
        self.ready = False
        self.close_code: int | None = None
        self.on_text: Callable[[bytes, float], None] | None = None

    def open(self, host: str, port: int, path: str, token: str | None, timeout: float,
             source: str | None = None) -> None:
        """Connect and read until the server's `ready` (raises on refusal or timeout)."""
        self.sock = sock = connect(host, port, timeout, source)
        key = base64.b64encode(os.urandom(16)).decode()
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      f"{auth}\r\n").encode())
        head = _read_head(sock, self.buffer)
        status = head.split(b" ", 2)[1] if head.count(b" ") >= 1 else b"?"
        if status != b"101":
            raise ConnectionError(f"handshake refused: {head.splitlines()[0].decode(errors='replace')}")
        while not self.ready:
            if not self._drain(time.perf_counter()):
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError(f"closed before ready (code {self.close_code})")
                self.buffer += data
        sock.settimeout(None)

    def read_forever(self, pause: float = 0.0) -> None:
        """Read frames until the connection ends (run in its own greenlet).

        With `pause`, wait that long after each read, so that frames pile up and one
        read takes several: for counting, where the load generator must not be the
        bottleneck (arrival times are then known to within `pause`).
        """
        sock = self._connected()
        try:
            while True:
                self._drain(time.perf_counter())
                if self.close_code is not None:
                    return
                data = sock.recv(262144)
                if not data:
                    return
                self.buffer += data
                if pause:
                    gevent.sleep(pause)
        except OSError:
            return

    def _drain(self, now: float) -> bool:
        """Handle every complete frame in the buffer; True if any was handled."""
        buf = self.buffer
        pos, handled, size = 0, False, len(buf)
        while size - pos >= 2:
            opcode, length = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                start = pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = struct.unpack_from("!Q", buf, pos + 2)[0]
                start = pos + 10
            end = start + length
            if end > size:
                break
            handled = True
            if opcode == OP_TEXT:
                if self.ready:
                    if self.on_text is not None:
                        self.on_text(bytes(buf[start:end]), now)
                elif buf.find(READY_MARK, start, end) >= 0:
                    self.ready = True
            elif opcode == OP_PING:
                self._connected().sendall(_masked(OP_PONG, bytes(buf[start:end])))
            elif opcode == OP_CLOSE:
                self.close_code = int.from_bytes(buf[start:start + 2], "big") if length >= 2 else 1005
                try:
                    self._connected().sendall(_masked(OP_CLOSE, bytes(buf[start:start + 2])))
                except OSError:
                    pass
                pos = end
                break
            pos = end
        if pos:
            del buf[:pos]
        return handled

    def _connected(self) -> socket.socket:
        # Frames are read only once open() has connected.
        assert self.sock is not None, "stream not open"
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass


class Http:
    """One keep-alive HTTP/1.1 connection; `request` returns (status, body)."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.sock = connect(host, port, timeout)
        self.buffer = bytearray()

    def request(self, method: str, path: str, token: str | None = None, body: bytes | None = None) -> tuple[int, bytes]:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        elif method in ("POST", "PUT", "PATCH"):
            lines.append("Content-Length: 0")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        head = _read_head(self.sock, self.buffer)
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(self.buffer) < length:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed during the response body")
            self.buffer += data
        payload = bytes(self.buffer[:length])
        del self.buffer[:length]
        return status, payload

    def close(self) -> None:
        self.sock.close()
