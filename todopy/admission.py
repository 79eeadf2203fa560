"""Who may open a stream: a cap per user, and descriptors kept for everything that is not a stream.

Every open stream holds a socket, one file descriptor, for as long as it lasts.
Uncapped, one user's streams can take every descriptor the process may open, and
then nothing is accepted at all: not `/healthz`, not anyone's sign-in. So each
process counts its streams, per user and in all, and refuses a handshake before
the upgrade: 429 `too_many_streams` past the user's cap, 503 `server_busy` when
only the reserve of descriptors (REST, the database, logs) would be left.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import resource
from typing import Callable, Iterator

from prometheus_client import Counter

from todopy.errors import ServerBusy, TooManyRequests

log = logging.getLogger("todopy.admission")
RETRY_AFTER = 5      # seconds: streams come and go; a client retrying sooner would only be refused again


def raise_open_files_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; the soft limit now in force.

    Service managers often start processes at 1024 open files, far below what a server
    of long-lived connections needs, while allowing more: the hard limit is the ceiling
    the administrator set, so taking it is ours to do."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY or soft >= hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as error:
        log.warning("cannot raise the open-files limit from %d to %d: %s", soft, hard, error)
        return soft
    log.info("open-files limit raised from %d to %d", soft, hard)
    return hard


class StreamAdmission:
    """Counts this process's open streams; `admit` holds one place for a stream's whole life."""

    def __init__(self, per_user: int, capacity: int, refused: Counter) -> None:
        self.per_user = per_user
        self.capacity = capacity          # streams the process may hold: its descriptors less the reserve
        self.refused = refused
        self.total = 0
        self._by_user: collections.Counter[str] = collections.Counter()

    @classmethod
    def for_descriptors(cls, per_user: int, open_files: int, reserve: int, refused: Counter) -> "StreamAdmission":
        """With `open_files` descriptors and `reserve` of them kept for the rest (at least half of them)."""
        return cls(per_user, max(open_files - reserve, open_files // 2), refused)

    @contextlib.contextmanager
    def admit(self, user_id: str) -> Iterator["Place"]:
        """A place for one of `user_id`'s streams, from before its upgrade until the stream gives it
        back (`Place.keep`), or until this block ends if nothing kept it; or a refusal."""
        if self._by_user[user_id] >= self.per_user:
            self.refused.labels("streams_per_user").inc()
            raise TooManyRequests(f"this account has the most streams one server process allows ({self.per_user});"
                                  " close some first", RETRY_AFTER, code="too_many_streams")
        if self.total >= self.capacity:
            self.refused.labels("descriptors").inc()
            raise ServerBusy("the server holds all the streams it can; reconnect later", RETRY_AFTER)
        self._by_user[user_id] += 1
        self.total += 1
        place = Place(self, user_id)
        try:
            yield place
        finally:
            if not place.kept:
                place.give_back()

    def _give_back(self, user_id: str) -> None:
        self.total -= 1
        self._by_user[user_id] -= 1
        if not self._by_user[user_id]:
            del self._by_user[user_id]


class Place:
    """One admitted stream's place. A stream outlives the request that opened it (it runs in a
    greenlet of its own after the handshake), so the stream keeps the place and gives it back
    when its connection closes."""

    __slots__ = ("_admission", "_user_id", "kept", "_held")

    def __init__(self, admission: StreamAdmission, user_id: str) -> None:
        self._admission = admission
        self._user_id = user_id
        self.kept = False
        self._held = True

    def keep(self) -> Callable[[], None]:
        """Hold the place past the admitting block; call what this returns to give it back."""
        self.kept = True
        return self.give_back

    def give_back(self) -> None:
        """Once; later calls do nothing."""
        if self._held:
            self._held = False
            self._admission._give_back(self._user_id)
