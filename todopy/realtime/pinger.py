"""Pings every open stream once per interval, and drops the peers that stopped answering."""
from __future__ import annotations

from typing import Callable, Protocol

import gevent

from todopy.realtime.socket import Socket
from todopy.realtime.subscription import PEER_GONE, Subscriber

SLICES = 100                        # pings go out in this many bursts per ping interval


class Pinged(Protocol):
    socket: Socket
    sub: Subscriber
    ping_slice: int


class Pinger:
    """Pinging all streams at once would wake thousands of greenlets together and hold every
    change queued behind them for as long (0.5 s at 10,000 streams), so each stream has a
    slice of the interval and is visited at the same point of every interval."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval = interval
        self.clock = clock
        self._slices: list[set[Pinged]] = [set() for _ in range(SLICES)]
        self._added = 0

    def add(self, stream: Pinged) -> None:
        self._added += 1
        stream.ping_slice = self._added % SLICES
        self._slices[stream.ping_slice].add(stream)

    def discard(self, stream: Pinged) -> None:
        self._slices[stream.ping_slice].discard(stream)

    def run_forever(self) -> None:
        tick = self.clock()
        while True:
            for streams in self._slices:
                tick += self.interval / SLICES      # on a fixed schedule: a busy moment does not stretch it
                gevent.sleep(max(0.0, tick - self.clock()))
                deadline = self.clock() - 2 * self.interval
                for stream in list(streams):
                    if stream.socket.last_seen < deadline:
                        stream.sub.end(PEER_GONE)     # missed two pings: gone without a close frame
                        stream.socket.abort()
                    else:
                        stream.sub.request_ping()
