"""Who follows what in this process, where each list's delivery stands, and where a change goes.

Pure bookkeeping, no I/O: the dispatcher asks it which lists are due (a ring named
them, a stream positioned itself, a reconcile found them behind), which of a
writer's own changes can go at once (`follow_on`), and where each change goes
(`route`); streams subscribe and unsubscribe.
"""
from __future__ import annotations

import collections
from typing import Any, Iterable

from todopy.db import Row
from todopy.realtime.changes import Change
from todopy.realtime.protocol import Moved
from todopy.realtime.subscription import ListsSubscription, Subscriber, Subscription

LIST_DELETED = "list deleted"   # a route's op: the list is gone, its streams end (4404)


class Registry:
    def __init__(self) -> None:
        # list id -> its subscriptions, and the last rev dispatched to them (None: not
        # positioned yet; the first stream's sync sets it).
        self._by_list: dict[str, set[Subscription]] = collections.defaultdict(set)
        self._cursor: dict[str, int | None] = {}
        self._lists_by_user: dict[str, set[ListsSubscription]] = collections.defaultdict(set)
        self._lists_by_list: dict[str, set[ListsSubscription]] = collections.defaultdict(set)
        self._by_token: dict[bytes, set[Subscriber]] = collections.defaultdict(set)
        self.due: set[str] = set()                # lists whose new changes should be read

    # -- list and todo streams ----------------------------------------------------

    def subscribe(self, sub: Subscription) -> None:
        """Before the stream syncs: from now on its list's changes are routed to it."""
        self._by_list[sub.list_id].add(sub)
        self._cursor.setdefault(sub.list_id, None)
        self._add_token(sub)

    def position(self, list_id: str, rev: int) -> bool:
        """After a stream synced up to `rev`: changes after it must reach the list's streams
        (the list is due). False when no stream follows the list any more.

        A cursor may only move back (another stream of the list synced earlier): the
        re-read changes are dropped by the streams that already have them (by rev).
        """
        if list_id not in self._cursor:
            return False
        cursor = self._cursor[list_id]
        self._cursor[list_id] = rev if cursor is None else min(cursor, rev)
        self.due.add(list_id)
        return True

    def unsubscribe(self, sub: Subscription) -> None:
        _discard(self._by_list, sub.list_id, sub)
        if sub.list_id not in self._by_list:
            self._cursor.pop(sub.list_id, None)
            self.due.discard(sub.list_id)
        self._drop_token(sub)

    def cursor(self, list_id: str) -> int | None:
        return self._cursor.get(list_id)

    def followed(self) -> dict[str, int]:
        """The positioned lists and their cursors."""
        return {list_id: cursor for list_id, cursor in self._cursor.items() if cursor is not None}

    def take_due(self) -> dict[str, int]:
        """The due lists that are positioned, with their cursors; none is due afterwards."""
        due = {list_id: cursor for list_id in self.due if (cursor := self._cursor.get(list_id)) is not None}
        self.due.clear()
        return due

    def doorbell(self, list_id: str) -> bool:
        """A write to `list_id` committed while the ringer slept (its doorbell): the list is due
        if this process follows it. False when it does not (nothing to read)."""
        if self._cursor.get(list_id) is None:
            return False
        self.due.add(list_id)
        return True

    def follow_on(self, rows: Iterable[Row]) -> list[Row]:
        """Of change-log rows this process committed itself, those that follow their lists' cursors,
        in rev order: deliverable now (`route` then moves the cursors). Rows at or before a cursor
        are delivered already. A list with a gap before its rows (an earlier rev written by another
        process, by SQL, or by a write here that has not handed its own over yet) is due instead:
        a list's revs are assigned under its lock, held to commit, so the earlier ones are
        committed and its read finds them all."""
        deliverable: list[Row] = []
        next_rev: dict[str, int | None] = {}       # per list, the rev due next; None: none of it here
        for row in sorted(rows, key=_list_and_rev):
            list_id = row.list_id
            if list_id not in next_rev:
                cursor = self._cursor.get(list_id)
                next_rev[list_id] = None if cursor is None else cursor + 1     # None: not followed here
            due = next_rev[list_id]
            if due is None or row.rev < due:
                continue
            if row.rev == due:
                deliverable.append(row)
                next_rev[list_id] = due + 1
            else:
                self.due.add(list_id)
                next_rev[list_id] = None
        return deliverable

    def subscriptions_of(self, list_id: str) -> list[Subscription]:
        return list(self._by_list.get(list_id, ()))

    def skip_to(self, list_id: str, rev: int) -> None:
        """Nothing up to `rev` will be delivered (the log was pruned past the cursor)."""
        if list_id in self._cursor:
            self._cursor[list_id] = rev

    def route(self, change: Change) -> list[tuple[Subscription, str]]:
        """Where `change` goes: each subscription that wants it, with what it is sent (an op,
        a title or membership message, or LIST_DELETED). Advances the list's cursor; a change
        at or before it (already delivered) or of an unfollowed list goes nowhere."""
        cursor = self._cursor.get(change.list_id)
        if cursor is None or change.rev <= cursor:
            return []
        self._cursor[change.list_id] = change.rev
        subs = self._by_list.get(change.list_id, ())
        if change.kind == "list" and change.op == "delete":
            return [(sub, LIST_DELETED) for sub in subs]
        routes = []
        for sub in subs:
            op = sub.wants(change)
            if op is not None:
                routes.append((sub, op))
        return routes

    # -- lists streams ---------------------------------------------------------------

    def subscribe_lists(self, sub: ListsSubscription) -> None:
        self._lists_by_user[sub.user_id].add(sub)
        self._add_token(sub)

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
        self._drop_token(sub)

    def lists_subscriptions(self) -> list[ListsSubscription]:
        return [sub for subs in self._lists_by_user.values() for sub in subs]

    # -- rings and sessions ------------------------------------------------------------

    def rung(self, moved: Iterable[Moved]) -> set[ListsSubscription]:
        """A ring: the followed lists it names past their cursors are due; returns the lists
        streams to read again (a list's title or members changed, or a user's memberships)."""
        stale: set[ListsSubscription] = set()
        for entry in moved:
            cursor = self._cursor.get(entry.list_id)
            if cursor is not None and entry.rev > cursor:
                self.due.add(entry.list_id)
            if entry.meta:
                stale.update(self._lists_by_list.get(entry.list_id, ()))
            for user_id in entry.users:
                stale.update(self._lists_by_user.get(user_id, ()))
        return stale

    def everything_due(self) -> None:
        """Every positioned list is due (a ring too large to name them, a reconnect)."""
        self.due.update(self.followed())

    def tokens(self) -> list[bytes]:
        return list(self._by_token)

    def of_token(self, token_hash: bytes) -> list[Subscriber]:
        return list(self._by_token.get(token_hash, ()))

    def subscriptions(self) -> list[Subscriber]:
        return [*(sub for subs in self._by_list.values() for sub in subs), *self.lists_subscriptions()]

    def _add_token(self, sub: Subscriber) -> None:
        if sub.token_hash is not None:
            self._by_token[sub.token_hash].add(sub)

    def _drop_token(self, sub: Subscriber) -> None:
        if sub.token_hash is not None:
            _discard(self._by_token, sub.token_hash, sub)


def _list_and_rev(row: Row) -> tuple[str, int]:
    return row.list_id, row.rev


def _discard(index: dict[Any, set], key: Any, sub: Any) -> None:
    subs = index.get(key)
    if subs is not None:
        subs.discard(sub)
        if not subs:
            del index[key]
