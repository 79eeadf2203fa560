"""The dispatch loop: rings mark lists due; their new changes are read from the log and routed to subscriptions.

A change flows one way: the listener (todopy.realtime.listener) hears a ring, the
registry (todopy.realtime.registry) marks the lists due, this loop reads their
changes after each cursor in one query and puts each in the mailboxes the
registry routes it to (todopy.realtime.subscription); each stream's greenlet
writes its own socket (todopy.realtime.streams). A REST write of one todo made in
this process is also handed over by its writer as it commits (`committed`), and
reaches this process's streams without waiting for the ring.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable

import gevent
import gevent.event

from todopy.accounts import Accounts
from todopy.db import ConnectionPool, Row
from todopy.errors import DatabaseUnavailable
from todopy.metrics import Metrics
from todopy.realtime import protocol, reconcile
from todopy.realtime.handover import HandOver
from todopy.realtime.listener import Listener
from todopy.realtime.protocol import Close
from todopy.realtime.registry import Registry
from todopy.realtime.subscription import ListsSubscription, Subscription
from todopy.sqlfiles import queries

log = logging.getLogger(__name__)
CHANGES_SQL = queries("changes")


class Dispatcher:
    """Knows which lists this process's streams follow, reads their new changes, hands each on.

    Notifications only wake it; what to deliver always comes from the change log,
    read after each list's cursor (the last rev dispatched). So a lost notification
    or a lost connection only delays: the slow reconcile timer, and every
    reconnect, compare the lists' head revs with the cursors and read what is missing.
    The ringer rings at least every quarter second (an empty ring when nothing moved);
    when no ring came for `ring_silence` seconds (a stalled ringer, before its lease
    runs out), the reconcile runs that often instead, for every kind of stream.
    """

    def __init__(self, dsn: str, pool: ConnectionPool, accounts: Accounts, metrics: Metrics, *, batch_size: int = 5000,
                 reconcile_interval: float = 5.0, ring_silence: float = 1.0, max_backoff: float = 2.0,
                 on_reconnect: Callable[[], None] | None = None, stream_queue_size: int = 1000) -> None:
        self.pool = pool
        self.accounts = accounts
        self.metrics = metrics
        self.batch_size = batch_size
        self.reconcile_interval = reconcile_interval
        self.ring_silence = ring_silence
        self.on_reconnect = on_reconnect
        self.registry = Registry()
        self.hand_over = HandOver(self.registry, metrics, stream_queue_size)
        # Other channels heard on this one connection, each with who handles its payloads
        # (presence: todopy.realtime.presence); called in the listener's greenlet, must not block.
        self.channel_hooks: dict[str, Callable[[str], None]] = {}
        self.listener = Listener(dsn, (protocol.RING_CHANNEL, protocol.DOORBELL_CHANNEL, protocol.SESSIONS_CHANNEL),
                                 on_notification=self._notified, on_connect=self._listening,
                                 on_lost=self._not_listening, max_backoff=max_backoff)
        self._rung_at = 0.0                       # the loop's clock when the last ring came
        self._work = gevent.event.Event()
        self._reconcile_due = False               # heads, horizons and sessions, at the next turn
        self._reconciler: gevent.Greenlet | None = None   # the reconcile running beside dispatching
        self._greenlets: list[gevent.Greenlet] = []
        self._stopping = False

    # -- subscriptions (called by streams) ------------------------------------

    def subscribe(self, sub: Subscription) -> None:
        """Before the stream syncs: from now on its list's changes are queued for it."""
        self.registry.subscribe(sub)

    def position(self, list_id: str, rev: int) -> None:
        """After a stream synced up to `rev`: changes after it must reach the list's streams."""
        if self.registry.position(list_id, rev):
            self._work.set()

    def unsubscribe(self, sub: Subscription) -> None:
        self.registry.unsubscribe(sub)

    def subscribe_lists(self, sub: ListsSubscription) -> None:
        self.registry.subscribe_lists(sub)

    def watch_lists(self, sub: ListsSubscription, list_ids: Iterable[str]) -> None:
        self.registry.watch_lists(sub, list_ids)

    def unsubscribe_lists(self, sub: ListsSubscription) -> None:
        self.registry.unsubscribe_lists(sub)

    # -- lifecycle --------------------------------------------------------------

    @property
    def listening(self) -> bool:
        return self.listener.listening

    @property
    def stopping(self) -> bool:
        """`shutdown()` was called: streams are being closed and no new one may open."""
        return self._stopping

    def start(self) -> None:
        self.listener.channels += tuple(self.channel_hooks)
        self._greenlets = [gevent.spawn(self.listener.run_forever), gevent.spawn(self._dispatch_forever)]

    def shutdown(self, code: int) -> None:
        """Stop listening and ask every stream to close with `code`."""
        self._stopping = True
        for sub in self.registry.subscriptions():
            sub.end(code)
        for greenlet in [*self._greenlets, *([self._reconciler] if self._reconciler else [])]:
            greenlet.kill(block=False)

    # -- what the listener tells ------------------------------------------------

    def _listening(self, again: bool) -> None:
        # A revocation may have been missed while away: resolve every token afresh.
        self.accounts.trust_cache(True)
        self._rung_at = gevent.get_hub().loop.now()
        self.metrics.listener_up.set(1)
        if again:
            self.metrics.listener_reconnects.inc()
            if self.on_reconnect:
                self.on_reconnect()
        # Whatever was rung while away: read every followed list again, and reconcile (pruned
        # lists, and the sessions of open streams: a sign-out may have been missed).
        self._catch_up(reconcile=True)

    def _not_listening(self) -> None:
        self.metrics.listener_up.set(0)
        self.accounts.trust_cache(False)   # revocations go unheard until the listener is back

    def _notified(self, channel: str, payload: str) -> None:
        if channel == protocol.SESSIONS_CHANNEL:
            self._revoke(bytes.fromhex(payload))
            return
        if channel == protocol.DOORBELL_CHANNEL:
            # A lone write, heard straight from its writer while the ringer sleeps: its list is
            # read now rather than after the ringer's tick and ring (two hops fewer).
            list_id = protocol.parse_doorbell(payload)
            if list_id is not None and self.registry.doorbell(list_id):
                self._work.set()
            return
        hook = self.channel_hooks.get(channel)
        if hook is not None:
            hook(payload)
            return
        self._rung_at = gevent.get_hub().loop.now()
        moved = protocol.parse_ring(payload)
        if moved is None:
            self._catch_up(reconcile=False)
            return
        for sub in self.registry.rung(moved):
            sub.touch()
        if self.registry.due:
            self._work.set()

    def _catch_up(self, *, reconcile: bool) -> None:
        self.registry.everything_due()
        self._reconcile_due = self._reconcile_due or reconcile
        self._touch_lists()
        self._work.set()

    def _touch_lists(self) -> None:
        """Lists streams have no cursor to compare: each reads its lists again and sends the difference."""
        for sub in self.registry.lists_subscriptions():
            sub.touch()

    def _revoke(self, token_hash: bytes) -> None:
        self.accounts.forget(token_hash)
        for sub in self.registry.of_token(token_hash):
            sub.end(Close.POLICY)

    # -- what this process wrote ------------------------------------------------------

    def committed(self, rows: list[Row]) -> None:
        """A write this process just committed: its own log rows, read back in its transaction as
        the `after` query reads the log. Those that follow their list's cursor are delivered now,
        in the writer's greenlet, before it answers (no ring waited for, no read of the log; a
        writer back to back is paced by its streams); the others are read (`Registry.follow_on`).
        The write is committed and answered whatever happens here."""
        if not rows or self._stopping:
            return
        try:
            deliverable = self.registry.follow_on(rows)
            if self.registry.due:
                self._work.set()
            if deliverable:
                self.hand_over.deliver(deliverable)
                self.metrics.changes_handed.inc(len(deliverable))
        except Exception:
            log.exception("handing a committed write to this process's streams failed; reading it from the log")
            self.registry.doorbell(rows[0].list_id)
            self._work.set()

    # -- the loop: reads due lists' changes, one query per batch ------------------

    def _dispatch_forever(self) -> None:
        reconciled = gevent.get_hub().loop.now()
        silent = False
        while not self._stopping:
            self._work.wait(timeout=min(self.reconcile_interval, self.ring_silence / 4))
            self._work.clear()
            try:
                now = gevent.get_hub().loop.now()
                silent = self._silent(now, silent)
                interval = self.ring_silence if silent else self.reconcile_interval
                reconciling = self._reconciler is not None and not self._reconciler.dead
                if (now - reconciled >= interval or self._reconcile_due) and not reconciling:
                    reconciled, self._reconcile_due = now, False
                    self._reconciler = gevent.spawn(self._reconcile_aside)
                self._dispatch_due()
            except DatabaseUnavailable as error:
                # The database is away: the listener's reconnect catches up later.
                log.warning("dispatcher could not read changes: %s", error.message)
                gevent.sleep(0.5)
                self._work.set()
            except gevent.GreenletExit:
                raise
            except Exception:
                log.exception("dispatcher failed; retrying")
                gevent.sleep(0.5)
                self._work.set()

    def _silent(self, now: float, was_silent: bool) -> bool:
        """Whether the ringer has been silent too long (only while listening: else the reconnect catches up)."""
        silent = self.listening and now - self._rung_at >= self.ring_silence
        if silent and not was_silent:
            log.warning("no ring for %.1f s: the ringer is stalled or gone; reading the change log every %.1f s "
                        "until it rings again", now - self._rung_at, self.ring_silence)
        elif was_silent and not silent:
            log.info("the ringer rings again")
        self.metrics.ringer_silent.set(1 if silent else 0)
        return silent

    def _dispatch_due(self) -> None:
        while due := self.registry.take_due():
            rows = self.pool.query_all(CHANGES_SQL["after"], {"lists": list(due), "revs": list(due.values()),
                                                              "limit": self.batch_size})
            if len(rows) == self.batch_size:
                self.registry.due.update(due)          # more to read after this batch
            self.hand_over.deliver(rows)
            self.metrics.changes_dispatched.inc(len(rows))

    # -- the slow timer ------------------------------------------------------------

    def _reconcile_aside(self) -> None:
        """Reconcile beside dispatching: with 10,000 followed lists a reconcile reads as many
        heads and sessions (150-300 ms, up to 1.4 s measured), which live changes must not wait for."""
        try:
            self._reconcile()
        except DatabaseUnavailable as error:
            # The database is away: the next reconcile, or the listener's reconnect, catches up.
            log.warning("dispatcher could not reconcile: %s", error.message)
        except Exception:
            log.exception("reconcile failed; the next one retries")
        finally:
            self._work.set()              # what it found due is read now; a reconcile asked meanwhile runs

    def _reconcile(self) -> None:
        """Any followed list whose head is past its cursor is read again, so a lost notification
        only delays; a list pruned past it starts its streams again. Expired sessions' streams end."""
        asked = list(self.registry.followed())
        heads = reconcile.read_heads(self.pool, asked)
        now = self.registry.followed()                  # cursors moved on, or went, while the heads were read
        behind = reconcile.compare({list_id: now[list_id] for list_id in asked if list_id in now}, heads)
        self.registry.due.update(behind.due)
        for list_id, head_rev in behind.pruned.items():
            # Pruned past what this process delivered (a long outage): the missing changes are
            # gone, so the list's streams start again (4008, then a resume or a snapshot).
            log.warning("change log of list %s was pruned past rev %s; its streams will resync", list_id, now[list_id])
            for sub in self.registry.subscriptions_of(list_id):
                sub.end(Close.TOO_SLOW)
            self.registry.skip_to(list_id, head_rev)
        self._touch_lists()
        self._check_sessions()

    def _check_sessions(self) -> None:
        """End the streams of sessions that expired or were revoked (a missed notification)."""
        tokens = self.registry.tokens()
        if tokens:
            for token_hash in self.accounts.invalid_tokens(tokens):
                self._revoke(token_hash)

