"""The write budget: changed rows per user, as a token bucket kept by each server process.

Every changed row is a row of the change log, kept for the retention period, so
one user looping toggle-all on a full list would grow the log without bound. A
user starts with `burst` rows and earns `rate` more per second, up to `burst`. A
write is let in while the bucket is not empty and pays afterwards for the rows it
changed (a toggle-all of 5,000 todos may leave the bucket in debt); while it is
empty, writes are refused with 429 `slow_down` and a `Retry-After` saying when one
will be let in again. Reads are never counted.
"""
from __future__ import annotations

import math
import time
from typing import Callable

from prometheus_client import Counter

from todopy.errors import TooManyRequests

# Users whose bucket is full again are forgotten, whenever more than this many are kept.
FORGET_ABOVE = 10_000


class WriteBudget:
    """Per-user buckets of changed rows; `check` before a write, `spend` after it."""

    def __init__(self, burst: int, rate: float, refused: Counter,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = float(burst)
        self.rate = rate
        self.refused = refused
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}     # user id -> (rows left, when)

    def check(self, user_id: str) -> None:
        """Let the write in, or refuse it (429 slow_down) while the user's bucket is empty."""
        left = self._left(user_id, self.clock())
        if left >= 1:
            return
        self.refused.inc()
        wait = max(1, math.ceil((1 - left) / self.rate))
        raise TooManyRequests(f"too many changes at once; this account may write again in {wait} s",
                              wait, code="slow_down")

    def spend(self, user_id: str, rows: int) -> None:
        """A write of the user's changed `rows` rows."""
        if rows <= 0:
            return
        now = self.clock()
        self._buckets[user_id] = (self._left(user_id, now) - rows, now)
        if len(self._buckets) > FORGET_ABOVE:
            self._forget_full(now)

    def _left(self, user_id: str, now: float) -> float:
        left, when = self._buckets.get(user_id, (self.burst, now))
        return min(self.burst, left + (now - when) * self.rate)

    def _forget_full(self, now: float) -> None:
        full = [user for user, (left, when) in self._buckets.items()
                if left + (now - when) * self.rate >= self.burst]
        for user in full:
            del self._buckets[user]
