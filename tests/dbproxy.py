"""A TCP proxy in front of PostgreSQL that cuts, refuses and stalls connections by application_name.

It plays the network between a server and its database: one kind of connection
(the change listener, `todopy-listener`) can be made to fail on its own while the
connection pool keeps working, and every connection attempt is recorded, so tests
can see how often a client retries while it cannot get through. A stalled
connection is a network partition: nothing passes either way, not even a close,
while both kernels still answer keepalives.
"""
from __future__ import annotations

import socket
import struct
import threading
import time

SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed during the startup packet")
        data += chunk
    return data


def _application_name(startup: bytes) -> str:
    """The application_name of a StartupMessage's body (after the protocol version)."""
    fields = startup[4:].split(b"\0")
    params = dict(zip(fields[0::2], fields[1::2]))
    return params.get(b"application_name", b"").decode()


class DatabaseProxy:
    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (host, upstream_port)
        self.listener = socket.create_server((host, 0))
        self.port = self.listener.getsockname()[1]
        self.attempts: list[tuple[float, str]] = []      # (monotonic time, application_name)
        self._refused: set[str] = set()
        self._stalled: set[int] = set()      # ids of the sockets held
        self._live: list[tuple[str, socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept_forever, daemon=True).start()

    def dsn(self, dsn: str) -> str:
        """`dsn` (a postgresql:// URL to the upstream port) pointed at the proxy instead."""
        marker = f":{self.upstream[1]}/"
        assert marker in dsn, dsn
        return dsn.replace(marker, f":{self.port}/")

    def refuse(self, application_name: str) -> None:
        """Cut that application's connections and refuse its new ones (others pass)."""
        with self._lock:
            self._refused.add(application_name)
            cut = [(client, server) for name, client, server in self._live if name == application_name]
        for pair in cut:
            for sock in pair:
                _shut(sock)

    def stall(self, application_name: str) -> None:
        """Hold every byte (and close) of that application's live connections until `unstall`; new ones pass."""
        with self._lock:
            self._stalled.update(id(sock) for name, client, server in self._live if name == application_name
                                 for sock in (client, server))

    def unstall(self) -> None:
        with self._lock:
            self._stalled.clear()

    def allow(self, application_name: str) -> None:
        with self._lock:
            self._refused.discard(application_name)

    def attempts_of(self, application_name: str, since: float = 0.0) -> list[float]:
        with self._lock:
            return [moment for moment, name in self.attempts if name == application_name and moment >= since]

    def close(self) -> None:
        self._closed = True
        _shut(self.listener)
        self.listener.close()
        with self._lock:
            for _, client, server in self._live:
                _shut(client), _shut(server)

    # -- internals --------------------------------------------------------------------------

    def _accept_forever(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        server = None
        try:
            while True:
                head = _read_exactly(client, 8)
                length, code = struct.unpack("!II", head)
                if code not in (SSL_REQUEST, GSSENC_REQUEST):
                    break
                if server is None:      # encryption requests: the database answers (S/G or N)
                    server = socket.create_connection(self.upstream)
                server.sendall(head)
                client.sendall(_read_exactly(server, 1))
            startup = head[4:] + _read_exactly(client, length - 8)
            name = _application_name(startup)
            with self._lock:
                self.attempts.append((time.monotonic(), name))
                refused = name in self._refused
            if refused:
                raise ConnectionError("refused")
            if server is None:
                server = socket.create_connection(self.upstream)
            server.sendall(head[:4] + startup)
            with self._lock:
                self._live.append((name, client, server))
        except (OSError, ConnectionError, struct.error):
            _shut(client), client.close()
            if server is not None:
                _shut(server), server.close()
            return
        threading.Thread(target=self._pump, args=(server, client), daemon=True).start()
        self._pump(client, server)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                chunk = source.recv(65536)
                self._hold_while_stalled(source)
                if not chunk:
                    break
                sink.sendall(chunk)
        except OSError:
            pass
        _shut(source), _shut(sink)
        source.close()              # the other direction's recv has returned: shut down above
        with self._lock:
            self._live = [entry for entry in self._live if entry[1] is not source and entry[2] is not source]

    def _hold_while_stalled(self, sock: socket.socket) -> None:
        while id(sock) in self._stalled and not self._closed:
            time.sleep(0.01)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
