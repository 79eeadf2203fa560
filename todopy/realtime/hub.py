"""The process's one LISTEN connection and the dispatcher that routes changes to subscriptions."""
from __future__ import annotations

import collections
import logging
from typing import Callable

import gevent
import gevent.event
import pgpubsub

from todopy import db
from todopy.errors import DatabaseUnavailable
from todopy.metrics import Metrics
from todopy.realtime.changes import Change
from todopy.realtime.socket import TOO_SLOW
from todopy.realtime.subscription import Subscription
from todopy.sqlfiles import queries

log = logging.getLogger(__name__)
Q = queries("changes")
CHANGES_CHANNEL = "todo_changes"
SESSIONS_CHANNEL = "todopy_sessions"


class Hub:
    """Reads notifications, loads the new changes in batches, hands each to its owner's subscriptions.

    Notifications only wake the dispatcher; what to deliver comes from the change
    log, read from the last rev seen. So a lost connection loses nothing: after
    reconnecting, the same read replays whatever was committed meanwhile.
    """

    # Every stream of the process waits on this one connection, so retry often: one
    # connection attempt every 2 s is nothing to a recovering database, and streams
    # resume at most that long after it is back.
    def __init__(self, dsn: str, metrics: Metrics, *, batch_size: int = 5000, max_backoff: float = 2.0,
                 on_reconnect: Callable[[], None] | None = None) -> None:
        self.dsn = dsn
        self.metrics = metrics
        self.batch_size = batch_size
        self.max_backoff = max_backoff
        self.on_reconnect = on_reconnect
        self.cursor: int | None = None          # the last rev dispatched
        # Set once the cursor has its first position. A stream that synced before it
        # could miss changes committed between its snapshot and that position.
        self.positioned = gevent.event.Event()
        self.listening = False
        self._by_owner: dict[str, set[Subscription]] = collections.defaultdict(set)
        self._by_token: dict[bytes, set[Subscription]] = collections.defaultdict(set)
        self._revocation_callbacks: list[Callable[[bytes], None]] = []
        self._greenlet: gevent.Greenlet | None = None
        self._stopping = False

    # -- subscriptions ------------------------------------------------------

    def subscribe(self, sub: Subscription) -> None:
        self._by_owner[sub.owner].add(sub)
        if sub.token_hash is not None:
            self._by_token[sub.token_hash].add(sub)

    def unsubscribe(self, sub: Subscription) -> None:
        _discard(self._by_owner, sub.owner, sub)
        if sub.token_hash is not None:
            _discard(self._by_token, sub.token_hash, sub)

    def subscriptions(self) -> list[Subscription]:
        return [sub for subs in self._by_owner.values() for sub in subs]

    def on_session_revoked(self, callback: Callable[[bytes], None]) -> None:
        self._revocation_callbacks.append(callback)

    # -- lifecycle ----------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """`shutdown()` was called: streams are being closed and no new one may open."""
        return self._stopping

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def shutdown(self, code: int) -> None:
        """Stop listening and ask every stream to close with `code`."""
        self._stopping = True
        for sub in self.subscriptions():
            sub.end(code)
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    # -- the listener loop --------------------------------------------------

    def _run(self) -> None:
        delay, connected_before = 0.1, False
        while not self._stopping:
            conn = None
            try:
                conn = db.connect(self.dsn, timeout=5, application_name="todopy-listener")
                conn.autocommit = True
                pubsub = pgpubsub.PubSub(conn)
                pubsub.listen(CHANGES_CHANNEL)
                pubsub.listen(SESSIONS_CHANNEL)
                with conn.cursor() as cur:
                    self._start_from(cur)
                    self._set_listening(True)
                    if connected_before:
                        self.metrics.listener_reconnects.inc()
                        log.info("change listener reconnected; replaying changes after rev %s", self.cursor)
                        if self.on_reconnect:
                            self.on_reconnect()
                    connected_before, delay = True, 0.1
                    self._dispatch(cur)
                    while not self._stopping:
                        # Notifications that arrive with a query's results wait in conn.notifies,
                        # not on the socket: blocking in select() would leave their changes
                        # undelivered until the next notification or the timeout.
                        events = pubsub.get_events(select_timeout=0 if conn.notifies else 30) or ()
                        self._handle(cur, events)
            except (DatabaseUnavailable, *db.CONNECTION_ERRORS) as error:
                if self.listening or not connected_before:
                    log.warning("change listener lost the database (%s); retrying with backoff",
                                db.first_line(error))
            except gevent.GreenletExit:
                raise
            except Exception:
                log.exception("change listener failed; restarting it")
            finally:
                self._set_listening(False)
                if conn is not None:
                    conn.close()
            gevent.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    def _start_from(self, cur) -> None:
        """Set the cursor on first connect; after a long outage, make streams resync if the log moved on."""
        if self.cursor is None:
            cur.execute(Q["head_rev"])
            self.cursor = cur.fetchone()[0]
            self.positioned.set()
            return
        cur.execute(Q["horizon"])
        horizon = cur.fetchone()[0]
        if self.cursor < horizon:
            log.warning("change log was pruned past rev %s while disconnected; streams will resync", self.cursor)
            for sub in self.subscriptions():
                sub.end(TOO_SLOW)
            cur.execute(Q["head_rev"])
            self.cursor = cur.fetchone()[0]

    def _handle(self, cur, events) -> None:
        wake = False
        for event in events:
            if event.channel == SESSIONS_CHANNEL:
                self._revoke(bytes.fromhex(event.payload))
            else:
                wake = True
        if wake:
            self._dispatch(cur)

    def _dispatch(self, cur) -> None:
        """Deliver every change after the cursor: one query per batch, never per change or socket."""
        while True:
            cur.execute(Q["after"], {"rev": self.cursor, "limit": self.batch_size})
            rows = cur.fetchall()
            for row in rows:
                change = Change(row)
                subs = self._by_owner.get(change.owner)
                backlog = False
                if subs:
                    for sub in subs:
                        backlog = sub.offer(change) or backlog
                self.cursor = change.rev
                if backlog:
                    # Let the streams write their queues out before the next change: without
                    # a turn they could not drain at all, and one bulk statement bigger than
                    # the queue would close (4008) even subscribers that keep up.
                    gevent.sleep(0)
            if rows:
                self.metrics.changes_dispatched.inc(len(rows))
            if len(rows) < self.batch_size:
                return

    def _revoke(self, token_hash: bytes) -> None:
        for callback in self._revocation_callbacks:
            callback(token_hash)
        for sub in list(self._by_token.get(token_hash, ())):
            sub.end(1008)

    def _set_listening(self, up: bool) -> None:
        self.listening = up
        self.metrics.listener_up.set(1 if up else 0)


def _discard(index: dict, key, sub: Subscription) -> None:
    subs = index.get(key)
    if subs is not None:
        subs.discard(sub)
        if not subs:
            del index[key]
