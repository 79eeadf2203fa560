"""The ringer: one elected process per database tells every dispatcher which lists moved.

Writers never NOTIFY: a NOTIFY in a writing transaction takes a cluster-wide lock
held through the WAL flush, so notifying commits go one at a time. Instead, every
server process runs a `Ringer`; the one holding a session advisory lock ticks. A
tick is one statement: with the snapshot it reads by (`pg_current_snapshot()`) it
finds the change-log rows of transactions that committed since the previous
tick's snapshot (PgQ's batches: xid at or past the old snapshot's xmax, or in
progress then, and visible now), and sends one NOTIFY naming each list that
moved with its head rev. A transaction that stays open never hides the others:
it is looked up by its xid until it ends, however long that takes.

Ticks are adaptive: every `min_interval` (5 ms) while changes flow. After a tick
that finds nothing the ringer arms its doorbell (sql/0014_ringer_doorbell.sql) and
sleeps until a write rings it or its lease is due, so a write at a moderate rate is
rung as it commits instead of waiting for a tick; while every tick finds changes,
nobody rings. Correctness never depends on the ringer: dispatchers also compare
head revs on a slow timer, so a lost or late ring only delays.

The role is a lease (sql/0012_ringer_lease.sql): a frozen holder keeps its session,
and so the lock, as long as its kernel answers keepalives. The holder renews the
lease four times a second (or each quarter lease, if shorter), with an empty ring
that tells listeners it is alive; a
candidate that finds the lease unrenewed past `lease` ends the lock holder's session
and is elected at its next try. Listeners that hear no ring for a while read the log
on their own meanwhile (todopy.realtime.dispatcher).

The holder fences itself on its own clock: once `FENCE` of its lease has passed since
it sent its last renewal that succeeded (its host cut off, the database unreachable,
its process frozen), its term ends at once, whatever round trip is under way. The
database's clock started the lease no earlier than that send, and a candidate waits
for the whole lease, so the holder stops claiming the role before any other process
can take it, rather than when TCP gives up on the dead connection seconds later.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import gevent
import gevent.select

from todopy import db, prepared
from todopy.errors import DatabaseUnavailable
from todopy.metrics import Metrics
from todopy.realtime.protocol import EVERYTHING, RING_CHANNEL
from todopy.sqlfiles import queries

log = logging.getLogger(__name__)
CHANGES_SQL = queries("changes")
RINGER_SQL = queries("ringer")
RINGER_LOCK = 7_401_330_002          # the session advisory lock that elects the ringer
# A new ringer rings whatever committed this recently: its predecessor may have died before ringing it.
TAKEOVER_LOOKBACK_S = 10
HELD_BACK_WARNING_S = 10             # log an open write transaction older than this
FENCE = 0.8                          # of the lease: the holder's own deadline, ahead of any candidate's
SESSION = (
    # A holder whose network vanished must lose the lock within seconds, not when the
    # kernel's default keepalive (hours) notices.
    "SET tcp_keepalives_idle = 1; SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 2;"
    " SET statement_timeout = '5s';"
    # The lease's renewals must not wait for a synchronous standby, nor for the disk: a lost
    # renewal (a crash) costs nothing, a late one would depose a healthy holder.
    " SET synchronous_commit = off;"
    # The tick's `xid >= xmax` matches only the last moments' rows, but its prepared
    # (generic) plan cannot know that: a scan of the whole log must never look cheaper
    # than the xid index. This session runs only the ringer's few queries, each with
    # an index to use.
    " SET enable_seqscan = off"
)


def since(snapshot: str) -> dict[str, Any]:
    """The ring query's parameters for what committed after `snapshot` (pg_snapshot's text,
    "xmin:xmax:xip,xip,..."): its xmax, and the xids still in progress when it was taken."""
    _, xmax, xip = snapshot.split(":")
    return {"xmax": xmax, "xip": xip.split(",") if xip else []}


class LeaseLapsed(Exception):
    """The holder's database round trip outlasted its lease: another process may ring now."""


class Ringer:
    def __init__(self, dsn: str, metrics: Metrics, *, min_interval: float = 0.005, max_interval: float = 0.02,
                 election_interval: float = 0.5, lease: float = 1.0) -> None:
        self.dsn = dsn
        self.metrics = metrics
        self.min_interval = min_interval
        # How often a sleeping ringer still ticks while a writer that may have looked before the bell
        # was armed is in progress.
        self.max_interval = max_interval
        # A candidate looks at least twice per lease: a stalled holder is replaced within 1.5 leases.
        self.election_interval = min(election_interval, lease / 2)
        self.lease = lease
        # Renewals are also the heartbeat listeners wait for (TODOPY_RING_SILENCE): at least
        # four a second, whatever the lease.
        self.renew_interval = min(0.25, lease / 4)
        self.elected = False
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run_forever)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    def _run_forever(self) -> None:
        while True:
            conn = None
            try:
                conn = db.connect(self.dsn, timeout=5, application_name="todopy-ringer")
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(SESSION)
                    while not self._elect(cur):
                        gevent.sleep(self.election_interval)
                    self._set_elected(True)
                    log.info("this process rings change notifications for the database")
                    self._ring_forever(cur)
            except LeaseLapsed:
                log.warning("the ringer could not renew its %.1f s lease in time (database unreachable or this "
                            "process stalled); this process stopped ringing and stands for election again",
                            self.lease)
            except (DatabaseUnavailable, *db.CONNECTION_ERRORS) as error:
                if self.elected:
                    log.warning("ringer lost the database (%s); another process or this one takes over",
                                db.first_line(error))
            except gevent.GreenletExit:
                raise
            except Exception:
                log.exception("ringer failed; restarting it")
            finally:
                self._set_elected(False)
                if conn is not None:
                    conn.close()         # ends the session: the lock goes with it
            gevent.sleep(self.election_interval)

    def _elect(self, cur) -> bool:
        cur.execute(RINGER_SQL["elect"], {"lock": RINGER_LOCK})
        if cur.fetchone().elected:
            return True
        cur.execute(RINGER_SQL["depose"], {"lock": RINGER_LOCK, "lease_s": self.lease})
        stalled = cur.fetchone()
        if stalled is not None and stalled.deposed:
            log.warning("the ringer (backend pid %s) has not renewed its lease for %.1f s; ended its session "
                        "to take the role over", stalled.pid, stalled.silent_s)
            cur.execute(RINGER_SQL["elect"], {"lock": RINGER_LOCK})     # its lock goes as its backend exits
            if cur.fetchone().elected:
                return True
            gevent.sleep(0.05)
            cur.execute(RINGER_SQL["elect"], {"lock": RINGER_LOCK})
            return bool(cur.fetchone().elected)
        return False

    def _renew(self, cur) -> None:
        cur.execute(RINGER_SQL["renew"])
        if not cur.fetchone().renewed:
            raise RuntimeError("the ringer's lease row is gone; standing for election again")

    def _ring_forever(self, cur) -> None:
        cur.execute(CHANGES_SQL["ring_recent"], {"seconds": TAKEOVER_LOOKBACK_S})
        first = cur.fetchone()
        snapshot = first.snapshot
        if first.recent:
            cur.execute("SELECT pg_notify(%s, %s)", (RING_CHANNEL, EVERYTHING))
        cur.execute(RINGER_SQL["listen_doorbell"])
        cur.execute(RINGER_SQL["disarm_doorbell"])      # a predecessor may have left it armed
        renewed = time.monotonic()                       # sent before the renewal it times
        self._renew(cur)
        idle = armed = in_flight = False               # idle: the last tick found nothing
        checked_held_back = time.monotonic()
        while True:
            if armed:
                # Asleep until a write rings, or the lease is due. A transaction that was in progress
                # at the tick after arming may have looked before the bell was armed: tick as usual for it.
                until_renewal = self.renew_interval - (time.monotonic() - renewed)
                self._wait_for_doorbell(cur.connection, self.max_interval if in_flight else until_renewal)
            elif not idle:
                gevent.sleep(self.min_interval)
            # else the last tick found nothing: arm at once, so that the next write rings rather than
            # waiting for a tick (at a moderate rate, every write); while every tick finds changes, none rings.
            if time.monotonic() - renewed >= self.renew_interval:
                sending = time.monotonic()
                with self._within_term(renewed):
                    self._renew(cur)
                    if armed:
                        self._arm_doorbell(cur)
                renewed = sending
            with self._within_term(renewed):
                if not armed and idle:
                    self._arm_doorbell(cur)      # before the tick that decides whether to sleep
                    armed = True
                # Prepared on the first tick: then one cheap round trip, up to 200 times a second.
                prepared.execute(cur, CHANGES_SQL["ring"], since(snapshot))
                tick = cur.fetchone()
                if armed and tick.oldest:
                    cur.execute(RINGER_SQL["disarm_doorbell"])   # awake and ticking: writers need not ring
                    armed = False
                if time.monotonic() - checked_held_back > HELD_BACK_WARNING_S:
                    checked_held_back = time.monotonic()
                    self._warn_held_back(cur)
            snapshot, oldest = tick.snapshot, tick.oldest
            in_flight = bool(since(snapshot)["xip"])
            # How long the oldest change rung this tick waited since it was written.
            self.metrics.ringer_lag_seconds.set(max(0.0, time.time() - oldest) if oldest else 0.0)
            idle = not oldest

    def _arm_doorbell(self, cur) -> None:
        """Arm the doorbell for one lease: armed again at each renewal, it lapses with the lease."""
        cur.execute(RINGER_SQL["arm_doorbell"], {"for_s": self.lease})

    def _within_term(self, renewed: float) -> gevent.Timeout:
        """A deadline for round trips: the holder's term ends `FENCE` of a lease after it sent its last
        renewal. (psycopg2 closes a connection whose green wait is interrupted: the session ends too.)"""
        remaining = renewed + FENCE * self.lease - time.monotonic()
        if remaining <= 0:
            raise LeaseLapsed()
        return gevent.Timeout(remaining, LeaseLapsed)

    def _wait_for_doorbell(self, conn, timeout: float) -> None:
        # A ring that came in with the last tick's answer is already read off the socket.
        if not conn.notifies:
            readable, _, _ = gevent.select.select([conn], [], [], max(0.0, timeout))
            if readable:
                conn.poll()
        if conn.notifies:
            conn.notifies.clear()
            self.metrics.ringer_doorbells.inc()

    def _warn_held_back(self, cur) -> None:
        cur.execute(CHANGES_SQL["oldest_writer"], {"seconds": HELD_BACK_WARNING_S})
        writer = cur.fetchone()
        if writer is not None:
            log.warning("a write transaction open for %.0f s (pid %s, user %s, application %r) holds back the "
                        "ringer's horizon; its changes reach streams only when it commits, and each tick "
                        "looks it up again", writer.seconds, writer.pid, writer.usename, writer.application_name)

    def _set_elected(self, elected: bool) -> None:
        self.elected = elected
        self.metrics.ringer_elected.set(1 if elected else 0)
