"""Presence: who has a list open, and which todo each is editing, on every server process.

Nothing of it touches a table. Each process knows its own list streams (and what
their clients last said they were editing); it tells the others with NOTIFY on
`todopy_presence`, heard on the dispatcher's one LISTEN connection:

- at once (coalesced over `SETTLE` seconds) for the lists whose people changed:
  someone opened or closed the list, started or stopped editing, went quiet;
- and once per beat (a third of the timeout) for every list it has people in, so
  that entries of a process that died, or a notification lost, expire: an entry
  not heard again within `timeout` seconds is dropped.

So a beat costs one notification per process per interval (more only past
NOTIFY's payload limit), however many people are present. Presence is opt-in: a
stream takes part (is shown, and is sent `presence` messages) from its client's
first presence frame on, so clients that never say one see the protocol as it
was. It counts as present while its client was heard from (any frame, pongs
included) within the timeout: a tab that vanished without a close is gone
within it; a clean close is gone at once.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
import uuid
from typing import Any, Callable, Iterable

import gevent
import gevent.event

from todopy.db import ConnectionPool
from todopy.errors import DatabaseUnavailable
from todopy.realtime import protocol
from todopy.realtime.protocol import PRESENCE_CHANNEL
from todopy.realtime.socket import Socket
from todopy.realtime.subscription import Subscription
from todopy.sqlfiles import queries

log = logging.getLogger(__name__)
PRESENCE_SQL = queries("presence")
SETTLE = 0.05                       # seconds a burst of local changes is gathered into one notification
MAX_PAYLOAD = protocol.RING_PAYLOAD_LIMIT     # a larger announcement is split
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CAN_EDIT = ("owner", "editor")

# One list's people as a process reports them: (username, the todo id they edit or None), sorted.
People = tuple[tuple[str, str | None], ...]


class Board:
    """Every process's report of every list, merged; pure (time comes in), so it has its own unit tests."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._reports: dict[tuple[str, str], tuple[float, People]] = {}   # (process, list) -> (heard, people)

    def report(self, process: str, list_id: str, people: People, now: float) -> bool:
        """A process's people in a list (none: it has nobody there now); True when the list's view may have changed."""
        key = (process, list_id)
        before = self._reports.get(key)
        if people:
            self._reports[key] = (now, people)
        else:
            self._reports.pop(key, None)
        return before is None and bool(people) or before is not None and before[1] != people

    def expire(self, now: float) -> set[str]:
        """Drop reports not heard again within the timeout; the lists whose view changed."""
        stale = [key for key, (heard, _) in self._reports.items() if now - heard > self.timeout]
        for key in stale:
            del self._reports[key]
        return {list_id for _, list_id in stale}

    def view(self, list_id: str) -> list[dict[str, Any]]:
        """Who is in the list, each once (a user may have it open in several tabs, on several processes):
        sorted by username; `editing` is a todo id when any of their tabs edits one."""
        editing: dict[str, str | None] = {}
        for (_, listed), (_, people) in self._reports.items():
            if listed == list_id:
                for username, todo in people:
                    editing[username] = editing.get(username) or todo
        return [{"username": name, "editing": editing[name]} for name in sorted(editing, key=str.lower)]


@dataclasses.dataclass(eq=False)
class Here:
    """One open list stream, as presence sees it."""

    sub: Subscription
    username: str
    socket: Socket
    editing: str | None = None
    opted: bool = False                          # its client has said a presence frame: it takes part
    sent: list[dict[str, Any]] | None = None     # the view last sent to it


def parse_client_frame(text: str, role: str) -> tuple[bool, str | None]:
    """A client's presence frame: `{"type": "presence", "editing": "<todo id>" | null}`.

    (True, todo id or None) when it is one; (False, None) for anything else, which is
    ignored as every other client frame is. A viewer edits nothing, whatever it says."""
    try:
        message = json.loads(text)
    except ValueError:
        return False, None
    if not isinstance(message, dict) or message.get("type") != "presence" or set(message) != {"type", "editing"}:
        return False, None
    editing = message["editing"]
    if editing is not None and not (isinstance(editing, str) and UUID.fullmatch(editing)):
        return False, None
    return True, editing if role in CAN_EDIT else None


class Presence:
    """This process's list streams' presence: announced to every process, merged, sent to the lists' streams."""

    def __init__(self, pool: ConnectionPool, *, timeout: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.pool = pool
        self.timeout = timeout
        self.beat = timeout / 3
        self.clock = clock
        self.process = uuid.uuid4().hex              # this process, in every announcement
        self.board = Board(timeout)
        self._here: dict[Subscription, Here] = {}
        self._announced: dict[str, People] = {}      # list -> what this process last announced of it
        self._dirty: set[str] = set()                # lists whose view may have changed
        self._wake = gevent.event.Event()
        self._greenlet: gevent.Greenlet | None = None

    # -- hooks: the streams and the listener call these --------------------------

    def join(self, sub: Subscription, username: str, socket: Socket) -> None:
        """A list stream opened: it takes part once its client says a presence frame."""
        self._here[sub] = Here(sub, username, socket)

    def leave(self, sub: Subscription) -> None:
        """A list stream ended: gone at once, on every process."""
        here = self._here.pop(sub, None)
        if here is not None and here.opted:
            self._touch(sub.list_id)

    def said(self, sub: Subscription, text: str) -> None:
        """A client's text frame (called in the event loop: must not block)."""
        here = self._here.get(sub)
        if here is None:
            return
        valid, editing = parse_client_frame(text, str(sub.list_as_seen.get("role", "")))
        if valid and (editing != here.editing or not here.opted):
            here.editing, here.opted = editing, True
            self._touch(sub.list_id)

    def heard(self, payload: str) -> None:
        """Another process's announcement, from the listener (`todopy_presence`)."""
        try:
            message = json.loads(payload)
            process, lists = message["p"], message["lists"]
            if process == self.process:
                return                                # ours: applied when sent
            now = self.clock()
            for list_id, people in lists.items():
                if self.board.report(process, list_id, tuple((name, todo) for name, todo in people), now):
                    self._dirty.add(list_id)
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("ignored a malformed presence announcement: %.200s", payload)
            return
        if self._dirty:
            self._wake.set()

    # -- the loop ------------------------------------------------------------------

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    def _touch(self, list_id: str) -> None:
        self._dirty.add(list_id)
        self._wake.set()

    def _run(self) -> None:
        last_beat = self.clock()
        while True:
            self._wake.wait(timeout=1.0)
            gevent.sleep(SETTLE)
            self._wake.clear()
            try:
                now = self.clock()
                beat = now - last_beat >= self.beat
                if beat:
                    last_beat = now
                self.tick(now, beat)
            except gevent.GreenletExit:
                raise
            except Exception:
                log.exception("presence failed; retrying at the next tick")

    def tick(self, now: float, beat: bool) -> None:
        """Announce what changed here (every list on a beat), expire what went quiet, send new views."""
        local = self._local(now)
        changed = {list_id for list_id in local.keys() | self._announced.keys()
                   if local.get(list_id, ()) != self._announced.get(list_id, ())}
        announce = set(local) | changed if beat else changed
        if announce:
            self._announce({list_id: local.get(list_id, ()) for list_id in announce})
            for list_id in announce:
                if self.board.report(self.process, list_id, local.get(list_id, ()), now):
                    self._dirty.add(list_id)
            self._announced = local
        self._dirty |= self.board.expire(now)
        self._send(self._dirty)
        self._dirty = set()

    def _local(self, now: float) -> dict[str, People]:
        """This process's people per list: streams heard from within the timeout."""
        people: dict[str, dict[str, str | None]] = {}
        for here in self._here.values():
            if not here.opted or now - here.socket.last_seen > self.timeout:
                continue                              # a vanished tab: gone before its socket is dropped
            in_list = people.setdefault(here.sub.list_id, {})
            # Made a viewer while editing: the edit cannot be saved, so it is not shown either.
            editing = here.editing if here.sub.list_as_seen.get("role") in CAN_EDIT else None
            in_list[here.username] = in_list.get(here.username) or editing
        return {list_id: tuple(sorted(users.items())) for list_id, users in people.items()}

    def _announce(self, lists: dict[str, People]) -> None:
        for payload in _payloads(self.process, lists):
            try:
                self.pool.query_one(PRESENCE_SQL["announce"], {"channel": PRESENCE_CHANNEL, "payload": payload})
            except DatabaseUnavailable as error:
                # The database is away: other processes expire our entries, and the next beat tells them again.
                log.warning("could not announce presence: %s", error.message)
                return

    def _send(self, lists: Iterable[str]) -> None:
        wanted = set(lists)
        views: dict[str, list[dict[str, Any]]] = {}
        for here in self._here.values():
            list_id = here.sub.list_id
            if not here.opted or list_id not in wanted and here.sent is not None:
                continue
            view = views.get(list_id)
            if view is None:
                view = views[list_id] = self.board.view(list_id)
            if view != here.sent:
                here.sent = view
                here.sub.offer_presence(protocol.presence(view))


def _payloads(process: str, lists: dict[str, People]) -> list[str]:
    """The announcement, in as few notifications as fit NOTIFY's payload limit."""
    payloads: list[str] = []
    chunk: dict[str, list[list[str | None]]] = {}
    size = 0
    for list_id, people in lists.items():
        entry = [[name, todo] for name, todo in people]
        entry_size = len(list_id) + len(json.dumps(entry)) + 8
        if chunk and size + entry_size > MAX_PAYLOAD:
            payloads.append(json.dumps({"p": process, "lists": chunk}, separators=(",", ":")))
            chunk, size = {}, 0
        chunk[list_id] = entry
        size += entry_size
    if chunk:
        payloads.append(json.dumps({"p": process, "lists": chunk}, separators=(",", ":")))
    return payloads
