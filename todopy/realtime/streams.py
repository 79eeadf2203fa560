"""Open streams: sync (a snapshot, or the missed changes), then live changes until the stream ends.

The realtime layer speaks the domain only: a view has checked the handshake and
the user's access, accepted the WebSocket, and hands over the socket with plain
values (a list, a predicate, a rev). Nothing here knows HTTP.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

import gevent
import gevent.pool

from todopy.db import ConnectionPool
from todopy.errors import DatabaseUnavailable
from todopy.metrics import Metrics
from todopy.realtime import protocol
from todopy.realtime.connection import Opener, Stream, message
from todopy.realtime.dispatcher import Dispatcher
from todopy.realtime.pinger import Pinger
from todopy.realtime.presence import Presence
from todopy.realtime.protocol import Close
from todopy.realtime.socket import ConnectionClosed, Socket, WriteStalled
from todopy.realtime.subscription import (MEMBER_MESSAGE, PEER_GONE, ListsSubscription, PeerGone,
                                          Subscriber, Subscription)
from todopy.realtime.sync import AccessLost, ListGone, Sync
from todopy.settings import Settings

log = logging.getLogger("todopy.streams")


class Streams:
    def __init__(self, dispatcher: Dispatcher, pool: ConnectionPool, settings: Settings, metrics: Metrics,
                 clock: Callable[[], float] = time.monotonic, presence: Presence | None = None) -> None:
        self.dispatcher = dispatcher
        self.presence = presence            # who has each list open (todopy.realtime.presence)
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.sync = Sync(pool, settings.stream_queue_size)
        self.active: set[Stream] = set()
        self.pinger = Pinger(settings.ping_interval, clock)
        self.running = gevent.pool.Group()       # every stream's greenlet, until it ends

    @property
    def accepting(self) -> bool:
        """False once a graceful stop began: a stream opened now would hold the worker up."""
        return not self.dispatcher.stopping

    def start(self) -> None:
        gevent.spawn(self.pinger.run_forever)

    def join(self, timeout: float) -> bool:
        """Wait up to `timeout` for every stream to end (a graceful stop); whether they all did."""
        return self.running.join(timeout=timeout)

    # -- the three kinds of stream: each returns once it started (`_spawn`) ----

    def list_stream(self, socket: Socket, opener: Opener, list_as_seen: dict[str, Any], *,
                    predicate: bool | None, since: int | None, members: bool = False) -> None:
        """A list's todos (matching `predicate`), from a snapshot or after `since`; `members`: its members too."""
        self._spawn(socket, self._list_stream, opener, list_as_seen, predicate, since, members)

    def todo_stream(self, socket: Socket, opener: Opener, list_as_seen: dict[str, Any], todo_id: str) -> None:
        """One todo's changes, after a snapshot of it; ends (1000) after its delete."""
        self._spawn(socket, self._todo_stream, opener, list_as_seen, todo_id)

    def lists_stream(self, socket: Socket, opener: Opener) -> None:
        """The user's lists: a snapshot, then insert/update/delete as they gain, lose or rename one."""
        self._spawn(socket, self._lists_stream, opener)

    def _spawn(self, socket: Socket, body: Callable[..., None], *args: Any) -> None:
        """Run a stream to its end in a greenlet of its own, then release its connection. The handshake's
        request, and the WSGI stack a stream parked in would keep, end as this returns (docs/design.md)."""
        self.running.spawn(self._run_to_end, socket, body, args)

    def _run_to_end(self, socket: Socket, body: Callable[..., None], args: tuple[Any, ...]) -> None:
        try:
            body(socket, *args)
        except Exception:
            log.exception("stream failed outside its body")    # `_run` handles whatever happens in it
        finally:
            socket.release()

    def _list_stream(self, socket: Socket, opener: Opener, list_as_seen: dict[str, Any], predicate: bool | None,
                     since: int | None, members: bool) -> None:
        sub = Subscription(list_as_seen["id"], opener.user_id, predicate=predicate, token_hash=opener.token_hash,
                           limit=self.settings.stream_queue_size, list_as_seen=dict(list_as_seen), members=members)
        presence = self.presence
        if presence is None:
            self._serve_changes(socket, opener, sub, since)
            return
        # Present from now until the stream ends; its client's presence frames say what it edits.
        presence.join(sub, opener.username, socket)
        try:
            self._serve_changes(socket, opener, sub, since, lambda text: presence.said(sub, text))
        finally:
            presence.leave(sub)

    def _todo_stream(self, socket: Socket, opener: Opener, list_as_seen: dict[str, Any], todo_id: str) -> None:
        sub = Subscription(list_as_seen["id"], opener.user_id, todo_id=todo_id, token_hash=opener.token_hash,
                           limit=self.settings.stream_queue_size, list_as_seen=dict(list_as_seen))
        self._serve_changes(socket, opener, sub, None)

    def _lists_stream(self, socket: Socket, opener: Opener) -> None:
        sub = ListsSubscription(opener.user_id, opener.token_hash)
        self.dispatcher.subscribe_lists(sub)
        self._serve(socket, opener, sub, self.dispatcher.unsubscribe_lists, self._follow_lists, sub)

    # -- shared machinery ---------------------------------------------------

    def _open(self, socket: Socket, sub: Subscriber, opener: Opener) -> Stream:
        stream = Stream(socket, sub, self.metrics, self.clock())
        self.active.add(stream)
        self.pinger.add(stream)
        self.metrics.open_streams.inc()
        log.info("stream open %s user=%s", opener.label, opener.user_id,
                 extra={"event": "stream_open", "path": opener.label, "user_id": opener.user_id})
        return stream

    def _close(self, stream: Stream, opener: Opener, reason: str) -> None:
        socket = stream.socket
        self.active.discard(stream)
        self.pinger.discard(stream)
        self.metrics.open_streams.dec()
        try:
            # Give the peer a moment to answer our close frame before the connection drops.
            socket.wait_input_done(timeout=2)
        finally:
            socket.stop_reading()
        log.info("stream close %s user=%s after %.1fs: %s", opener.label, opener.user_id, self.clock() - stream.opened,
                 reason, extra={"event": "stream_close", "path": opener.label, "user_id": opener.user_id,
                                "reason": reason})

    def _serve_changes(self, socket: Socket, opener: Opener, sub: Subscription, since: int | None,
                       on_text: Callable[[str], None] | None = None) -> None:
        """Subscribe first, then sync, then deliver queued changes newer than the sync."""
        self.dispatcher.subscribe(sub)
        self._serve(socket, opener, sub, self.dispatcher.unsubscribe, self._follow_changes, sub, since, on_text)

    def _serve(self, socket: Socket, opener: Opener, sub: Subscriber, unsubscribe: Callable[[Any], None],
               body: Callable[..., str], *args: Any) -> None:
        """Open the stream, run `body(stream, *args)`, then `unsubscribe(sub)` and close, logging why.
        Bound methods and arguments, not closures (a function and a cell per variable): whatever a parked
        stream's frames hold is memory per stream, and walked by every full collection."""
        stream = self._open(socket, sub, opener)
        reason = "closed by client"
        try:
            reason = self._run(socket, body, stream, *args)
        finally:
            unsubscribe(sub)
            self._close(stream, opener, reason)

    def _follow_changes(self, stream: Stream, sub: Subscription, since: int | None,
                        on_text: Callable[[str], None] | None) -> str:
        # Client frames are read in the event loop, not by a greenlet of their own: a ping
        # wakes this greenlet to answer it; the peer's close or disappearance ends the stream.
        socket = stream.socket
        socket.start_reading(sub.wakeup.set, sub.peer_gone, on_text)
        rev = self._send_sync(socket, sub, since)
        if rev is None:
            socket.close(Close.NORMAL, Close.NORMAL.reason)
            return "todo gone"
        self.dispatcher.position(sub.list_id, rev)
        return self._deliver(stream, sub, rev)

    def _send_sync(self, socket: Socket, sub: Subscription, since: int | None) -> int | None:
        """Send a snapshot (or the changes after `since`) and `ready`; the rev reached, or None when a
        todo stream's todo is gone. Its own method, so that the snapshot is freed as it returns."""
        if sub.todo_id is not None:
            synced = self.sync.todo_stream(sub.list_id, sub.user_id, sub.todo_id)
        else:
            synced = self.sync.list_stream(sub.list_as_seen, sub.user_id, sub.predicate, since, sub.members)
        if synced is None:
            return None
        frames, rev = synced
        socket.send_frames(frames + protocol.ready(rev))
        return rev

    def _follow_lists(self, stream: Stream, sub: ListsSubscription) -> str:
        socket = stream.socket
        socket.start_reading(sub.wakeup.set, sub.peer_gone)
        shown = self.sync.lists_of(sub.user_id)
        socket.send_frames(protocol.lists_snapshot(list(shown.values())) + protocol.ready())
        self.dispatcher.watch_lists(sub, shown)
        sub.touch()       # read once more: a change between the first read and the watch is not missed
        return self._deliver_lists(stream, sub, shown)

    def _run(self, socket: Socket, body: Callable[..., str], *args: Any) -> str:
        """Run a stream's body; whatever way it ends, the reason (for the log), the socket closed as it should be."""
        try:
            return body(*args)
        except WriteStalled:
            self.metrics.slow_consumers.inc()
            return "too slow (stopped reading; dropped)"
        except ConnectionClosed:
            return "connection lost"
        except ListGone:
            socket.close(Close.LIST_DELETED, Close.LIST_DELETED.reason)
            return "list deleted"
        except AccessLost:
            socket.close(Close.NOT_A_MEMBER, Close.NOT_A_MEMBER.reason)
            return "no longer a member"
        except DatabaseUnavailable as error:
            socket.close(Close.SERVER_ERROR, Close.SERVER_ERROR.reason)
            return f"sync failed: {error.message}"
        except Exception:
            log.exception("stream failed")
            socket.close(Close.SERVER_ERROR, "server error")
            return "server error"

    def _end(self, socket: Socket, code: int | PeerGone) -> str:
        """Close for `code`, or echo the peer's close frame when it left first."""
        if code is PEER_GONE:
            socket.answer_close()
            return PEER_GONE.value
        socket.close(code, Close(code).reason)
        return f"ended with {int(code)}"

    def _control(self, socket: Socket, sub: Subscriber) -> None:
        socket.flush()              # the tail of a frame the dispatcher could not write whole
        if socket.pong_due is not None:
            socket.answer_ping()
        if sub.ping_due:
            sub.ping_due = False
            socket.send_ping()

    def _deliver(self, stream: Stream, sub: Subscription, sent_rev: int) -> str:
        socket = stream.socket
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
                    socket.close(Close.TOO_SLOW, Close.TOO_SLOW.reason)
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
                    sub.sent_rev = change.rev
                    if op == MEMBER_MESSAGE:
                        # The user's own membership, in the list's order: a removal older than
                        # what the stream started from is history, a newer one ends it.
                        if change.user_id == sub.user_id:
                            if change.role is None:
                                removed = True
                                continue
                            sub.list_as_seen["role"] = change.role
                        if not sub.members:
                            continue
                        frames.append(protocol.member_frame(change))
                        changed_times.append(change.changed_time)
                        continue
                    frames.append(message(sub, change, op))
                    changed_times.append(change.changed_time)
                    deleted = one_todo and op == "delete"
                if frames:
                    socket.send_frames(frames[0] if len(frames) == 1 else b"".join(frames))
                    self.metrics.sent_from_queue(changed_times)
                if deleted:
                    socket.close(Close.NORMAL, Close.NORMAL.reason)
                    return "todo deleted"
                if removed:
                    socket.close(Close.NOT_A_MEMBER, Close.NOT_A_MEMBER.reason)
                    return "no longer a member"

    # -- the lists stream -----------------------------------------------------

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
            now = self.sync.lists_of(sub.user_id)
            # A deletion carries the list as this client last got it: what it holds, however
            # often the list was read again meanwhile (its rev moves with every todo change).
            frames = [protocol.lists_change("delete", view) for list_id, view in shown.items() if list_id not in now]
            for list_id, view in now.items():
                before = shown.get(list_id)
                if before is None:
                    frames.append(protocol.lists_change("insert", view))
                elif (before["title"], before["role"]) != (view["title"], view["role"]):
                    frames.append(protocol.lists_change("update", view))
                else:
                    now[list_id] = before
            shown = now
            self.dispatcher.watch_lists(sub, shown)
            if frames:
                socket.send_frames(b"".join(frames))
                self.metrics.messages_sent.inc(len(frames))
