"""What one stream wants from the dispatcher, and the bounded queue it is fed through."""
from __future__ import annotations

import collections
from typing import Callable

import gevent.event

from todopy.realtime.changes import Change


class Subscription:
    """Owner, then todo id or predicate, decide which changes are queued (already as their op).

    The dispatcher never blocks on a subscriber: it appends to a bounded deque and
    wakes the stream's greenlet (yielding once when the queue fills past half, so a
    stream that keeps up can drain it); a full queue marks the subscriber as too slow.
    While the greenlet is idle, the dispatcher first tries to write the change
    itself, without waiting: the usual case costs no wake-up and no switch.
    """

    __slots__ = ("owner", "todo_id", "predicate", "token_hash", "limit", "queue", "wakeup",
                 "overflowed", "close_code", "ping_due", "direct", "sent_rev")

    def __init__(self, owner: str, *, todo_id: str | None = None, predicate: bool | None = None,
                 token_hash: bytes | None = None, limit: int = 1000) -> None:
        self.owner = owner
        self.todo_id = todo_id
        self.predicate = predicate
        self.token_hash = token_hash
        self.limit = limit
        self.queue: collections.deque[tuple[Change, str]] = collections.deque()
        self.wakeup = gevent.event.Event()
        self.overflowed = False
        self.close_code: int | None = None     # set by the hub: shutdown, revoked session, dead peer
        self.ping_due = False
        # While the stream's greenlet is parked with nothing to do, the dispatcher may write a
        # change itself: `direct(change, op)` is True when it went out. Waking the greenlet
        # withdraws it, so whatever the greenlet then writes stays in order.
        self.direct: Callable[[Change, str], bool] | None = None
        self.sent_rev = 0                      # the latest rev this stream has sent

    def offer(self, change: Change) -> bool:
        """Queue `change` if this stream wants it; True when the queue is half full or more."""
        if self.todo_id is not None:
            if change.todo_id != self.todo_id:
                return False
            op: str | None = change.op
        else:
            op = change.op_for(self.predicate)
        if op is None or self.overflowed:
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

    def end(self, code: int) -> None:
        """Ask the stream to close with `code` at its next wake-up."""
        if self.close_code is None:
            self.close_code = code
        self.wake()

    def request_ping(self) -> None:
        self.ping_due = True
        self.wake()

    def wake(self) -> None:
        """Wake the stream's greenlet (and take writing back from the dispatcher)."""
        self.direct = None
        self.wakeup.set()
