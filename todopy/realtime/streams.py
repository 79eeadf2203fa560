"""Open streams: sync (a snapshot, or the missed changes), then live changes until the stream ends.

The realtime layer speaks the domain only: a view has checked the handshake and
the user's access, accepted the WebSocket, and hands over the socket with plain
values (a list, a predicate, a rev). Nothing here knows HTTP.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Callable

import gevent

from todopy.db import ConnectionPool
from todopy.errors import HTTPError
from todopy.http import dumps
from todopy.metrics import Metrics
from todopy.realtime.changes import Change
from todopy.realtime.dispatcher import Dispatcher
from todopy.realtime.presence import Presence
from todopy.realtime.socket import (GOING_AWAY, LIST_DELETED, NORMAL, NOT_A_MEMBER, POLICY, SERVER_ERROR,
                                    TOO_SLOW, ConnectionClosed, Socket, WriteStalled, text_frame)
from todopy.realtime.subscription import MEMBER_MESSAGE, PEER_GONE, ListsSubscription, PeerGone, Subscription
from todopy.representations import list_json, todo_json, todos_json
from todopy.settings import Settings
from todopy.sqlfiles import queries

log = logging.getLogger("todopy.streams")
CHANGES_SQL = queries("changes")
TODOS_SQL = queries("todos")
LISTS_SQL = queries("lists")
SYNC_POOL_WAIT = 30.0                    # a reconnect storm queues for the pool instead of failing
PING_SLICES = 100                        # pings go out in this many bursts per ping interval
CLOSE_REASONS = {
    GOING_AWAY: "the server is shutting down; reconnect with since",
    POLICY: "the session was signed out or expired; sign in again",
    NOT_A_MEMBER: "no longer a member of this list",
    LIST_DELETED: "the list was deleted",
}


@dataclasses.dataclass(frozen=True)
class Opener:
    """Who opens a stream, and a label for the logs."""

    user_id: str
    token_hash: bytes | None
    label: str
    username: str = ""          # as others see them in a list's presence


class ListGone(Exception):
    """The list was deleted while the stream synced."""


class AccessLost(Exception):
    """The user stopped being a member of the list before the stream's sync read it."""


class Stream:
    """One open stream: its socket and its subscription, as the pinger and the dispatcher see them."""

    __slots__ = ("socket", "sub", "metrics", "ping_slice", "opened")

    def __init__(self, socket: Socket, sub: Subscription | ListsSubscription, metrics: Metrics,
                 ping_slice: int, opened: float) -> None:
        self.socket = socket
        self.sub = sub
        self.metrics = metrics
        self.ping_slice = ping_slice          # when in each ping interval the pinger visits it
        self.opened = opened

    def send_now(self, change: Change, op: str) -> bool:
        """The dispatcher's own write, while the stream's greenlet is parked with nothing queued.

        False (the change is then queued and the greenlet woken) when the socket
        cannot take it at once, or when the stream must close after it.
        """
        sub = self.sub
        assert isinstance(sub, Subscription)
        if change.rev <= sub.sent_rev:
            return True                     # already in the snapshot or the resumed tail
        if op == MEMBER_MESSAGE or (sub.todo_id is not None and op == "delete"):
            return False                    # the greenlet acts on it (or sends it), then may close the stream
        if not self.socket.try_send(sub.frame(change, op)):
            return False
        sub.sent_rev = change.rev
        self.metrics.messages_sent.inc()
        self.metrics.write_to_send_seconds.observe(max(0.0, time.time() - change.changed_time))
        if self.socket.unsent:
            sub.wake()                      # the greenlet writes the rest of the frame
        return True


class Streams:
    def __init__(self, dispatcher: Dispatcher, pool: ConnectionPool, settings: Settings, metrics: Metrics,
                 clock: Callable[[], float] = time.monotonic, presence: Presence | None = None) -> None:
        self.dispatcher = dispatcher
        self.presence = presence            # who has each list open (todopy.realtime.presence)
        self.pool = pool
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.active: set[Stream] = set()
        # The pinger visits one slice per tick: each stream at the same point of every interval.
        self._ping_slices: list[set[Stream]] = [set() for _ in range(PING_SLICES)]
        self._opened = 0
        self._pinger: gevent.Greenlet | None = None

    @property
    def accepting(self) -> bool:
        """False once a graceful stop began: a stream opened now would hold the worker up."""
        return not self.dispatcher.stopping

    def start(self) -> None:
        self._pinger = gevent.spawn(self._ping_forever)

    # -- the three kinds of stream -----------------------------------------

    def list_stream(self, socket: Socket, opener: Opener, list_view: dict[str, Any], *,
                    predicate: bool | None, since: int | None) -> None:
        """A list's todos (those matching `predicate`), from a snapshot or after `since`."""
        list_id = list_view["id"]
        sub = Subscription(list_id, opener.user_id, predicate=predicate, token_hash=opener.token_hash,
                           limit=self.settings.stream_queue_size, list_view=dict(list_view))

        def sync() -> int | None:
            return self._sync_list(socket, sub.list_view, opener.user_id, predicate, since)

        presence = self.presence
        if presence is None:
            self._serve_changes(socket, opener, sub, sync)
            return
        # Present from now until the stream ends; its client's presence frames say what it edits.
        presence.join(sub, opener.username, socket)
        try:
            self._serve_changes(socket, opener, sub, sync, lambda text: presence.said(sub, text))
        finally:
            presence.leave(sub)

    def todo_stream(self, socket: Socket, opener: Opener, list_view: dict[str, Any], todo_id: str) -> None:
        """One todo's changes, after a snapshot of it; ends (1000) after its delete."""
        list_id = list_view["id"]
        sub = Subscription(list_id, opener.user_id, todo_id=todo_id, token_hash=opener.token_hash,
                           limit=self.settings.stream_queue_size, list_view=dict(list_view))

        def sync() -> int | None:
            row = self.pool.query_one(CHANGES_SQL["todo_snapshot"], {"list": list_id, "id": todo_id,
                                                                     "user": opener.user_id}, timeout=SYNC_POOL_WAIT)
            if row is None:
                self._check_access(list_id, opener.user_id)
                return None  # deleted between the handshake and now
            socket.send_text(dumps({"type": "snapshot", "todo": todo_json(row), "rev": row.list_rev}))
            return self._ready(socket, row.list_rev)

        self._serve_changes(socket, opener, sub, sync)

    def lists_stream(self, socket: Socket, opener: Opener) -> None:
        """The user's lists: a snapshot, then insert/update/delete as they gain, lose or rename one."""
        sub = ListsSubscription(opener.user_id, opener.token_hash)
        self.dispatcher.subscribe_lists(sub)

        def run(stream: Stream) -> str:
            socket.start_reading(sub.wakeup.set, lambda: sub.end(PEER_GONE))
            shown = self._read_lists(opener.user_id)
            socket.send_text(dumps({"type": "snapshot", "lists": list(shown.values())}))
            socket.send_text(dumps({"type": "ready"}))
            self.dispatcher.watch_lists(sub, shown)
            sub.touch()       # read once more: a change between the first read and the watch is not missed
            return self._deliver_lists(stream, sub, shown)

        self._serve(socket, opener, sub, run, lambda: self.dispatcher.unsubscribe_lists(sub))

    # -- shared machinery ---------------------------------------------------

    def _open(self, socket: Socket, sub: Subscription | ListsSubscription, opener: Opener) -> Stream:
        self._opened += 1
        stream = Stream(socket, sub, self.metrics, self._opened % PING_SLICES, self.clock())
        self.active.add(stream)
        self._ping_slices[stream.ping_slice].add(stream)
        self.metrics.open_streams.inc()
        log.info("stream open %s user=%s", opener.label, opener.user_id,
                 extra={"event": "stream_open", "path": opener.label, "user_id": opener.user_id})
        return stream

    def _close(self, stream: Stream, opener: Opener, reason: str) -> None:
        socket = stream.socket
        self.active.discard(stream)
        self._ping_slices[stream.ping_slice].discard(stream)
        self.metrics.open_streams.dec()
        try:
            # Give the peer a moment to answer our close frame before the connection drops.
            socket.wait_input_done(timeout=2)
        finally:
            socket.stop_reading()       # before the server closes the file descriptor
        log.info("stream close %s user=%s after %.1fs: %s", opener.label, opener.user_id, self.clock() - stream.opened,
                 reason, extra={"event": "stream_close", "path": opener.label, "user_id": opener.user_id,
                                "reason": reason})

    def _serve_changes(self, socket: Socket, opener: Opener, sub: Subscription,
                       sync: Callable[[], int | None], on_text: Callable[[str], None] | None = None) -> None:
        """Subscribe first, then sync, then deliver queued changes newer than the sync."""
        self.dispatcher.subscribe(sub)

        def run(stream: Stream) -> str:
            # Client frames are read in the event loop, not by a greenlet of their own: a ping
            # wakes this greenlet to answer it; the peer's close or disappearance ends the stream.
            socket.start_reading(sub.wakeup.set, lambda: sub.end(PEER_GONE), on_text)
            sent_rev = sync()
            if sent_rev is None:
                socket.close(NORMAL, "todo deleted")
                return "todo gone"
            self.dispatcher.position(sub.list_id, sent_rev)
            return self._deliver(stream, sub, sent_rev)

        self._serve(socket, opener, sub, run, lambda: self.dispatcher.unsubscribe(sub))

    def _serve(self, socket: Socket, opener: Opener, sub: Subscription | ListsSubscription,
               run: Callable[[Stream], str], unsubscribe: Callable[[], None]) -> None:
        """Open the stream, run it to its end, then unsubscribe and close, logging why it ended."""
        stream = self._open(socket, sub, opener)
        reason = "closed by client"
        try:
            reason = self._run(socket, lambda: run(stream))
        finally:
            unsubscribe()
            self._close(stream, opener, reason)

    def _run(self, socket: Socket, body: Callable[[], str]) -> str:
        """Run a stream's body; whatever way it ends, the reason (for the log), the socket closed as it should be."""
        try:
            return body()
        except WriteStalled:
            self.metrics.slow_consumers.inc()
            return "too slow (stopped reading; dropped)"
        except ConnectionClosed:
            return "connection lost"
        except ListGone:
            socket.close(LIST_DELETED, CLOSE_REASONS[LIST_DELETED])
            return "list deleted"
        except AccessLost:
            socket.close(NOT_A_MEMBER, CLOSE_REASONS[NOT_A_MEMBER])
            return "no longer a member"
        except HTTPError as error:
            socket.close(SERVER_ERROR, "temporarily unavailable; reconnect with since")
            return f"sync failed: {error.message}"
        except Exception:
            log.exception("stream failed")
            socket.close(SERVER_ERROR, "server error")
            return "server error"

    def _end(self, socket: Socket, code: int | PeerGone) -> str:
        """Close for `code`, or echo the peer's close frame when it left first."""
        if code is PEER_GONE:
            socket.answer_close()
            return PEER_GONE.value
        socket.close(code, CLOSE_REASONS.get(code, ""))
        return f"ended with {code}"

    def _control(self, socket: Socket, sub: Subscription | ListsSubscription) -> None:
        socket.flush()              # the tail of a frame the dispatcher could not write whole
        if socket.pong_due is not None:
            socket.answer_ping()
        if sub.ping_due:
            sub.ping_due = False
            socket.send_ping()

    def _deliver(self, stream: Stream, sub: Subscription, sent_rev: int) -> str:
        socket = stream.socket
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
                if sub.ending is not None:
                    return self._end(socket, sub.ending)
                if sub.overflowed:
                    socket.close(TOO_SLOW, "too far behind; reconnect with since")
                    self.metrics.slow_consumers.inc()
                    return "too slow (4008)"
                self._control(socket, sub)
                if sub.presence_frame is not None:
                    frame, sub.presence_frame = sub.presence_frame, None
                    socket.send_frames(frame)
                if not queue:
                    break
                # All that is queued goes out in one write (a bulk statement's changes: one syscall).
                frames: list[bytes] = []
                changed_times: list[float] = []
                deleted = False
                removed = False
                while queue and not deleted and not removed:
                    change, op = queue.popleft()
                    if change.rev <= sub.sent_rev:
                        continue  # already in the snapshot or the resumed tail
                    if op == MEMBER_MESSAGE:
                        # The user's own membership, in the list's order: a removal older than
                        # what the stream started from is history, a newer one ends it.
                        sub.sent_rev = change.rev
                        if change.role is None:
                            removed = True
                        else:
                            sub.list_view["role"] = change.role
                        continue
                    frames.append(sub.frame(change, op))
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
                if removed:
                    socket.close(NOT_A_MEMBER, CLOSE_REASONS[NOT_A_MEMBER])
                    return "no longer a member"

    def _sync_list(self, socket: Socket, list_view: dict[str, Any], user_id: str, predicate: bool | None,
                   since: int | None) -> int:
        """Send the missed changes after `since`, or a snapshot; read with the user's membership in
        one statement, so the stream starts at a rev where the user was a member."""
        list_id = list_view["id"]
        if since is not None:
            # A queue's worth at most: a longer gap costs more than a snapshot of the list.
            rows = self.pool.query_all(CHANGES_SQL["resume"], {"list": list_id, "since": since, "user": user_id,
                                                               "limit": self.settings.stream_queue_size},
                                       timeout=SYNC_POOL_WAIT)
            if not rows:
                raise ListGone()
            if not rows[0].member:
                raise AccessLost()
            if rows[0].resumable:
                frames = []
                for row in rows:
                    if row.rev is None:
                        continue                    # no change missed: the list's row alone
                    change = Change(row)
                    if change.kind == "todo":
                        frames.append(change.frame(change.op_for_resume(predicate)))
                    elif change.kind == "list" and change.op == "update":
                        frames.append(change.list_frame(list_view))
                    elif change.kind == "member" and change.user_id == user_id and change.role is not None:
                        list_view["role"] = change.role
                if frames:
                    socket.send_frames(b"".join(frames))
                return self._ready(socket, rows[0].head)
        todos = todos_json(self.pool.query_all(TODOS_SQL["list"], {"list": list_id, "completed": predicate,
                                                                   "user": user_id}, timeout=SYNC_POOL_WAIT))
        if todos is None:
            self._check_access(list_id, user_id)
            raise ListGone()
        socket.send_text(dumps({"type": "snapshot", **todos}))
        return self._ready(socket, todos["rev"])

    def _check_access(self, list_id: str, user_id: str) -> None:
        """After a sync read found nothing: AccessLost when the list is there but the user is not in it."""
        key = {"list": list_id, "user": user_id}
        if (self.pool.query_one(LISTS_SQL["member_role"], key, timeout=SYNC_POOL_WAIT) is None
                and self.pool.query_one(LISTS_SQL["rev"], key, timeout=SYNC_POOL_WAIT) is not None):
            raise AccessLost()

    def _ready(self, socket: Socket, rev: int) -> int:
        socket.send_text(dumps({"type": "ready", "rev": rev}))
        return rev

    # -- the lists stream -----------------------------------------------------

    def _read_lists(self, user_id: str) -> dict[str, dict[str, Any]]:
        rows = self.pool.query_all(LISTS_SQL["of_user"], {"user": user_id}, timeout=SYNC_POOL_WAIT)
        return {row.id: list_json(row) for row in rows}

    def _deliver_lists(self, stream: Stream, sub: ListsSubscription, shown: dict[str, dict[str, Any]]) -> str:
        socket = stream.socket
        while True:
            sub.wakeup.wait()
            sub.wakeup.clear()
            if sub.ending is not None:
                return self._end(socket, sub.ending)
            self._control(socket, sub)
            if not sub.stale:
                continue
            sub.stale = False
            now = self._read_lists(sub.user_id)
            frames = [_list_change("delete", view) for list_id, view in shown.items() if list_id not in now]
            for list_id, view in now.items():
                before = shown.get(list_id)
                if before is None:
                    frames.append(_list_change("insert", view))
                elif (before["title"], before["role"]) != (view["title"], view["role"]):
                    frames.append(_list_change("update", view))
            shown = now
            self.dispatcher.watch_lists(sub, shown)
            if frames:
                socket.send_frames(b"".join(frames))
                self.metrics.messages_sent.inc(len(frames))

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


def _list_change(op: str, view: dict[str, Any]) -> bytes:
    return text_frame(dumps({"type": "change", "op": op, "list": view}))
