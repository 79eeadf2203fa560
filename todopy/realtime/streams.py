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
from todopy.errors import BadRequest, HTTPError, NotFound, Unprocessable
from todopy.http import dumps
from todopy.metrics import Metrics
from todopy.middleware.sessions import SESSION_KEY
from todopy.realtime.changes import Change
from todopy.realtime.hub import Hub
from todopy.realtime.socket import NORMAL, SERVER_ERROR, TOO_SLOW, ConnectionClosed, Socket
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


def parse_since(args) -> int | None:
    raw = args.get("since")
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise Unprocessable("since must be a non-negative integer rev")
    return int(raw)


class Stream:
    """One open stream: its socket and its subscription, as the pinger sees them."""

    __slots__ = ("socket", "sub")

    def __init__(self, socket: Socket, sub: Subscription) -> None:
        self.socket = socket
        self.sub = sub


class Streams:
    def __init__(self, hub: Hub, pool: Pool, settings: Settings, metrics: Metrics,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.hub = hub
        self.pool = pool
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.active: set[Stream] = set()
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
            with self.pool.cursor(timeout=SYNC_POOL_WAIT) as cur:
                cur.execute(Q["todo_snapshot"], {"id": todo_id, "owner": owner})
                row = cur.fetchone()
            if row is None:
                return None  # deleted between the handshake and now
            socket.send_text(dumps({"type": "snapshot", "todo": todo_json(row[1:]), "rev": row[0]}))
            return self._ready(socket, row[0])

        self._serve(request, socket, sub, sync)

    # -- shared machinery ---------------------------------------------------

    def _accept(self, request: Request) -> Socket:
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
        stream = Stream(socket, sub)
        self.hub.subscribe(sub)
        self.active.add(stream)
        self.metrics.open_streams.inc()
        user = request.environ["todopy.user"]
        started = self.clock()
        log.info("stream open %s user=%s", request.full_path.rstrip("?"), user.id,
                 extra={"event": "stream_open", "path": request.path, "user_id": user.id})
        reader = gevent.spawn(self._read, socket, sub)
        reason = "closed by client"
        try:
            sent_rev = sync()
            if sent_rev is None:
                socket.close(NORMAL, "todo deleted")
                reason = "todo gone"
            else:
                reason = self._deliver(socket, sub, sent_rev)
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
            self.metrics.open_streams.dec()
            # Give the peer a moment to answer our close frame before the connection drops.
            reader.join(timeout=2)
            reader.kill(block=False)
            log.info("stream close %s user=%s after %.1fs: %s", request.path, user.id, self.clock() - started,
                     reason, extra={"event": "stream_close", "path": request.path, "user_id": user.id,
                                    "reason": reason})

    def _deliver(self, socket: Socket, sub: Subscription, sent_rev: int) -> str:
        observe_latency = self.metrics.write_to_send_seconds.observe
        sent = self.metrics.messages_sent
        while True:
            sub.wakeup.wait()
            sub.wakeup.clear()
            while True:
                if sub.close_code is not None:
                    if sub.close_code != PEER_GONE:
                        socket.close(sub.close_code)
                    return f"ended with {sub.close_code}"
                if sub.overflowed:
                    socket.close(TOO_SLOW, "too far behind; reconnect with since")
                    self.metrics.slow_consumers.inc()
                    return "too slow (4008)"
                if sub.ping_due:
                    sub.ping_due = False
                    socket.send_ping()
                if not sub.queue:
                    break
                change, op = sub.queue.popleft()
                if change.rev <= sent_rev:
                    continue  # already in the snapshot or the resumed tail
                socket.send_text(change.frame(op))
                sent_rev = change.rev
                sent.inc()
                observe_latency(max(0.0, time.time() - change.changed_time))
                if sub.todo_id is not None and op == "delete":
                    socket.close(NORMAL, "todo deleted")
                    return "todo deleted"

    def _sync_list(self, socket: Socket, owner: str, predicate: bool | None, since: int | None) -> int:
        if since is not None:
            with self.pool.cursor(timeout=SYNC_POOL_WAIT) as cur:
                cur.execute(Q["resume"], {"owner": owner, "since": since})
                rows = cur.fetchall()
            head, horizon = rows[0][0], rows[0][1]
            if horizon <= since <= head:
                for row in rows:
                    if row[2] is not None:
                        change = Change(row[2:])
                        socket.send_text(change.frame(change.op_for_resume(predicate)))
                return self._ready(socket, head)
            # Too old (pruned) or from another database's future: start afresh.
        with self.pool.cursor(timeout=SYNC_POOL_WAIT) as cur:
            cur.execute(TODOS["list"], {"owner": owner, "completed": predicate})
            rows = cur.fetchall()
        head = rows[0][0]
        todos = [todo_json(row[1:]) for row in rows if row[1] is not None]
        socket.send_text(dumps({"type": "snapshot", "todos": todos, "rev": head}))
        return self._ready(socket, head)

    def _ready(self, socket: Socket, rev: int) -> int:
        socket.send_text(dumps({"type": "ready", "rev": rev}))
        return rev

    def _read(self, socket: Socket, sub: Subscription) -> None:
        socket.read_until_closed()
        sub.end(PEER_GONE)

    def _ping_forever(self) -> None:
        interval = self.settings.ping_interval
        while True:
            gevent.sleep(interval)
            deadline = self.clock() - 2 * interval
            for stream in list(self.active):
                if stream.socket.last_seen < deadline:
                    stream.sub.end(PEER_GONE)     # missed two pings: gone without a close frame
                    stream.socket.abort()
                else:
                    stream.sub.request_ping()
