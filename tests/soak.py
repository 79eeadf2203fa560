"""The soak's cast: clients that follow lists through disconnections, lists that live and die,
and the probe that watches the server; tests/test_soak.py runs them together.

A `Follower` is one client keeping one list on screen: its stream is closed, resumed
with `since` (on either server), or retired, all the time. What every follower was sent
is checked against the change log (`tests.pg.logged_revs`): nothing lost, nothing twice,
nothing out of order.
"""
from __future__ import annotations

import bisect
import os
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable
from pathlib import Path

import requests
import websocket

from tests.fleet import Fleet, FleetStream
from tests.pg import change_log_size, logged_revs, server_connections
from tests.storm import Storm
from tests.support import Api, ServerProcess, by_id

ACCESS_ENDED = (4403, 4404)        # close codes after which a client drops the list


def list_path(list_id: str) -> str:
    return f"/api/lists/{list_id}/todos/"


@dataclass
class Follower:
    """One client following one list, across as many connections as it takes."""

    api: Api
    list_id: str
    stream: FleetStream
    fleet: Fleet
    start: int                             # the rev of its first snapshot
    retired: str | None = None             # why it stopped for good
    failed_resumes: int = 0
    checked: "Checked" = field(default_factory=lambda: Checked())

    @property
    def live(self) -> bool:
        return self.retired is None


class Crowd:
    """Opens, closes, resumes and retires followers on any of the servers, in one background thread."""

    def __init__(self, servers: list[ServerProcess], seed: int = 1, churn_per_second: float = 4.0) -> None:
        self.servers = servers
        self.down: set[int] = set()            # indexes of servers known to be away (a restart)
        self.fleet = Fleet(servers[0].ws_url, ends_ok=True)
        # Slow consumers: read 20 messages a second at most, through a small receive buffer.
        self.slow = Fleet(servers[0].ws_url, ends_ok=True, pace=0.05,
                          sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
        self.followers: list[Follower] = []
        self.rng = random.Random(seed)
        self.churn_per_second = churn_per_second
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.counts = {"opened": 0, "closed": 0, "resumed": 0, "retired": 0, "resume_failures": 0,
                       "open_failures": 0}
        self.wanted: list[tuple[Api, str, bool]] = []   # followers to open (replacing those that left)
        self.ends: dict[int | str, int] = {}  # streams the server ended (or lost), by close code
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _ws_url(self) -> str:
        up = [i for i in range(len(self.servers)) if i not in self.down] or [0]
        return self.servers[self.rng.choice(up)].ws_url

    def follow(self, api: Api, list_id: str, *, slow: bool = False) -> Follower:
        fleet = self.slow if slow else self.fleet
        stream = fleet.open(api.token, list_path(list_id), ws_url=self._ws_url())
        follower = Follower(api, list_id, stream, fleet, stream.replica.rev)
        with self.lock:
            self.followers.append(follower)
            self.counts["opened"] += 1
        return follower

    def start(self) -> None:
        self.fleet.start()
        self.slow.start()
        self._thread.start()

    def finish(self) -> None:
        """Stop churning; the followers stay open (for the final check)."""
        self.stop.set()
        self._thread.join(60)

    def close_all(self) -> None:
        for fleet in (self.fleet, self.slow):
            fleet.close_many([f.stream for f in self.live() if f.fleet is fleet])
        self.fleet.stop()
        self.slow.stop()

    def settle(self) -> None:
        """After the churn stopped: resume or retire what ended meanwhile, as a client would;
        the slow consumers catch up."""
        self.slow.pace = 0.0
        for _ in range(20):
            self._open_wanted()
            ended = [f for f in self.live() if f.stream.ended is not None]
            if not ended and not self.wanted:
                return
            for follower in ended:
                self._after_end(follower)
            time.sleep(0.5)

    def live(self) -> list[Follower]:
        with self.lock:
            return [f for f in self.followers if f.live]

    def _run(self) -> None:
        while not self.stop.wait(1.0 / self.churn_per_second):
            try:
                self._turn()
            except Exception as error:  # noqa: BLE001 - one bad turn must not end the churn; reported
                with self.lock:
                    self.counts.setdefault("errors", 0)
                    self.counts["errors"] += 1
                print(f"crowd: {error!r}")

    def _turn(self) -> None:
        for follower in self.live():
            if follower.stream.ended is not None:
                self._after_end(follower)
        live = [f for f in self.live() if f.stream.ended is None]
        if not live:
            return
        follower = self.rng.choice(live)
        roll = self.rng.random()
        follower.fleet.close(follower.stream)
        self.counts["closed"] += 1
        if roll < 0.7:
            self._resume(follower)                 # back a moment later, with since
        else:
            follower.retired = "left"              # gone for good; someone else opens the list
            self.counts["retired"] += 1
            self.wanted.append((follower.api, follower.list_id, follower.fleet is self.slow))
        self._open_wanted()

    def _open_wanted(self) -> None:
        """Open the followers that replace those that left (a handshake refused now is tried again later)."""
        wanted, self.wanted = self.wanted, []
        for api, list_id, slow in wanted:
            try:
                self.follow(api, list_id, slow=slow)
            except websocket.WebSocketBadStatusException as error:
                if error.status_code != 404:       # 404: the list is gone meanwhile, nobody to replace
                    self.wanted.append((api, list_id, slow))
                    self.counts["open_failures"] += 1
            except (OSError, websocket.WebSocketException):
                self.wanted.append((api, list_id, slow))
                self.counts["open_failures"] += 1

    def _after_end(self, follower: Follower) -> None:
        if follower.stream.ended != "closed by client" and not follower.failed_resumes:
            why = follower.stream.close_code or "connection lost"
            self.ends[why] = self.ends.get(why, 0) + 1
        if follower.stream.ended == "closed by client":
            self._resume(follower)                 # a resume that failed before
        elif follower.stream.close_code in ACCESS_ENDED:
            follower.retired = f"closed {follower.stream.close_code}"
            self.counts["retired"] += 1
        else:
            self._resume(follower)                 # 1001, 1011, 4008, a lost connection: resume

    def _resume(self, follower: Follower) -> None:
        try:
            follower.fleet.resume(follower.stream, self._ws_url())
            self.counts["resumed"] += 1
            follower.failed_resumes = 0
        except websocket.WebSocketBadStatusException as error:
            if error.status_code == 404:           # access ended before the close reached us
                follower.retired = "refused 404"
                self.counts["retired"] += 1
            else:
                self._resume_failed(follower)
        except (OSError, websocket.WebSocketException):
            self._resume_failed(follower)

    def _resume_failed(self, follower: Follower) -> None:
        follower.failed_resumes += 1
        self.counts["resume_failures"] += 1


@dataclass
class Tally:
    """What followers were sent, checked against the change log."""

    followers: int = 0
    delivered: int = 0
    expected: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    unexpected: int = 0
    outlived: int = 0              # streams still open after their user's access ended
    snapshots_instead_of_resume: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.out_of_order or self.unexpected or self.outlived)

    def add(self, other: "Tally") -> None:
        for name in ("delivered", "expected", "lost", "duplicated", "out_of_order", "unexpected"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.examples.extend(other.examples[:5 - len(self.examples)])


@dataclass
class Checked:
    """How far one follower has been checked: the next check starts there (an hour's soak checks
    every minute, and a follower's whole history each time would not keep up)."""

    index: int = 0                 # revs of the follower's replica checked so far
    upto: float = 0                # the log checked through this rev
    last: int | None = None        # the last rev checked (for order across checks)
    tally: Tally = field(default_factory=Tally)


def check_against_log(dsn: str, followers: list[Follower], *, final: bool) -> Tally:
    """Each follower's revs against its list's log, up to where it is now (or, when `final`,
    up to the list's head or the end of its access): the exactly-once promise, counted."""
    # What each follower has is taken before the log is read: all of it was committed by then.
    taken = [(f, list(f.stream.replica.revs), list(f.stream.replica.skipped), f.retired, f.stream.ended)
             for f in followers]
    log = logged_revs(dsn, sorted({f.list_id for f in followers}))
    due = {list_id: [rev for rev, who in entries if who is None] for list_id, entries in log.items()}
    due_sets = {list_id: set(revs) for list_id, revs in due.items()}
    total = Tally(followers=len(followers))
    for f, delivered, skipped, retired, ended in taken:
        position = max([f.start, *delivered[-1:], *(high for _, high in skipped)])
        access_end = next((rev for rev, who in log[f.list_id] if who is not None and rev > f.start
                           and who in ("*", f.api.user["id"])), None)
        if final and retired is None and access_end is not None and ended is None:
            total.outlived += 1
        if final and retired is None:
            upto: float = access_end - 1 if access_end is not None else float("inf")
        else:
            # Up to where it is: in rev order, all before must have come. (A stream cut short by the
            # end of its access may drop what was queued: the client drops the list anyway.)
            upto = position
        if access_end is not None:
            upto = min(upto, access_end - 1)
        checked = f.checked
        new = delivered[checked.index:]
        revs = due[f.list_id]
        window = revs[bisect.bisect_right(revs, max(f.start, checked.upto)):bisect.bisect_right(revs, upto)]
        expected = [rev for rev in window if not any(low < rev <= high for low, high in skipped)]
        seen = set(new)
        lost = [rev for rev in expected if rev not in seen]
        logged = due_sets[f.list_id]
        unexpected = [rev for rev in seen if rev not in logged or access_end is not None and rev > access_end]
        previous = [checked.last] if checked.last is not None else []
        sequence = previous + new
        part = Tally(delivered=len(new), expected=len(expected), lost=len(lost),
                     duplicated=sum(1 for a, b in zip(sequence, sequence[1:]) if b == a),
                     out_of_order=sum(1 for a, b in zip(sequence, sequence[1:]) if b < a),
                     unexpected=len(unexpected))
        if lost or unexpected:
            part.examples.append(f"list {f.list_id} since {f.start} ({retired or 'live'}, "
                                 f"{'slow, ' if f.fleet.pace or f.fleet.sockopt else ''}ended {ended}, "
                                 f"on {f.stream.url}, {f.stream.connections} connections, at {position}): "
                                 f"lost {lost[:5]}, unexpected {sorted(unexpected)[:5]}")
        checked.tally.add(part)
        checked.index, checked.last = len(delivered), (delivered[-1] if delivered else checked.last)
        checked.upto = max(checked.upto, upto)
        total.add(checked.tally)
        total.snapshots_instead_of_resume += len(skipped)
    return total


def converged(followers: list[Follower]) -> list[str]:
    """Live followers whose copy differs from the list read over REST now (when all is quiet)."""
    reads: dict[str, dict] = {}
    diverged = []
    for f in followers:
        if not f.live:
            continue
        if f.list_id not in reads:
            response = f.api.get(list_path(f.list_id))
            assert response.status_code == 200, response.text
            reads[f.list_id] = by_id(response.json()["todos"])
        if f.stream.replica.todos != reads[f.list_id]:
            diverged.append(f.list_id)
    return diverged


class ListLives:
    """Lists made, shared, renamed, re-roled, unshared and deleted while their members stream and write."""

    def __init__(self, crowd: Crowd, users: list[Api], dsn: str, seconds_each: float, outage: threading.Event,
                 seed: int = 2) -> None:
        self.crowd, self.users, self.dsn = crowd, users, dsn
        self.outage = outage               # set during a database restart: failures then are expected
        self.seconds_each = seconds_each
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.lives = 0
        self.interrupted = 0                   # lives cut short by the database restart
        self.errors: list[str] = []
        self._current: str | None = None       # the living list's id, and its owner
        self._owner: Api | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        self.stop.set()
        self._thread.join(120)

    def _run(self) -> None:
        while not self.stop.is_set():
            self._current: str | None = None
            try:
                self._one_life(self.lives)
                self.lives += 1
            except Exception as error:  # noqa: BLE001 - reported by the test
                if not self.outage.is_set():
                    self.errors.append(repr(error))
                self.interrupted += 1
                self._clean_up()
                self.stop.wait(1)

    def _pause(self, share_of_life: float) -> None:
        self.stop.wait(self.seconds_each * share_of_life)

    def _one_life(self, n: int) -> None:
        owner, editor, viewer, leaver = self.rng.sample(self.users, 4)
        created = polite(lambda: owner.post("/api/lists/", {"title": f"soak life {n}"}))
        assert created.status_code == 201, created.text
        lid = created.json()["id"]
        self._current, self._owner = lid, owner
        for member, role in ((editor, "editor"), (viewer, "viewer"), (leaver, "viewer")):
            added = polite(lambda: owner.put(f"/api/lists/{lid}/members/{member.user['username']}/", {"role": role}))
            assert added.status_code == 201, added.text
        for api in (owner, editor, viewer, viewer, leaver):
            self.crowd.follow(api, lid)
        storm = Storm(owner, self.dsn, base=list_path(lid), list_id=lid, apis=[owner, editor], pause=0.2,
                      multi_row=True)
        storm.outage = self.outage
        threads = [threading.Thread(target=storm.rest_writer, args=(1000 + n,), daemon=True),
                   threading.Thread(target=storm.sql_writer, args=(2000 + n,), daemon=True)]
        for thread in threads:
            thread.start()
        try:
            self._pause(0.2)
            self._expect(polite(lambda: owner.patch(f"/api/lists/{lid}/", {"title": f"renamed {n}"})), 200)
            self._pause(0.15)
            self._expect(polite(lambda: owner.put(f"/api/lists/{lid}/members/{viewer.user['username']}/", {"role": "editor"})), 200)
            self._expect(polite(lambda: editor.patch(f"/api/lists/{lid}/", {"title": f"renamed again {n}"})), 200)
            self._pause(0.15)
            self._expect(polite(lambda: owner.put(f"/api/lists/{lid}/members/{viewer.user['username']}/", {"role": "viewer"})), 200)
            self._expect(polite(lambda: owner.delete(f"/api/lists/{lid}/members/{leaver.user['username']}/")), 204)   # unshared
            self._pause(0.2)
            self._expect(polite(lambda: viewer.delete(f"/api/lists/{lid}/members/{viewer.user['username']}/")), 204)  # leaves
            self._pause(0.2)
        finally:
            storm.stop.set()
            for thread in threads:
                thread.join(30)
        self._expect(polite(lambda: owner.delete(f"/api/lists/{lid}/")), 204)
        self.errors.extend(storm.errors)
        self._pause(0.1)

    def _clean_up(self) -> None:
        """A life cut short still ends with its list deleted (its followers then close with 4404)."""
        deadline = time.monotonic() + 60
        while self._current is not None and self._owner is not None and time.monotonic() < deadline:
            try:
                if self._owner.delete(f"/api/lists/{self._current}/").status_code in (204, 404):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)

    def _expect(self, response: requests.Response, status: int) -> None:
        """The status a life's step must get (a 503 while the database restarts is expected)."""
        if response.status_code != status and not (self.outage.is_set() and response.status_code == 503):
            self.errors.append(f"{response.request.method} {response.request.path_url}: "
                               f"{response.status_code} {response.text[:200]}")


def polite(request: Callable[[], requests.Response], patience: float = 300.0) -> requests.Response:
    """A request sent again after the wait a 429 asks for, as a client must: the owner and the editor
    also write in bulk, so over an hour their write budget (docs/api.md, Limits) is sometimes spent,
    and a refill may go to their other writes first."""
    deadline = time.monotonic() + patience
    response = request()
    while response.status_code == 429 and time.monotonic() < deadline:
        time.sleep(float(response.headers.get("Retry-After", "1")))
        response = request()
    return response


# -- the probe: what the server costs ----------------------------------------------------------

BUCKET = re.compile(r'^todopy_write_to_send_seconds_bucket\{[^}]*le="([^"]+)"[^}]*\} ([0-9.e+-]+)$', re.M)


def latency_buckets(server: ServerProcess) -> dict[float, float]:
    """The write-to-send histogram's cumulative counts by upper bound (summed over workers)."""
    text = requests.get(server.base_url + "/metrics", timeout=10).text
    buckets: dict[float, float] = {}
    for le, value in BUCKET.findall(text):
        bound = float("inf") if le == "+Inf" else float(le)
        buckets[bound] = buckets.get(bound, 0.0) + float(value)
    return buckets


def quantile(before: dict[float, float], after: dict[float, float], q: float) -> float | None:
    """The upper bound of the bucket holding the q-quantile of what was observed between two scrapes."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return None
    for bound, count in zip(bounds, counts):
        if count >= q * counts[-1]:
            return bound
    return bounds[-1]


def worker_pid(server: ServerProcess) -> int:
    master = server.process.pid
    return int(Path(f"/proc/{master}/task/{master}/children").read_text().split()[0])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def fd_kinds(pid: int) -> dict[str, int]:
    """What a process's descriptors are, counted by kind (socket, pipe, anon_inode:[eventfd], a file...)."""
    kinds: dict[str, int] = {}
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        kind = target.split(":")[0] if target.startswith(("socket:", "pipe:")) else target
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def slope_per_hour(samples: list[tuple[float, float]]) -> float:
    """The least-squares slope of (seconds, value) samples, per hour."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in samples) / var * 3600


class Probe:
    """Samples one server's worker (RSS, descriptors) and the database every few seconds."""

    def __init__(self, server: ServerProcess, dsn: str, every: float = 2.0) -> None:
        self.server, self.dsn, self.every = server, dsn, every
        self.pid = worker_pid(server)
        self.t0 = time.monotonic()
        self.rss: list[tuple[float, float]] = []       # (seconds since t0, KiB)
        self.fds: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        self.stop.set()
        self._thread.join(10)

    def sample(self) -> None:
        now = time.monotonic() - self.t0
        assert worker_pid(self.server) == self.pid, "the worker was replaced: it died"
        self.rss.append((now, rss_kib(self.pid)))
        self.fds.append((now, open_fds(self.pid)))

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                self.sample()
            except (OSError, ValueError):
                pass

    def rss_since(self, seconds: float) -> list[tuple[float, float]]:
        return [(t, v) for t, v in self.rss if t >= seconds]

    def database(self) -> dict[str, int]:
        rows, size = change_log_size(self.dsn)
        return {"connections": server_connections(self.dsn), "log_rows": rows, "log_bytes": size}
