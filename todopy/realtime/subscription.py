"""What one stream wants from the dispatcher, and the bounded queue it is fed through."""
from __future__ import annotations

import collections

import gevent.event

from todopy.realtime.changes import Change


class Subscription:
    """Owner, then todo id or predicate, decide which changes are queued (already as their op).

    The dispatcher never blocks on a subscriber: it appends to a bounded deque and
    wakes the stream's greenlet (yielding once when the queue fills past half, so a
    stream that keeps up can drain it); a full queue marks the subscriber as too slow.
    """

    __slots__ = ("owner", "todo_id", "predicate", "token_hash", "limit", "queue", "wakeup",
                 "overflowed", "close_code", "ping_due")

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
        if len(self.queue) >= self.limit:
            self.overflowed = True
            self.queue.clear()          # it will resume with `since`; free the memory now
        else:
            self.queue.append((change, op))
        self.wakeup.set()
        return 2 * len(self.queue) >= self.limit

    def end(self, code: int) -> None:
        """Ask the stream to close with `code` at its next wake-up."""
        if self.close_code is None:
            self.close_code = code
        self.wakeup.set()

    def request_ping(self) -> None:
        self.ping_due = True
        self.wakeup.set()
