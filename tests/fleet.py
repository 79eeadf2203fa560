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
    """One stream of the fleet: whose it is, and the replica its messages build (across reconnections)."""

    owner_token: str
    ws: websocket.WebSocket
    replica: Replica = field(default_factory=Replica)
    close_code: int | None = None
    problems: list[str] = field(default_factory=list)     # what the reading thread caught
    path: str = "/api/todos/"
    ended: str | None = None       # why its connection ended, until it is resumed (with `ends_ok`)
    connections: int = 1
    url: str = ""                  # of its current (or last) connection


class Fleet:
    """Opens streams and reads them all from one background thread.

    By default a stream the server closes is a problem. With `ends_ok`, a close or a lost
    connection only marks the stream `ended` (and shuts its socket), for the caller to
    resume or retire it; broken promises (a replica's assertion) are problems either way.
    `pace` slows the reader down (seconds per message): a slow consumer.
    """

    def __init__(self, ws_url: str, *, ends_ok: bool = False, pace: float = 0.0,
                 sockopt: tuple = ()) -> None:
        self.ws_url = ws_url
        self.ends_ok = ends_ok
        self.pace = pace
        self.sockopt = sockopt
        self.streams: list[FleetStream] = []
        self.messages = 0
        self.resumed = 0               # streams resumed here with `since` after ending elsewhere
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._jobs: list = []          # selector changes, run by the reader between frames
        self.failures: list[str] = []  # what went wrong in the reader itself (not in a stream)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read_forever, daemon=True)

    def _connect(self, ws_url: str, path: str, token: str) -> websocket.WebSocket:
        return websocket.create_connection(ws_url + path, header=[f"Authorization: Bearer {token}"],
                                           timeout=30, sockopt=self.sockopt)

    def open(self, token: str, path: str = "/api/todos/", ws_url: str | None = None,
             replica: Replica | None = None) -> FleetStream:
        """A stream of `path`; given the `replica` of a stream that ended elsewhere, it resumes
        it (`path` then carries `?since=` its rev)."""
        ws = self._connect(ws_url or self.ws_url, path, token)
        if replica is not None:
            replica.reconnect()
        stream = FleetStream(token, ws, replica=replica or Replica(), path=path, url=(ws_url or self.ws_url) + path)
        self._sync(stream)
        with self._lock:
            self.streams.append(stream)
        return stream

    def resume(self, stream: FleetStream, ws_url: str | None = None) -> None:
        """Reconnect an ended stream with `since` (its replica's position), as a client must."""
        assert stream.ended is not None, "resume an ended stream only"
        sep = "&" if "?" in stream.path else "?"
        path = f"{stream.path}{sep}since={stream.replica.rev}"
        ws = self._connect(ws_url or self.ws_url, path, stream.owner_token)
        stream.url = (ws_url or self.ws_url) + path
        stream.replica.reconnect()
        stream.ws, stream.close_code, stream.ended = ws, None, None
        stream.connections += 1
        self._sync(stream)

    def abandon(self, stream: FleetStream) -> None:
        """Give a stream up without a closing handshake, as a client does whose server is unreachable."""
        done = threading.Event()

        def forget() -> None:      # on the reader's thread, which alone touches the selector
            with self._lock:
                self.streams.remove(stream)
            if stream.ended is None:
                try:
                    self._selector.unregister(stream.ws.sock)
                except (KeyError, ValueError):
                    pass           # already unregistered by a failed read
            done.set()

        with self._lock:
            ours = stream in self.streams
        if ours:
            self._call(forget)
            done.wait(10)
        stream.ended = stream.ended or "abandoned"
        stream.ws.shutdown()

    def close(self, stream: FleetStream) -> None:
        """The client leaves: a close frame, the server's answer awaited briefly."""
        self.close_many([stream])

    def close_many(self, streams: list[FleetStream]) -> None:
        """Close frames on all of them at once, then a moment for the server to answer, then the sockets go."""
        done = threading.Event()
        leaving: list[FleetStream] = []

        def leave() -> None:       # on the reader's thread: never inside one of its frames
            for stream in streams:
                if stream.ended is None:
                    self._selector.unregister(stream.ws.sock)
                    stream.ended = "closed by client"
                    leaving.append(stream)
            done.set()

        self._call(leave)
        done.wait(10)
        for stream in leaving:
            try:
                stream.ws.send_close()
            except Exception:
                pass
        deadline = time.monotonic() + 1.0
        for stream in leaving:     # the server's close frame (or whatever it still sent before it)
            try:
                stream.ws.settimeout(max(0.01, deadline - time.monotonic()))
                while stream.ws.recv_data_frame(True)[0] != websocket.ABNF.OPCODE_CLOSE:
                    pass
            except Exception:
                pass
            finally:
                stream.ws.shutdown()

    def _call(self, job) -> None:
        """Run `job` on the reader's thread (the only one that touches the selector), or here before it runs."""
        with self._lock:
            if self._thread.is_alive():
                self._jobs.append(job)
                return
        job()

    def _sync(self, stream: FleetStream) -> None:
        """Read up to `ready` on the caller's thread, then hand the stream to the reader."""
        try:
            while not stream.replica.ready:
                self._receive(stream)
        except BaseException:
            stream.ws.shutdown()
            stream.ended = stream.ended or "sync failed"
            raise
        stream.ws.settimeout(5)
        self._call(lambda: self._selector.register(stream.ws.sock, selectors.EVENT_READ, stream))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:      # started
            self._thread.join(10)
        for stream in self.streams:
            if stream.ended is not None and self.ends_ok:
                continue
            try:
                stream.ws.close(timeout=0.2)
            except Exception:
                pass
            finally:
                stream.ws.shutdown()
        self._selector.close()

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
                jobs, self._jobs = self._jobs, []
            for job in jobs:
                try:
                    job()
                except Exception as error:  # noqa: BLE001 - a dead reader would stall every stream: counted
                    self.failures.append(f"job: {error!r}")
            try:
                events = self._selector.select(timeout=0.05) if self._selector.get_map() else []
            except Exception as error:  # noqa: BLE001 - as above
                self.failures.append(f"select: {error!r}")
                events = []
            if not events:
                time.sleep(0.01)
            for key, _ in events:
                stream: FleetStream = key.data
                try:
                    self._receive(stream)
                except AssertionError as error:
                    stream.problems.append(f"broken promise: {error}")
                    self._end(key, stream, repr(error))
                except Exception as error:
                    if not self.ends_ok:
                        stream.problems.append(f"read failed: {error!r}")
                    self._end(key, stream, repr(error))
                if self.pace:
                    time.sleep(self.pace)

    def _end(self, key: selectors.SelectorKey, stream: FleetStream, why: str) -> None:
        self._selector.unregister(key.fileobj)
        stream.ended = why
        if self.ends_ok:
            stream.ws.shutdown()

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
