"""The ringer's role is a lease: a frozen holder loses it within 2 s, every kind of stream keeps flowing meanwhile,
and a listener blip drops the token cache.

SIGSTOP is the nasty case: the holder's kernel still answers TCP keepalives, so its
session (and any session-level lock) lives on; only a lease it must keep renewing
tells the others it has stopped.
"""
from __future__ import annotations

import os
import re
import signal
import time

import psycopg2
import requests

from tests.dbproxy import DatabaseProxy
from tests.pg import new_database
from tests.support import (LIST, Api, ServerProcess, Stream, expect_close, metric, new_list, read_until, register,
                           share, wait_for)
from tests.test_listener import LISTENER, metrics, proxy  # noqa: F401  (proxy is a fixture used here)
from tests.test_ringer import elected, ringer_of

FAILOVER_TARGET = 2.0        # docs/design.md: a stalled ringer loses its role, and streams keep flowing, within 2 s


def _timed(action, arrived) -> float:
    started = time.monotonic()
    action()
    arrived()
    return time.monotonic() - started


def test_a_frozen_ringer_loses_its_role_within_2s_and_every_kind_of_stream_keeps_flowing(start_server, postgres, sql):
    dsn = new_database(postgres, sql)        # only these two servers stand for election in it
    servers = [start_server(database=dsn), start_server(database=dsn)]
    holder = ringer_of(servers)
    survivor = next(srv for srv in servers if srv is not holder)
    frozen_ringer(dsn, holder, survivor, takes_over=True)


def test_a_cut_off_ringer_stops_claiming_the_role_within_its_lease(start_server, postgres, sql, proxy):
    """A partition, not a freeze: the holder's process runs, but its ringer connection neither answers nor
    closes (both kernels still answer keepalives). It must stop saying it rings once its lease has lapsed,
    before the other server, which deposes it, says it does: never two ringers, as seen from outside."""
    dsn = new_database(postgres, sql)
    second = DatabaseProxy(postgres.port)       # a network of its own for each server
    try:
        servers = [start_server(database=proxy.dsn(dsn)), start_server(database=second.dsn(dsn))]
        holder = ringer_of(servers)
        survivor = next(srv for srv in servers if srv is not holder)
        (proxy if holder is servers[0] else second).stall("todopy-ringer")
        cut = time.monotonic()
        seen, stepped_down = watch_ringers(servers, holder, cut)
    finally:
        proxy.unstall(), second.unstall()
        second.close()
    assert all(len(ringing) <= 1 for ringing in seen), f"two ringers claimed the role at once: {set(seen)}"
    assert stepped_down is not None and stepped_down <= 1.0 + 0.5, \
        f"the cut-off holder still claimed the role {time.monotonic() - cut:.1f}s after the cut: {set(seen)}"
    # Only the holder's old connection is cut: a fresh one of its own may win the next election.
    assert len(seen[-1]) == 1, f"no one rings after the cut: {seen[-5:]}"
    assert "stopped ringing" in holder.full_log()


def watch_ringers(servers: list[ServerProcess], holder: ServerProcess, cut: float) -> tuple[list[tuple], float | None]:
    """Who claims the role, every 50 ms for 4 s; and when the holder first did not."""
    seen, stepped_down = [], None
    while time.monotonic() - cut < 4:
        ringing = tuple(srv is holder and "holder" or "survivor" for srv in servers if elected(srv))
        seen.append(ringing)
        if stepped_down is None and "holder" not in ringing:
            stepped_down = time.monotonic() - cut
        time.sleep(0.05)
    return seen, stepped_down


def test_while_no_one_rings_every_process_reads_the_log_on_its_own(start_server, postgres, sql):
    """The survivor may not depose the frozen holder (its lease setting is a minute): todo changes,
    lists-stream changes and 4403s still flow within 2 s, from its own reading of the log."""
    dsn = new_database(postgres, sql)
    holder = start_server(database=dsn)
    ringer_of([holder])
    survivor = start_server(database=dsn, env={"TODOPY_RINGER_LEASE": "60"})
    frozen_ringer(dsn, holder, survivor, takes_over=False)
    assert "reading the change log every 1.0 s" in survivor.full_log()


def frozen_ringer(dsn: str, holder: ServerProcess, survivor: ServerProcess, *, takes_over: bool) -> None:
    """Freeze the ringing `holder` and time what `survivor`'s streams receive meanwhile."""
    alice, bob = register(survivor.base_url), register(survivor.base_url)
    shared = new_list(alice, "Shared")
    share(alice, shared["id"], bob, "editor")
    todos = Stream(survivor.ws_url, LIST, alice.token)
    lists = Stream(survivor.ws_url, "/api/lists/", alice.token)
    bobs = Stream(survivor.ws_url, f"/api/lists/{shared['id']}/todos/", bob.token)
    try:
        todos.sync()
        bobs.sync()
        assert lists.recv(10)["type"] == "snapshot"
        time.sleep(0.5)                      # the streams are followed, the ringer ticks
        os.killpg(holder.process.pid, signal.SIGSTOP)
        frozen = time.monotonic()
        try:
            # Each right after the freeze and after one another: none may wait for the frozen ringer.
            todo: dict = {}
            latencies = {
                "todo change": _timed(lambda: todo.update(alice.create_todo("after the freeze")),
                                      lambda: read_until(todos, lambda m: m.get("todo", {}).get("id") == todo["id"])),
                "lists-stream change": _timed(
                    lambda: alice.patch(f"/api/lists/{shared['id']}/", {"title": "Renamed"}),
                    lambda: read_until(lists, lambda m: m["type"] == "change" and m["list"]["title"] == "Renamed")),
                "member removal 4403": _timed(
                    lambda: alice.delete(f"/api/lists/{shared['id']}/members/{bob.user['username']}/"),
                    lambda: expect_close(bobs, 4403)),
            }
            if takes_over:
                wait_for(lambda: elected(survivor), timeout=10, interval=0.05)
                takeover = time.monotonic() - frozen
                # Under the new ringer: prompt again.
                latencies["todo change, new ringer"] = _timed(
                    lambda: todo.update(alice.create_todo("under the new ringer")),
                    lambda: read_until(todos, lambda m: m.get("todo", {}).get("id") == todo["id"]))
            else:
                latencies["todo change, later"] = _timed(
                    lambda: todo.update(alice.create_todo("later")),
                    lambda: read_until(todos, lambda m: m.get("todo", {}).get("id") == todo["id"]))
                assert not elected(survivor)
        finally:
            if not takes_over:
                os.killpg(holder.process.pid, signal.SIGCONT)
        print("\nfrozen ringer%s: %s" % (
            f", survivor elected after {takeover:.2f}s" if takes_over else " kept its role",
            ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in latencies.items())))
        slow = {name: round(seconds, 2) for name, seconds in latencies.items() if seconds > FAILOVER_TARGET}
        assert not slow, f"waited for the frozen ringer: {slow}"
        if not takes_over:
            return
        assert takeover <= FAILOVER_TARGET, f"the survivor rang only {takeover:.2f}s after the freeze"

        # Thawed, the old holder finds its session ended and stands for election again: every ring
        # (four a second at least) comes from the one backend that holds the lease, the new ringer's.
        rings = psycopg2.connect(dsn)
        try:
            rings.autocommit = True
            rings.cursor().execute("LISTEN todopy_ring")
            os.killpg(holder.process.pid, signal.SIGCONT)
            time.sleep(3)
            rings.poll()
            ringing = {notify.pid for notify in rings.notifies}
            with rings.cursor() as cur:
                cur.execute("SELECT pid FROM ringer_lease")
                (lease_pid,) = cur.fetchone()
        finally:
            rings.close()
        assert ringing == {lease_pid}, f"rings from backends {ringing} after the thaw; the lease is {lease_pid}'s"
        assert ringer_of([holder, survivor]) is survivor, "the thawed holder took the role back"
        assert requests.get(holder.base_url + "/healthz", timeout=5).status_code == 200
        # Thawed, it finds its session ended or its lease lapsed on its own clock, whichever it sees first.
        assert re.search("ringer lost the database|stopped ringing", holder.full_log())
    finally:
        os.killpg(holder.process.pid, signal.SIGCONT)      # never leave it frozen, whatever failed
        for s in (todos, lists, bobs):
            s.close()


def test_a_revoked_token_is_refused_at_once_after_a_listener_blip(server: ServerProcess, start_server, dsn, proxy):
    """The sign-out's notification is missed while the listener is away; once it is back the cache must not answer."""
    cached = start_server(database=proxy.dsn(dsn), env={"TODOPY_TOKEN_CACHE_TTL": "60"})
    alice = register(cached.base_url)
    on_cached = Api(cached.base_url, alice.token, alice.user)
    assert on_cached.get("/api/session/").status_code == 200          # resolved, and cached for a minute
    proxy.refuse(LISTENER)
    wait_for(lambda: metric(metrics(cached), "todopy_listener_up") == 0, timeout=5, interval=0.05)
    assert Api(server.base_url, alice.token).delete("/api/session/").status_code == 204   # on another process
    proxy.allow(LISTENER)
    wait_for(lambda: metric(metrics(cached), "todopy_listener_up") == 1, timeout=10, interval=0.05)
    assert on_cached.get("/api/session/").status_code == 401
