"""Changes to the subscriptions that want them, in each list's order: what the dispatcher read
from the log, or what a writer of this process handed over as it committed (todopy.realtime.dispatcher)."""
from __future__ import annotations

import gevent

from todopy.db import Row
from todopy.metrics import Metrics
from todopy.realtime.changes import Change
from todopy.realtime.protocol import Close
from todopy.realtime.registry import LIST_DELETED, Registry
from todopy.realtime.subscription import Subscription

# Changes handed to the subscriptions at a time, at most: a stream that fell behind by several
# gets them in one write (one syscall instead of one each), measured in docs/design.md
# ("The path of a change", 5). A quarter of the stream queue at most, so a stream that keeps
# up never overflows between two of the dispatcher's turns.
HAND_OVER = 32


class HandOver:
    def __init__(self, registry: Registry, metrics: Metrics, stream_queue_size: int) -> None:
        self.registry = registry
        self.metrics = metrics
        self.step = max(1, min(HAND_OVER, stream_queue_size // 4))

    def deliver(self, rows: list[Row]) -> None:
        """Hand each subscription its share of `rows` (change-log rows in each list's rev order),
        `step` changes at a time: what one stream is due from them goes in one `put` (one write
        when it is idle). `Registry.route` is the one gate: it takes only what follows the list's
        cursor, and moves it, so whichever way a change comes first it is delivered once."""
        route = self.registry.route
        step = self.step
        for start in range(0, len(rows), step):
            shares: dict[Subscription, list[tuple[Change, str]]] = {}
            changed_times = []
            for row in rows[start:start + step]:
                change = Change(row)
                changed_times.append(change.changed_time)
                for sub, op in route(change):
                    share = shares.get(sub)
                    if share is None:
                        shares[sub] = [(change, op)]
                    else:
                        share.append((change, op))
            backlog = False
            for sub, share in shares.items():
                backlog = _put(sub, share) or backlog
            self.metrics.sent_in_fan_out(changed_times)
            if backlog:
                # Let the streams write their queues out before the next changes: without
                # a turn they could not drain at all, and one bulk statement bigger than
                # the queue would close (4008) even subscribers that keep up.
                gevent.sleep(0)


def _put(sub: Subscription, share: list[tuple[Change, str]]) -> bool:
    """Put a subscription's share; a deletion of its list (always the list's last change) ends it."""
    if share[-1][1] is LIST_DELETED:
        if len(share) > 1:
            sub.put(share[:-1])
        sub.end(Close.LIST_DELETED)
        return False
    return sub.put(share)
