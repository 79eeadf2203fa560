"""One LISTEN connection per process, fanning each notification out to the streams of its user in memory."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import asyncpg

CHANNEL = "peer_todos"
QUEUE_SIZE = 1000            # messages one stream may have waiting, as todopy's TODOPY_STREAM_QUEUE

log = logging.getLogger("peer.hub")


@dataclass(eq=False)
class Subscription:
    """One stream's queue of (todo id, rev, message); `overflowed` once a slow reader fell QUEUE_SIZE behind."""

    user: str
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)


class Hub:
    def __init__(self) -> None:
        self._by_user: dict[str, set[Subscription]] = {}
        self._conn: asyncpg.Connection | None = None

    async def start(self, dsn: str) -> None:
        self._conn = await asyncpg.connect(dsn)
        await self._conn.add_listener(CHANNEL, self._on_notify)

    async def stop(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    def subscribe(self, user: str) -> Subscription:
        subscription = Subscription(user)
        self._by_user.setdefault(user, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._by_user.get(subscription.user)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._by_user[subscription.user]

    def _on_notify(self, conn: asyncpg.Connection, pid: int, channel: str, payload: str) -> None:
        # "<user> <todo id> <rev> <message>" (schema.sql): routed without decoding the message.
        user, todo_id, rev, message = payload.split(" ", 3)
        item = (todo_id, int(rev), message)
        for subscription in self._by_user.get(user, ()):
            try:
                subscription.queue.put_nowait(item)
            except asyncio.QueueFull:
                subscription.overflowed.set()
