"""Serving: gunicorn's master with gevent-websocket workers, each with its own pool, dispatcher, ringer and streams."""
from __future__ import annotations

import _socket
import base64
import binascii
import gc
import os
import logging
import re
import socket
import time
from typing import Any

import gevent
from gevent.pywsgi import WSGIHandler
from geventwebsocket.gunicorn.workers import GeventWebSocketWorker
from geventwebsocket.handler import WebSocketHandler
from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from todopy import fastpaths, request_headers
from todopy.environ import ACCEPT_WEBSOCKET, DEADLINE
from todopy.errors import BadRequest, HeaderFieldsTooLarge, HTTPError, RequestTimeout, URITooLong
from todopy.realtime.protocol import Close
from todopy.realtime.socket import Socket
from todopy.settings import Settings

log = logging.getLogger(__name__)
DIGITS = re.compile(r"[0-9]{1,18}")
DRAIN_LIMIT = 1024 * 1024   # unread body bytes read to keep a connection alive; past them it closes
LINGER_SECONDS = 1.0        # after closing for an unread body, how long its tail is still discarded
# The collector's thresholds (CPython's default: 700, 10, 10). Every idle stream keeps ~100
# objects the collector tracks, and a full collection walks them all: 2-3 s at 19,000 streams
# on 2 busy cores. A first generation 10 times larger leaves the older ones to fill 10 times
# slower: while 19,000 streams opened (make bench, idle), 2 full collections stopped the
# worker 3.5 s in all, against 13 and 15.4 s (and 158 handshakes refused meanwhile) with the
# default. The price: a closed stream's cyclic garbage (~20 objects) waits up to 10 times
# longer for a full collection. (7000, 10, 100) let no full collection run at all there, but
# would hold up to 100 times the default's garbage: worth it once a closed stream leaves none.
GC_THRESHOLD = (7_000, 10, 10)


class HeadTimeout(TimeoutError):
    """The request line and headers did not arrive within the read timeout, in all."""


class FramingError(ValueError):
    """The request does not say where its body ends in exactly one way (a 400)."""


class Handler(WebSocketHandler):
    """Lets the application decide before the WebSocket upgrade.

    gevent-websocket upgrades before the app runs, so a refused handshake could
    not be a plain 401/403/404. Here the app runs as for any request, with a
    callable in the environ that performs the upgrade when the view accepts.
    """

    read_timeout: float = 30.0            # set from settings by the worker
    write_timeout: float | None = 30.0    # streams' write progress deadline, from settings too
    # Keep-alive connections waiting for their next request. gunicorn's graceful
    # stop waits until no connection is open, so idle ones would hold it for the
    # whole graceful timeout; on stop they are closed (clients retry on another).
    _idle: set["Handler"] = set()
    _draining = False
    _head_timer: gevent.Timeout | None = None

    def handle(self) -> None:
        try:
            # pywsgi leaves Nagle on: keep-alive clients would wait ~40 ms per response.
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP (a unix socket)
        # Bounds slow headers and bodies (slowloris) and idle keep-alive connections.
        self.socket.settimeout(self.read_timeout)
        super().handle()

    def read_requestline(self) -> str:
        Handler._idle.add(self)
        try:
            return super().read_requestline()
        finally:
            Handler._idle.discard(self)

    def handle_one_request(self) -> Any:
        # One deadline for the request line, the headers and the body, however slowly
        # they trickle in: the socket's timeout bounds only each receive.
        self.deadline = time.monotonic() + self.read_timeout
        if self._head_timer is None:    # one per connection: restarting it costs a third of a new one
            self._head_timer = gevent.Timeout(self.read_timeout, HeadTimeout("request headers took too long"))
        self._head_timer.start()
        self._linger = False
        try:
            result = super().handle_one_request()
        finally:
            self._head_timer.cancel()
        if self._linger and self.socket is not None:
            self._lingering_close()
        if isinstance(result, tuple) and result[0] == "414":
            # pywsgi's own 414 has an empty body; every error of ours is JSON.
            return self._refuse(URITooLong("the request line is over 8 KiB"))
        return None if result is True and Handler._draining else result   # no keep-alive while stopping

    def read_request(self, raw_requestline: str) -> bool:
        self._close_after = False
        try:
            accepted = super().read_request(raw_requestline)
        finally:
            if self._head_timer is not None:
                self._head_timer.cancel()   # the application's time is not the client's
        if self._close_after:
            self.close_connection = True
        return accepted

    def get_environ(self) -> dict:
        environ = super().get_environ()
        environ[DEADLINE] = self.deadline
        return environ

    @classmethod
    def close_idle(cls) -> None:
        """Stopping: end keep-alive connections between requests, and keep no others alive."""
        cls._draining = True
        for handler in list(cls._idle):
            try:
                handler.socket.shutdown(socket.SHUT_RDWR)
            except (OSError, AttributeError):
                pass  # already gone

    def MessageClass(self, fp: Any, *args: Any) -> Any:  # noqa: N802 - pywsgi's name
        """The request's headers as pywsgi's parser gives them (a fast path), the block and framing checked."""
        message = fastpaths.headers_message(request_headers.read_block(fp))
        self._check_framing(message)
        return message

    def _check_framing(self, message: Any) -> None:
        """Where the body ends, told one way only (RFC 9112 section 6.3), so no proxy reads it otherwise.

        pywsgi takes the last of differing Content-Length values, Python's int()
        (which accepts "+5" and "5_0"), and a body framed by both Content-Length and
        Transfer-Encoding as chunked while keeping the connection alive.
        """
        codings = message.get_all("transfer-encoding") or []
        lengths = message.get_all("content-length") or []
        if codings:
            if ",".join(codings).strip().lower() != "chunked":
                raise FramingError("only the chunked transfer coding is accepted, once")
            if lengths or self.request_version != "HTTP/1.1":
                # Processed as chunked (pywsgi drops the length), but the connection must
                # not carry another request: a proxy may have read this one's end elsewhere.
                self._close_after = True
            return
        if lengths:
            values = {value.strip() for line in lengths for value in line.split(",")}
            if len(values) != 1 or not DIGITS.fullmatch(next(iter(values))):
                raise FramingError("Content-Length must be one decimal number (repeated values must agree)")
            if len(lengths) > 1 or "," in lengths[0]:
                message.replace_header("Content-Length", next(iter(values)))

    def finalize_headers(self) -> None:
        super().finalize_headers()
        if self.close_connection and self.request_version == "HTTP/1.1" and self.code != 101:
            # Tell the client this connection ends here (a request framed both ways, a
            # huge body left unread), unless the application already said so.
            if not any(header.lower() == b"connection" for header, _ in self.response_headers):
                self.response_headers.append((b"Connection", b"close"))

    def _write_with_headers(self, data: bytes) -> None:
        fastpaths.write_with_headers(self, data)    # pywsgi's, in one send for a small body (a fast path)

    def run_application(self) -> Any:
        if self.environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            self.environ[ACCEPT_WEBSOCKET] = self._accept
        try:
            return WSGIHandler.run_application(self)
        finally:
            self._skip_unread_body()

    def _skip_unread_body(self) -> None:
        """Read what the application left of the body, up to DRAIN_LIMIT within the deadline, or close.

        pywsgi reads every unread byte before the next request: a client announcing
        gigabytes (answered 413 at once) would hold the connection for as long as it
        cares to trickle them. Small leftovers are still read, so that a client still
        sending them is not reset before it reads the answer.
        """
        body = self.wsgi_input
        if body is None or self.code == 101:
            return
        unread = (body.content_length or 0) - body.position
        if unread <= 0 and not body.chunked_input:
            return
        if not self.close_connection and unread <= DRAIN_LIMIT:
            try:
                with gevent.Timeout(max(0.0, self.deadline - time.monotonic()), HeadTimeout("body")):
                    drained = 0
                    while drained <= DRAIN_LIMIT:
                        data = body.read(16384)
                        if not data:
                            return          # all read: the connection may carry the next request
                        drained += len(data)
            except (OSError, ValueError):
                pass                        # too slow, malformed chunks, or gone
        # Nothing more will be read: pywsgi must not drain the rest either.
        self.close_connection = True
        self._linger = True
        body.content_length, body.chunked_input = body.position, False

    def _lingering_close(self) -> None:
        """Half-close, then discard what the client still sends, briefly, before the socket closes.

        Closing a socket with unread data sends a reset, which can destroy our answer
        (the 413) before the client reads it.
        """
        sock = self.socket
        try:
            sock.shutdown(socket.SHUT_WR)
            deadline, discarded = time.monotonic() + LINGER_SECONDS, 0
            while discarded < DRAIN_LIMIT:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                sock.settimeout(left)
                data = sock.recv(65536)
                if not data:
                    return
                discarded += len(data)
        except OSError:
            pass                            # timed out or gone: close now either way

    def _accept(self) -> Socket | None:
        """Complete the handshake (101) and hand back our Socket, or None if it was malformed."""
        version = self.environ.get("HTTP_SEC_WEBSOCKET_VERSION")
        if version not in self.SUPPORTED_VERSIONS or not self._valid_key():
            return None
        self.upgrade_websocket()
        library_socket = self.environ.pop("wsgi.websocket", None)
        if library_socket is None:
            return None
        library_socket.closed = True    # we speak the protocol from here; its __del__ must not
        self.websocket = None
        self.write(b"")                 # flush the 101 response
        self.socket.settimeout(None)    # streams idle for long; pings find dead peers
        buffered = self._take_buffered_input()
        # The stream owns the connection from here, and runs in a greenlet of its own
        # (todopy.realtime.streams): this handler returns once the view does, and pywsgi's
        # close of its socket object must not close the descriptor under the stream.
        self.close_connection = True
        # The bare C socket, non-blocking: the stream waits with watchers of its own, and gevent's
        # socket object would add two event-loop watchers and two objects to every idle stream.
        own = _socket.socket(self.socket.family, socket.SOCK_STREAM, 0, self.socket.detach())
        own.setblocking(False)
        return Socket(own, buffered, write_timeout=self.write_timeout)

    def _take_buffered_input(self) -> bytes:
        """What the client sent after its handshake, already in the request reader's buffer.

        The stream reads the socket itself from now on; without a request body
        pending, the reader (and its 8 KiB buffer) is closed.
        """
        if self.environ.get("CONTENT_LENGTH") not in (None, "", "0") or "HTTP_TRANSFER_ENCODING" in self.environ:
            return b""                  # a handshake with a body: leave the reader to pywsgi, as ever
        self.socket.settimeout(0.0)     # peek() then reads the socket only if data is there
        try:
            buffered = self.rfile.peek(1)
        except OSError:
            buffered = b""
        finally:
            self.socket.settimeout(None)
        self.rfile.close()
        return buffered

    def _valid_key(self) -> bool:
        key = self.environ.get("HTTP_SEC_WEBSOCKET_KEY", "").strip()
        try:
            return len(base64.b64decode(key, validate=True)) == 16
        except (binascii.Error, ValueError):
            return False

    def _handle_client_error(self, ex: BaseException) -> tuple[str, bytes]:
        """Unparseable, too large or too slow requests: a JSON error like every other, then close."""
        error: HTTPError
        if isinstance(ex, TimeoutError):
            error = RequestTimeout("request headers took too long")
        elif isinstance(ex, request_headers.HeaderBlockTooLarge):
            error = HeaderFieldsTooLarge(str(ex))
        elif isinstance(ex, (request_headers.MalformedHeader, FramingError)):
            error = BadRequest(f"malformed HTTP request: {ex}")     # our own words, no client text
        else:
            error = BadRequest("malformed HTTP request")
        log.info("%s from %s: %s", error.code, self.client_address[0] if self.client_address else "-", ex)
        return self._refuse(error)

    @staticmethod
    def _refuse(error: HTTPError) -> tuple[str, bytes]:
        """What handle_one_request returns to answer `error` and close (pywsgi sends it)."""
        return str(error.status), error.http_message()

    def log_request(self) -> None:
        pass  # the access-log middleware writes one structured line per request


class Worker(GeventWebSocketWorker):
    """A gevent worker process: psycopg2 made cooperative, streams closed with 1001 on SIGTERM."""

    wsgi_handler = Handler

    def patch(self) -> None:
        super().patch()                 # gevent.monkey.patch_all()
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()                 # before the first connection of this process
        # Greenlets would otherwise keep their spawning stack (a dozen frame records
        # each): memory per open stream, time per request, for a debugging aid.
        gevent.config.track_greenlet_tree = False

    todo_app: Any = None                # the TodoApp; `wsgi`, what the server calls, is its bound __call__

    def load_wsgi(self) -> None:
        super().load_wsgi()
        app = self.todo_app = getattr(self, "wsgi")      # gunicorn's attribute, untyped in its stubs
        Handler.read_timeout = app.settings.read_timeout
        Handler.write_timeout = app.settings.write_timeout
        app.start()
        # As between the middleware layers (todopy/app.py): a bound method runs in the
        # handler's C frame, where the app object would be called through a C recursion.
        self.wsgi = app.__call__
        # Modules, routes and queries live as long as the process: keep the cyclic
        # garbage collector from walking them again on every full collection.
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLD)
        app.services.metrics.watch_collections()

    stop_deadline: float | None = None  # monotonic: when a graceful stop must be over

    def run(self) -> None:
        super().run()       # returns once the server's requests are done, or at the graceful timeout
        # Streams left the server's pool at their handshake (todopy.realtime.streams): wait for
        # their close frames too, within what is left of the graceful timeout.
        if self.todo_app is not None and self.stop_deadline is not None:
            streams = self.todo_app.services.streams
            if not streams.join(max(0.0, self.stop_deadline - time.monotonic())):
                log.warning("%d streams still open at the graceful timeout; closing them", len(streams.active))

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.stop_deadline = time.monotonic() + self.cfg.graceful_timeout
        # Graceful stop: tell every stream (they never end by themselves); `run` waits for them.
        if self.todo_app is not None:
            gevent.spawn(self.todo_app.shutdown, Close.GOING_AWAY)
        gevent.spawn(Handler.close_idle)
        super().handle_exit(sig, frame)


class GunicornLogger(glogging.Logger):
    """gunicorn's own messages go through our logging set-up, so `--log-format json` covers them."""

    def setup(self, cfg: Any) -> None:
        self.cfg = cfg
        # gunicorn's own setup() sets loglevel per instance; its stubs call it a ClassVar.
        self.loglevel = self.LOG_LEVELS.get(cfg.loglevel.lower(), logging.INFO)  # type: ignore[misc, assignment]
        self.error_log.setLevel(self.loglevel)
        self.error_log.handlers = []
        self.error_log.propagate = True
        self.access_log.handlers = []
        self.access_log.propagate = False   # our access-log middleware writes request lines
        self._access_log_enabled = False


def _forget_worker_metrics(arbiter: Any, worker: Any) -> None:
    """A dead worker's gauges (open streams) must not count any more."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


class ServerApplication(BaseApplication):
    """gunicorn, configured from our Settings instead of its own command line."""

    def __init__(self, settings: Settings, dsn: str) -> None:
        self.settings = settings
        self.dsn = dsn
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        for key, value in {
            "bind": [f"[{s.host}]:{s.port}" if ":" in s.host else f"{s.host}:{s.port}"],
            "workers": s.workers,
            "worker_class": "todopy.server.Worker",
            "worker_connections": 100_000,   # every open stream is a connection
            "graceful_timeout": 8,
            "timeout": 30,
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "logger_class": "todopy.server.GunicornLogger",
            "control_socket_disable": True,
            "loglevel": s.log_level.lower(),
            "proc_name": "todopy",
            "preload_app": False,            # each worker builds its own pool, dispatcher and streams
            "child_exit": _forget_worker_metrics,
        }.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from todopy.app import create_app

        return create_app(self.settings, self.dsn)
