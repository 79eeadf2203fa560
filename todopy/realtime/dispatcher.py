"""The process's one LISTEN connection, and the dispatcher that routes each list's changes to its subscriptions."""
from __future__ import annotations

import collections
import json
import logging
from typing import Any, Callable, Iterable

import gevent
import gevent.event
import pgpubsub

from todopy import db
from todopy.accounts import Accounts
from todopy.db import ConnectionPool, Row
from todopy.errors import DatabaseUnavailable, HTTPError
from todopy.metrics import Metrics
from todopy.realtime.changes import Change
from todopy.realtime.socket import LIST_DELETED, POLICY, TOO_SLOW
from todopy.realtime.subscription import ListsSubscription, Subscription
from todopy.sqlfiles import queries

log = logging.getLogger(__name__)
CHANGES_SQL = queries("changes")
RING_CHANNEL = "todopy_ring"          # the ringer: which lists moved (todopy.realtime.ringer)
SESSIONS_CHANNEL = "todopy_sessions"  # a session was revoked: its token hash
EVERYTHING = "*"                      # a ring too large for one notification: look at every list


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
                 on_reconnect: Callable[[], None] | None = None) -> None:
        self.dsn = dsn
        self.pool = pool
        self.accounts = accounts
        self.metrics = metrics
        self.batch_size = batch_size
        self.reconcile_interval = reconcile_interval
        self.ring_silence = ring_silence
        self._rung_at = 0.0                       # the loop's clock when the last ring came
        self.max_backoff = max_backoff
        self.on_reconnect = on_reconnect
        self.listening = False
        # list id -> its subscriptions, and the last rev dispatched to them (None: not
        # positioned yet; the first stream's sync sets it).
        self._by_list: dict[str, set[Subscription]] = collections.defaultdict(set)
        self._cursor: dict[str, int | None] = {}
        self._lists_by_user: dict[str, set[ListsSubscription]] = collections.defaultdict(set)
        self._lists_by_list: dict[str, set[ListsSubscription]] = collections.defaultdict(set)
        self._by_token: dict[bytes, set[Subscription | ListsSubscription]] = collections.defaultdict(set)
        self._due: set[str] = set()               # lists whose new changes should be read
        self._work = gevent.event.Event()
        self._reconcile_due = False               # heads, horizons and sessions, at the next turn
        self._reconciler: gevent.Greenlet | None = None   # the reconcile running beside dispatching
        self._greenlets: list[gevent.Greenlet] = []
        self._stopping = False
        # Other channels heard on this one connection, each with who handles its payloads
        # (presence: todopy.realtime.presence); called in the listener's greenlet, must not block.
        self.channel_hooks: dict[str, Callable[[str], None]] = {}

    # -- subscriptions (called by streams) ------------------------------------

    def subscribe(self, sub: Subscription) -> None:
        """Before the stream syncs: from now on its list's changes are queued for it."""
        self._by_list[sub.list_id].add(sub)
        self._cursor.setdefault(sub.list_id, None)
        if sub.token_hash is not None:
            self._by_token[sub.token_hash].add(sub)

    def position(self, list_id: str, rev: int) -> None:
        """After a stream synced up to `rev`: changes after it must reach the list's streams.

        A cursor may only move back (another stream of the list synced earlier): the
        re-read changes are dropped by the streams that already have them (by rev).
        """
        if list_id not in self._cursor:
            return
        cursor = self._cursor[list_id]
        self._cursor[list_id] = rev if cursor is None else min(cursor, rev)
        self._due.add(list_id)
        self._work.set()

    def unsubscribe(self, sub: Subscription) -> None:
        _discard(self._by_list, sub.list_id, sub)
        if sub.list_id not in self._by_list:
            self._cursor.pop(sub.list_id, None)
            self._due.discard(sub.list_id)
        if sub.token_hash is not None:
            _discard(self._by_token, sub.token_hash, sub)

    def subscribe_lists(self, sub: ListsSubscription) -> None:
        self._lists_by_user[sub.user_id].add(sub)
        if sub.token_hash is not None:
            self._by_token[sub.token_hash].add(sub)

    def watch_lists(self, sub: ListsSubscription, list_ids: Iterable[str]) -> None:
        """The lists a lists stream shows: their title changes and deletion wake it."""
        new = frozenset(list_ids)
        for list_id in sub.watched - new:
            _discard(self._lists_by_list, list_id, sub)
        for list_id in new - sub.watched:
            self._lists_by_list[list_id].add(sub)
        sub.watched = new

    def unsubscribe_lists(self, sub: ListsSubscription) -> None:
        self.watch_lists(sub, ())
        _discard(self._lists_by_user, sub.user_id, sub)
        if sub.token_hash is not None:
            _discard(self._by_token, sub.token_hash, sub)

    def subscriptions(self) -> list[Subscription | ListsSubscription]:
        return [*(sub for subs in self._by_list.values() for sub in subs),
                *(sub for subs in self._lists_by_user.values() for sub in subs)]

    # -- lifecycle --------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """`shutdown()` was called: streams are being closed and no new one may open."""
        return self._stopping

    def start(self) -> None:
        self._greenlets = [gevent.spawn(self._listen_forever), gevent.spawn(self._dispatch_forever)]

    def shutdown(self, code: int) -> None:
        """Stop listening and ask every stream to close with `code`."""
        self._stopping = True
        for sub in self.subscriptions():
            sub.end(code)
        for greenlet in [*self._greenlets, *([self._reconciler] if self._reconciler else [])]:
            greenlet.kill(block=False)

    # -- the listener: notifications mark lists due ----------------------------

    def _listen_forever(self) -> None:
        delay, connected_before = 0.1, False
        while not self._stopping:
            conn = None
            try:
                conn = db.connect(self.dsn, timeout=5, application_name="todopy-listener")
                conn.autocommit = True
                pubsub = pgpubsub.PubSub(conn)
                pubsub.listen(RING_CHANNEL)
                pubsub.listen(SESSIONS_CHANNEL)
                for channel in self.channel_hooks:
                    pubsub.listen(channel)
                # A revocation may have been missed while away: resolve every token afresh.
                self.accounts.trust_cache(True)
                self._rung_at = gevent.get_hub().loop.now()
                self._set_listening(True)
                if connected_before:
                    self.metrics.listener_reconnects.inc()
                    log.info("change listener reconnected; catching up every followed list from the change log")
                    if self.on_reconnect:
                        self.on_reconnect()
                connected_before, delay = True, 0.1
                # Whatever was rung while we were away: read every followed list again, and
                # reconcile (pruned lists, and the sessions of open streams: a sign-out may
                # have been missed).
                self._catch_up(reconcile=True)
                while not self._stopping:
                    # Notifications that arrive with a query's results wait in conn.notifies,
                    # not on the socket: blocking in select() would leave them unhandled.
                    events = pubsub.get_events(select_timeout=0 if conn.notifies else 30) or ()
                    for event in events:
                        self._handle(event.channel, event.payload)
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
                self.accounts.trust_cache(False)   # revocations go unheard until the listener is back
                if conn is not None:
                    conn.close()
            gevent.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    def _handle(self, channel: str, payload: str) -> None:
        if channel == SESSIONS_CHANNEL:
            self._revoke(bytes.fromhex(payload))
            return
        hook = self.channel_hooks.get(channel)
        if hook is not None:
            hook(payload)
            return
        self._rung_at = gevent.get_hub().loop.now()
        if payload == EVERYTHING:
            self._catch_up(reconcile=False)
            return
        for list_id, rev, meta, users in json.loads(payload):
            cursor = self._cursor.get(list_id)
            if cursor is not None and rev > cursor:
                self._due.add(list_id)
            if meta:
                for sub in self._lists_by_list.get(list_id, ()):
                    sub.touch()
            for user_id in users or ():
                for sub in self._lists_by_user.get(user_id, ()):
                    sub.touch()
        if self._due:
            self._work.set()

    def _catch_up(self, *, reconcile: bool) -> None:
        self._due.update(list_id for list_id, cursor in self._cursor.items() if cursor is not None)
        self._reconcile_due = self._reconcile_due or reconcile
        self._touch_lists()
        self._work.set()

    def _touch_lists(self) -> None:
        """Lists streams have no cursor to compare: each reads its lists again and sends the difference."""
        for subs in self._lists_by_user.values():
            for sub in subs:
                sub.touch()

    def _revoke(self, token_hash: bytes) -> None:
        self.accounts.forget(token_hash)
        for sub in list(self._by_token.get(token_hash, ())):
            sub.end(POLICY)

    def _set_listening(self, up: bool) -> None:
        self.listening = up
        self.metrics.listener_up.set(1 if up else 0)

    # -- the dispatcher: reads due lists' changes, one query per batch -----------

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
            except HTTPError as error:
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

    def _reconcile_aside(self) -> None:
        """Reconcile beside dispatching: with 10,000 followed lists a reconcile reads as many
        heads and sessions (150-300 ms, up to 1.4 s measured), which live changes must not wait for."""
        try:
            self._reconcile()
        except HTTPError as error:
            # The database is away: the next reconcile, or the listener's reconnect, catches up.
            log.warning("dispatcher could not reconcile: %s", error.message)
        except Exception:
            log.exception("reconcile failed; the next one retries")
        finally:
            self._work.set()              # what it found due is read now; a reconcile asked meanwhile runs

    def _reconcile(self) -> None:
        """The slow timer: any followed list whose head is past its cursor is read again,
        so a lost notification only delays. Expired sessions' streams end here too."""
        followed = [list_id for list_id, cursor in self._cursor.items() if cursor is not None]
        if followed:
            heads = {row.id: row for row in self.pool.query_all(CHANGES_SQL["heads"], {"lists": followed})}
            for list_id in followed:
                cursor = self._cursor.get(list_id)
                if cursor is None:
                    continue
                head = heads.get(list_id)
                if head is None:
                    self._due.add(list_id)      # deleted: its last change (the deletion) is still to be read
                elif head.horizon > cursor:
                    # Pruned past what this process delivered (a long outage): the missing changes are
                    # gone, so the list's streams start again (4008, then a resume or a snapshot).
                    log.warning("change log of list %s was pruned past rev %s; its streams will resync",
                                list_id, cursor)
                    for sub in list(self._by_list.get(list_id, ())):
                        sub.end(TOO_SLOW)
                    self._cursor[list_id] = head.rev
                elif head.rev > cursor:
                    self._due.add(list_id)
        self._touch_lists()
        self._check_sessions()

    def _check_sessions(self) -> None:
        """End the streams of sessions that expired or were revoked (a missed notification)."""
        if not self._by_token:
            return
        for token_hash in self.accounts.invalid_tokens(list(self._by_token)):
            self._revoke(token_hash)

    def _dispatch_due(self) -> None:
        while self._due:
            due = [list_id for list_id in self._due if self._cursor.get(list_id) is not None]
            self._due.clear()
            if not due:
                return
            rows = self.pool.query_all(CHANGES_SQL["after"], {"lists": due, "limit": self.batch_size,
                                                              "revs": [self._cursor[list_id] for list_id in due]})
            if len(rows) == self.batch_size:
                self._due.update(due)          # more to read after this batch
            self._deliver(rows)
            self.metrics.changes_dispatched.inc(len(rows))

    def _deliver(self, rows: list[Row]) -> None:
        for row in rows:
            change = Change(row)
            cursor = self._cursor.get(change.list_id)
            if cursor is None or change.rev <= cursor:
                continue          # unsubscribed meanwhile, or already delivered
            self._cursor[change.list_id] = change.rev
            subs = self._by_list.get(change.list_id, ())
            backlog = False
            if change.kind == "todo":
                for sub in subs:
                    backlog = sub.offer(change) or backlog
            elif change.kind == "list":
                self._list_changed(change, subs)
            else:
                self._member_changed(change, subs)
            if backlog:
                # Let the streams write their queues out before the next change: without
                # a turn they could not drain at all, and one bulk statement bigger than
                # the queue would close (4008) even subscribers that keep up.
                gevent.sleep(0)

    def _list_changed(self, change: Change, subs: Iterable[Subscription]) -> None:
        if change.op == "delete":
            for sub in list(subs):
                sub.end(LIST_DELETED)
        else:
            for sub in subs:
                sub.list_view["title"] = change.title
                sub.offer_title(change)

    def _member_changed(self, change: Change, subs: Iterable[Subscription]) -> None:
        """A stream acts on its user's membership changes itself, in rev order: one older than
        its snapshot (a removal before a re-add) must not end it."""
        for sub in subs:
            sub.offer_member(change)


def _discard(index: dict[Any, set], key: Any, sub: Any) -> None:
    subs = index.get(key)
    if subs is not None:
        subs.discard(sub)
        if not subs:
            del index[key]
