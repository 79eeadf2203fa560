"""The WebSocket side of /api/todos/ and /api/todos/<id>/: handshake checks, sync, then live changes."""
from __future__ import annotations

import logging
import time
import uuid
from typing import Callable

import gevent
from werkzeug.wrappers import Request

from todopy import validation
from todopy.accounts import hash_token
from todopy.db import Pool
from todopy.errors import BadRequest, DatabaseUnavailable, HTTPError, NotFound, Unprocessable
from todopy.http import dumps
from todopy.metrics import Metrics
from todopy.middleware.sessions import SESSION_KEY
from todopy.realtime.changes import Change
from todopy.realtime.hub import Hub
from todopy.realtime.socket import NORMAL, SERVER_ERROR, TOO_SLOW, ConnectionClosed, Socket, WriteStalled
from todopy.realtime.subscription import Subscription
from todopy.representations import todo_json
from todopy.settings import Settings
from todopy.sqlfiles import queries

log = logging.getLogger("todopy.streams")
Q = queries("changes")
TODOS = queries("todos")
ACCEPT_KEY = "todopy.websocket.accept"   # set by the server's handler on upgrade requests
PEER_GONE = 0                            # close_code meaning: nothing left to send
SYNC_POOL_WAIT = 30.0                    # a reconnect storm queues for the pool instead of failing
PING_SLICES = 100                        # pings go out in this many bursts per ping interval


def parse_since(args) -> int | None:
    raw = args.get("since")
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise Unprocessable("since must be a non-negative integer rev")
    return int(raw)


class Stream:
    """One open stream: its socket and its subscription, as the pinger and the dispatcher see them."""

    __slots__ = ("socket", "sub", "metrics", "ping_slice")

    def __init__(self, socket: Socket, sub: Subscription, metrics: Metrics, ping_slice: int) -> None:
        self.socket = socket
        self.sub = sub
        self.metrics = metrics
        self.ping_slice = ping_slice          # when in each ping interval the pinger visits it

    def send_now(self, change: Change, op: str) -> bool:
        """The dispatcher's own write, while the stream's greenlet is parked with nothing queued.

        False (the change is then queued and the greenlet woken) when the socket
        cannot take it at once, or when the stream must close after it.
        """
        sub = self.sub
        if change.rev <= sub.sent_rev:
            return True                     # already in the snapshot or the resumed tail
        if sub.todo_id is not None and op == "delete":
            return False                    # the greenlet sends it, then closes the stream
        if not self.socket.try_send(change.frame(op)):
            return False
        sub.sent_rev = change.rev
        self.metrics.messages_sent.inc()
        self.metrics.write_to_send_seconds.observe(max(0.0, time.time() - change.changed_time))
        if self.socket.unsent:
            sub.wake()                      # the greenlet writes the rest of the frame
        return True


class Streams:
    def __init__(self, hub: Hub, pool: Pool, settings: Settings, metrics: Metrics,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.hub = hub
        self.pool = pool
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.active: set[Stream] = set()
        # The pinger visits one slice per tick: each stream at the same point of every interval.
        self._ping_slices: list[set[Stream]] = [set() for _ in range(PING_SLICES)]
        self._opened = 0
        self._pinger: gevent.Greenlet | None = None

    def start(self) -> None:
        self._pinger = gevent.spawn(self._ping_forever)

    # -- the two kinds of stream -------------------------------------------

    def list_stream(self, request: Request, owner: str) -> None:
        predicate = validation.bool_param(request.args, "completed")
        since = parse_since(request.args)
        socket = self._accept(request)
        sub = Subscription(owner, predicate=predicate, token_hash=self._token_hash(request),
                           limit=self.settings.stream_queue_size)

        def sync() -> int | None:
            return self._sync_list(socket, owner, predicate, since)

        self._serve(request, socket, sub, sync)

    def todo_stream(self, request: Request, owner: str, todo_id: uuid.UUID) -> None:
        if self.pool.query_one(TODOS["current_rev"], {"id": todo_id, "owner": owner}) is None:
            raise NotFound("no such todo")
        socket = self._accept(request)
        sub = Subscription(owner, todo_id=str(todo_id), token_hash=self._token_hash(request),
                           limit=self.settings.stream_queue_size)

        def sync() -> int | None:
            row = self.pool.query_one(Q["todo_snapshot"], {"id": todo_id, "owner": owner}, timeout=SYNC_POOL_WAIT)
            if row is None:
                return None  # deleted between the handshake and now
            socket.send_text(dumps({"type": "snapshot", "todo": todo_json(row[1:]), "rev": row[0]}))
            return self._ready(socket, row[0])

        self._serve(request, socket, sub, sync)

    # -- shared machinery ---------------------------------------------------

    def _accept(self, request: Request) -> Socket:
        if self.hub.stopping:
            # A graceful stop has closed every stream; one opened now (clients reconnect
            # within 250 ms) would hold the worker until the graceful timeout. Refuse it.
            raise HTTPError("the server is stopping; reconnect shortly", code="stopping", status=503)
        accept = request.environ.get(ACCEPT_KEY)
        socket = accept() if accept else None
        if socket is None:
            raise BadRequest("not a valid WebSocket handshake", code="bad_handshake")
        request.environ["todopy.stream"] = True
        return socket

    @staticmethod
    def _token_hash(request: Request) -> bytes | None:
        token = request.environ[SESSION_KEY].token
        return hash_token(token) if token else None

    def _serve(self, request: Request, socket: Socket, sub: Subscription, sync: Callable[[], int | None]) -> None:
        """Subscribe first, then sync, then deliver queued changes newer than the sync."""
        self._opened += 1
        stream = Stream(socket, sub, self.metrics, self._opened % PING_SLICES)
        self.hub.subscribe(sub)
        self.active.add(stream)
        self._ping_slices[stream.ping_slice].add(stream)
        self.metrics.open_streams.inc()
        user = request.environ["todopy.user"]
        started = self.clock()
        log.info("stream open %s user=%s", request.full_path.rstrip("?"), user.id,
                 extra={"event": "stream_open", "path": request.path, "user_id": user.id})
        reason = "closed by client"
        try:
            # Client frames are read in the event loop, not by a greenlet of their own: a ping
            # wakes this greenlet to answer it; the peer's close or disappearance ends the stream.
            socket.start_reading(sub.wakeup.set, lambda: sub.end(PEER_GONE))
            if not self.hub.positioned.wait(timeout=SYNC_POOL_WAIT):
                raise DatabaseUnavailable("the change listener has not connected yet")
            sent_rev = sync()
            if sent_rev is None:
                socket.close(NORMAL, "todo deleted")
                reason = "todo gone"
            else:
                reason = self._deliver(stream, sent_rev)
        except WriteStalled:
            reason = "too slow (stopped reading; dropped)"
            self.metrics.slow_consumers.inc()
        except ConnectionClosed:
            reason = "connection lost"
        except HTTPError as error:
            reason = f"sync failed: {error.message}"
            socket.close(SERVER_ERROR, "temporarily unavailable; reconnect with since")
        except Exception:
            log.exception("stream failed")
            reason = "server error"
            socket.close(SERVER_ERROR, "server error")
        finally:
            self.hub.unsubscribe(sub)
            self.active.discard(stream)
            self._ping_slices[stream.ping_slice].discard(stream)
            self.metrics.open_streams.dec()
            try:
                # Give the peer a moment to answer our close frame before the connection drops.
                socket.wait_input_done(timeout=2)
            finally:
                socket.stop_reading()       # before the server closes the file descriptor
            log.info("stream close %s user=%s after %.1fs: %s", request.path, user.id, self.clock() - started,
                     reason, extra={"event": "stream_close", "path": request.path, "user_id": user.id,
                                    "reason": reason})

    def _deliver(self, stream: Stream, sent_rev: int) -> str:
        socket, sub = stream.socket, stream.sub
        observe_latency = self.metrics.write_to_send_seconds.observe
        sent = self.metrics.messages_sent
        queue = sub.queue
        one_todo = sub.todo_id is not None
        send_now = stream.send_now
        sub.sent_rev = sent_rev
        while True:
            if not sub.wakeup.is_set():
                sub.direct = send_now       # parked with nothing to do: the dispatcher may write
            sub.wakeup.wait()
            sub.direct = None
            sub.wakeup.clear()
            while True:
                if sub.close_code is not None:
                    if sub.close_code != PEER_GONE:
                        socket.close(sub.close_code)
                    else:
                        socket.answer_close()   # the peer closed: echo its close frame
                    return f"ended with {sub.close_code}"
                if sub.overflowed:
                    socket.close(TOO_SLOW, "too far behind; reconnect with since")
                    self.metrics.slow_consumers.inc()
                    return "too slow (4008)"
                socket.flush()              # the tail of a frame the dispatcher could not write whole
                if socket.pong_due is not None:
                    socket.answer_ping()
                if sub.ping_due:
                    sub.ping_due = False
                    socket.send_ping()
                if not queue:
                    break
                # All that is queued goes out in one write (a bulk statement's changes: one syscall).
                frames: list[bytes] = []
                changed_times: list[float] = []
                deleted = False
                while queue and not deleted:
                    change, op = queue.popleft()
                    if change.rev <= sub.sent_rev:
                        continue  # already in the snapshot or the resumed tail
                    frames.append(change.frame(op))
                    changed_times.append(change.changed_time)
                    sub.sent_rev = change.rev
                    deleted = one_todo and op == "delete"
                if frames:
                    socket.send_frames(frames[0] if len(frames) == 1 else b"".join(frames))
                    now = time.time()
                    sent.inc(len(frames))
                    for changed_time in changed_times:
                        observe_latency(max(0.0, now - changed_time))
                if deleted:
                    socket.close(NORMAL, "todo deleted")
                    return "todo deleted"

    def _sync_list(self, socket: Socket, owner: str, predicate: bool | None, since: int | None) -> int:
        if since is not None:
            rows = self.pool.query_all(Q["resume"], {"owner": owner, "since": since}, timeout=SYNC_POOL_WAIT)
            head, horizon = rows[0][0], rows[0][1]
            if horizon <= since <= head:
                for row in rows:
                    if row[2] is not None:
                        change = Change(row[2:])
                        socket.send_frames(change.frame(change.op_for_resume(predicate)))
                return self._ready(socket, head)
            # Too old (pruned) or from another database's future: start afresh.
        rows = self.pool.query_all(TODOS["list"], {"owner": owner, "completed": predicate}, timeout=SYNC_POOL_WAIT)
        head = rows[0][0]
        todos = [todo_json(row[1:]) for row in rows if row[1] is not None]
        socket.send_text(dumps({"type": "snapshot", "todos": todos, "rev": head}))
        return self._ready(socket, head)

    def _ready(self, socket: Socket, rev: int) -> int:
        socket.send_text(dumps({"type": "ready", "rev": rev}))
        return rev

    def _ping_forever(self) -> None:
        """Ping every stream once per interval, one slice of them at a time.

        Pinging all streams at once would wake thousands of greenlets together and
        hold every change queued behind them for as long (0.5 s at 10,000 streams).
        A stream stays in its slice, so it is still pinged once per interval.
        """
        interval = self.settings.ping_interval
        tick = self.clock()
        while True:
            for streams in self._ping_slices:
                tick += interval / PING_SLICES      # on a fixed schedule: a busy moment does not stretch it
                gevent.sleep(max(0.0, tick - self.clock()))
                deadline = self.clock() - 2 * interval
                for stream in list(streams):
                    if stream.socket.last_seen < deadline:
                        stream.sub.end(PEER_GONE)     # missed two pings: gone without a close frame
                        stream.socket.abort()
                    else:
                        stream.sub.request_ping()
