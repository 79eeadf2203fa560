"""What one stream wants from the dispatcher, and the bounded queue it is fed through."""
from __future__ import annotations

import collections
import enum
from typing import Any, Callable, Final

import gevent.event

from todopy.realtime.changes import Change

LIST_MESSAGE = "list"       # a queued change sent as a `list` message (a new title)
MEMBER_MESSAGE = "member"   # a queued change of the stream's user's own membership: acted on, never sent


class PeerGone(enum.Enum):
    """How a stream ends that is not a close code of ours: the peer closed it or vanished."""

    PEER_GONE = "the peer left"


PEER_GONE: Final = PeerGone.PEER_GONE


class Subscription:
    """One stream of one list: by list, then by todo id or predicate, the changes it is sent.

    The dispatcher never blocks on a subscriber: it appends to a bounded deque and
    wakes the stream's greenlet (yielding once when the queue fills past half, so a
    stream that keeps up can drain it); a full queue marks the subscriber as too slow.
    While the greenlet is idle, the dispatcher first tries to write the change
    itself, without waiting: the usual case costs no wake-up and no switch.
    """

    __slots__ = ("list_id", "user_id", "todo_id", "predicate", "token_hash", "limit", "queue", "wakeup",
                 "overflowed", "ending", "ping_due", "direct", "sent_rev", "list_view", "presence_frame")

    def __init__(self, list_id: str, user_id: str, *, todo_id: str | None = None, predicate: bool | None = None,
                 token_hash: bytes | None = None, limit: int = 1000,
                 list_view: dict[str, Any] | None = None) -> None:
        self.list_id = list_id
        self.user_id = user_id
        self.todo_id = todo_id
        self.predicate = predicate
        self.token_hash = token_hash
        self.limit = limit
        self.list_view = list_view or {}       # the list as this user sees it, for `list` messages
        self.queue: collections.deque[tuple[Change, str]] = collections.deque()
        self.wakeup = gevent.event.Event()
        self.overflowed = False
        # Why the stream must end, once it must: a close code of ours (shutdown, revoked access, ...) or PEER_GONE.
        self.ending: int | PeerGone | None = None
        self.ping_due = False
        # While the stream's greenlet is parked with nothing to do, the dispatcher may write a
        # change itself: `direct(change, op)` is True when it went out. Waking the greenlet
        # withdraws it, so whatever the greenlet then writes stays in order.
        self.direct: Callable[[Change, str], bool] | None = None
        self.sent_rev = 0                      # the latest rev this stream has sent
        self.presence_frame: bytes | None = None   # the latest presence message not sent yet (todopy.realtime.presence)

    def offer(self, change: Change) -> bool:
        """Queue a todo change if this stream wants it; True when the queue is half full or more."""
        if self.todo_id is not None:
            if change.todo_id != self.todo_id:
                return False
            op: str | None = change.op
        else:
            op = change.op_for(self.predicate)
        if op is None:
            return False
        return self._queue(change, op)

    def offer_title(self, change: Change) -> bool:
        """A new title of the list: list streams send it as a `list` message."""
        if self.todo_id is not None:
            return False
        return self._queue(change, LIST_MESSAGE)

    def offer_member(self, change: Change) -> bool:
        """A membership change: queued, in rev order with the rest, when it is this stream's user's."""
        if change.user_id != self.user_id:
            return False
        return self._queue(change, MEMBER_MESSAGE)

    def _queue(self, change: Change, op: str) -> bool:
        if self.overflowed:
            return False
        if self.direct is not None and self.direct(change, op):
            return False
        if len(self.queue) >= self.limit:
            self.overflowed = True
            self.queue.clear()          # it will resume with `since`; free the memory now
        else:
            self.queue.append((change, op))
        self.wake()
        return 2 * len(self.queue) >= self.limit

    def offer_presence(self, frame: bytes) -> None:
        """Who is in the list now: only the latest view matters, so it replaces one not sent yet."""
        self.presence_frame = frame
        self.wake()

    def frame(self, change: Change, op: str) -> bytes:
        return change.list_frame(self.list_view) if op == LIST_MESSAGE else change.frame(op)

    def end(self, code: int | PeerGone) -> None:
        """Ask the stream to close with `code` at its next wake-up (the first reason wins)."""
        if self.ending is None:
            self.ending = code
        self.wake()

    def request_ping(self) -> None:
        self.ping_due = True
        self.wake()

    def wake(self) -> None:
        """Wake the stream's greenlet (and take writing back from the dispatcher)."""
        self.direct = None
        self.wakeup.set()


class ListsSubscription:
    """One stream of a user's lists: woken (`stale`) when any of them, or the user's
    memberships, may have changed; the stream then reads the lists again and sends the difference."""

    __slots__ = ("user_id", "token_hash", "watched", "stale", "wakeup", "ending", "ping_due")

    def __init__(self, user_id: str, token_hash: bytes | None = None) -> None:
        self.user_id = user_id
        self.token_hash = token_hash
        self.watched: frozenset[str] = frozenset()   # the list ids it last sent
        self.stale = False
        self.wakeup = gevent.event.Event()
        self.ending: int | PeerGone | None = None
        self.ping_due = False

    def touch(self) -> None:
        self.stale = True
        self.wakeup.set()

    def end(self, code: int | PeerGone) -> None:
        if self.ending is None:
            self.ending = code
        self.wakeup.set()

    def request_ping(self) -> None:
        self.ping_due = True
        self.wakeup.set()

    def wake(self) -> None:
        self.wakeup.set()
