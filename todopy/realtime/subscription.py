"""What one stream wants from the dispatcher, and the mailbox it is fed through.

A subscriber is the meeting point of two greenlets: the dispatcher puts work in
and wakes it; the stream's own greenlet takes the work out and is the socket's
only writer. Nothing here does I/O.
"""
from __future__ import annotations

import collections
import enum
from typing import Any, Callable, Final, Sequence

import gevent.event

from todopy.realtime.changes import Change

TITLE_MESSAGE = "list"      # a change sent as a `list` message (the list's new title)
MEMBER_MESSAGE = "member"   # a membership change: acted on by its member's streams, told to list streams


class PeerGone(enum.Enum):
    """How a stream ends that is not a close code of ours: the peer closed it or vanished."""

    PEER_GONE = "the peer left"


PEER_GONE: Final = PeerGone.PEER_GONE


class Subscriber:
    """A stream's greenlet as others see it: woken for work, asked to end or to ping."""

    __slots__ = ("user_id", "token_hash", "wakeup", "ending", "ping_due")

    def __init__(self, user_id: str, token_hash: bytes | None) -> None:
        self.user_id = user_id
        self.token_hash = token_hash       # the session it was opened with: its revocation ends it
        self.wakeup = gevent.event.Event()
        # Why the stream must end, once it must: a close code of ours (shutdown, revoked access, ...) or PEER_GONE.
        self.ending: int | PeerGone | None = None
        self.ping_due = False

    def end(self, code: int | PeerGone) -> None:
        """Ask the stream to close with `code` at its next wake-up (the first reason wins)."""
        if self.ending is None:
            self.ending = code
        self.wake()

    def peer_gone(self) -> None:
        """The peer closed or vanished (the socket's end callback)."""
        self.end(PEER_GONE)

    def request_ping(self) -> None:
        self.ping_due = True
        self.wake()

    def wake(self) -> None:
        self.wakeup.set()


class Subscription(Subscriber):
    """One stream of one list: by list, then by todo id or predicate, the changes it is sent.

    The dispatcher never blocks on a subscriber: it appends to a bounded deque and
    wakes the stream's greenlet, yielding once when the queue fills past half so a
    stream that keeps up can drain it; a full queue marks the subscriber as too slow.
    While the greenlet is parked with nothing to do, `direct` lets the dispatcher write
    the change itself (todopy.realtime.streams.Stream.send_now, with its figures).
    """

    __slots__ = ("list_id", "todo_id", "predicate", "limit", "queue", "overflowed", "sent_rev", "list_as_seen",
                 "presence_frame", "direct", "members")

    def __init__(self, list_id: str, user_id: str, *, todo_id: str | None = None, predicate: bool | None = None,
                 token_hash: bytes | None = None, limit: int = 1000,
                 list_as_seen: dict[str, Any] | None = None, members: bool = False) -> None:
        super().__init__(user_id, token_hash)
        self.members = members                 # asked for `member` messages (?members=true): a list stream only
        self.list_id = list_id
        self.todo_id = todo_id
        self.predicate = predicate
        self.limit = limit
        # The list as this stream's user sees it (its title, their role): `list` messages carry it.
        self.list_as_seen = list_as_seen or {}
        self.queue: collections.deque[tuple[Change, str]] = collections.deque()
        self.overflowed = False
        self.sent_rev = 0                      # the latest rev this stream has sent
        self.presence_frame: bytes | None = None   # the latest presence message not sent yet (todopy.realtime.presence)
        # Set by the parked greenlet: `direct(items)` writes what it can of them and says how many,
        # from the first. Waking the greenlet withdraws it, so whatever the greenlet then writes stays in order.
        self.direct: Callable[[Sequence[tuple[Change, str]]], int] | None = None

    def wants(self, change: Change) -> str | None:
        """What this stream is sent for one of its list's changes (an op, TITLE_MESSAGE or
        MEMBER_MESSAGE), or None. A deleted list ends every stream of it (the dispatcher's rule)."""
        kind = change.kind
        if kind == "todo":
            if self.todo_id is None:
                return change.op_for(self.predicate)
            return change.op if change.todo_id == self.todo_id else None
        if kind == "list":
            return TITLE_MESSAGE if self.todo_id is None and change.op == "update" else None
        # A membership change acts on the stream of its member, in rev order with the rest, and
        # is told (a `member` message) to the list streams that asked for them.
        return MEMBER_MESSAGE if change.user_id == self.user_id or self.members else None

    def put(self, items: Sequence[tuple[Change, str]]) -> bool:
        """Queue `items` (changes with their ops, in the list's order) and wake the stream; True
        when the queue is half full or more. The dispatcher hands over all of one read's changes
        for this stream at once, so a stream that fell behind catches up in one write."""
        if self.overflowed:
            return False
        if self.direct is not None:
            written = self.direct(items)
            if written == len(items):
                return False
            items = items[written:]
        queue = self.queue
        for item in items:
            if len(queue) >= self.limit:
                self.overflowed = True
                queue.clear()           # it will resume with `since`; free the memory now
                break
            queue.append(item)
        self.wake()
        return 2 * len(queue) >= self.limit

    def offer_presence(self, frame: bytes) -> None:
        """Who is in the list now: only the latest view matters, so it replaces one not sent yet."""
        self.presence_frame = frame
        self.wake()

    def wake(self) -> None:
        """Wake the stream's greenlet, and take writing back from the dispatcher."""
        self.direct = None
        self.wakeup.set()


class ListsSubscription(Subscriber):
    """One stream of a user's lists: woken (`stale`) when any of them, or the user's
    memberships, may have changed; the stream then reads the lists again and sends the difference."""

    __slots__ = ("watched", "stale")

    def __init__(self, user_id: str, token_hash: bytes | None = None) -> None:
        super().__init__(user_id, token_hash)
        self.watched: frozenset[str] = frozenset()   # the list ids it last sent
        self.stale = False

    def touch(self) -> None:
        self.stale = True
        self.wakeup.set()
