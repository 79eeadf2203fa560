"""Soak: the life of a busy server, checked against the change log and the server's own costs.

Two servers share one database (their own PostgreSQL cluster, so it can be restarted).
Followers stream lists from either server, closing, resuming with `since` and
leaving all the time; lists are made, shared, renamed, re-roled, unshared and deleted
while their members stream; REST writers and SQL writers (single-row and multi-row
statements) write all along; two slow consumers fall behind. A third of the way in the
ringer's process is killed (the other server takes over); two thirds in, PostgreSQL restarts.

Every follower's messages are checked against the change log (lost, duplicated, out of
order: all 0), every minute and at the end; the measured server's worker RSS must grow
less than RSS_ALLOWANCE_MIB plus RSS_BOUND_MIB_PER_HOUR per hour; once every stream is
closed its descriptors, its database connections and the lists it follows go back to what
they were before.

`make test` runs 30 s; `make soak` runs 5 minutes (SOAK_SECONDS, or --soak-seconds).
"""
from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import requests

from tests.pg import server_connections
from tests.soak import (Checked, Crowd, ListLives, Probe, Tally, check_against_log, converged, fd_kinds, latency_buckets,
                        list_path, open_fds, quantile, slope_per_hour, worker_pid)
from tests.storm import Storm
from tests.support import ServerProcess, elected, metric, new_list, open_streams_gauge, register, share, wait_for
from todopy.embedded import EmbeddedPostgres
from todopy.migrate import migrate

POOL_SIZE = 6
SERVER_ENV = {"TODOPY_POOL_SIZE": str(POOL_SIZE), "TODOPY_STREAM_QUEUE": "200", "TODOPY_LOG_LEVEL": "WARNING"}
USERS = 6                      # all of them members of the shared lists and of the lists that come and go
QUIET_USERS = 2                # each follows their own personal list many times, written to rarely
STREAMS_PER_MEMBER = 3
QUIET_STREAMS = 20
RSS_ALLOWANCE_MIB = 6.0        # allocator noise, and the one-off costs of a takeover and a reconnect
RSS_BOUND_MIB_PER_HOUR = 20.0


def report_line(elapsed: float, tally: Tally, probe: Probe, db: dict[str, int], p50: float | None,
                p99: float | None, crowd: Crowd, warm_up: float) -> str:
    rss = probe.rss[-1][1] / 1024 if probe.rss else 0.0
    slope = slope_per_hour(probe.rss_since(warm_up)) / 1024
    ms = lambda q: "-" if q is None else ("inf" if q == float("inf") else f"<={q * 1000:g}ms")  # noqa: E731
    return (f"soak t={elapsed:5.0f}s changes logged {db['log_rows']} ({db['log_bytes'] // 1024} KiB) "
            f"delivered {tally.delivered} to {tally.followers} followers: lost {tally.lost} duplicated "
            f"{tally.duplicated} out of order {tally.out_of_order} unexpected {tally.unexpected}; "
            f"worker RSS {rss:.1f} MiB ({slope:+.1f} MiB/h) fds {probe.fds[-1][1] if probe.fds else '-'}; "
            f"PostgreSQL connections {db['connections']}; write-to-send p50 {ms(p50)} p99 {ms(p99)}; "
            f"streams opened {crowd.counts['opened']} resumed {crowd.counts['resumed']} "
            f"retired {crowd.counts['retired']}")


def test_soak(tmp_path, start_server, soak_seconds):
    cluster = EmbeddedPostgres(tmp_path / "pg")      # its own, to restart
    cluster.start()
    dsn = cluster.dsn()
    migrate(dsn)
    replaced: list[ServerProcess] = []       # servers started again in place (not the fixture's to stop)
    try:
        run_soak(cluster, dsn, start_server, soak_seconds, replaced)
    finally:
        for server in replaced:
            server.stop()
        cluster.stop("immediate")


def run_soak(cluster, dsn: str, start_server, seconds: float, replaced: list[ServerProcess]) -> None:
    began = time.monotonic()
    # B first: it wins the ringer's election, and is the one killed a third of the way in.
    b = start_server(env=SERVER_ENV, database=dsn)
    wait_for(lambda: elected(b), timeout=15)
    a = start_server(env=SERVER_ENV, database=dsn)
    servers = [a, b]
    probe = Probe(a, dsn)
    fds_before = open_fds(probe.pid)
    kinds_before = fd_kinds(probe.pid)

    with ThreadPoolExecutor(2) as pool:       # two sign-ups at a time: as many as one client may run
        accounts = list(pool.map(lambda _: register(a.base_url), range(USERS + QUIET_USERS)))
    users, quiet = accounts[:USERS], accounts[USERS:]
    crowd = Crowd(servers)
    outage = threading.Event()
    storms: list[Storm] = []
    threads: list[threading.Thread] = []

    def writers(storm: Storm, rest: int, sql: int, seed: int) -> None:
        storm.outage = outage
        storms.append(storm)
        threads.extend(threading.Thread(target=storm.rest_writer, args=(seed + i,), daemon=True) for i in range(rest))
        threads.extend(threading.Thread(target=storm.sql_writer, args=(seed + 50 + i,), daemon=True)
                       for i in range(sql))

    personal = {api.user["id"]: api.get("/api/lists/").json()["lists"][0]["id"] for api in users + quiet}
    for n, owner in enumerate(users[:3]):             # shared lists: owner, two editors, a viewer
        lid = new_list(owner, f"shared {n}")["id"]
        editors = [users[(n + 1) % USERS], users[(n + 2) % USERS]]
        viewer = users[(n + 3) % USERS]
        for editor in editors:
            share(owner, lid, editor, "editor")
        share(owner, lid, viewer, "viewer")
        for member in (owner, *editors, viewer):
            for _ in range(STREAMS_PER_MEMBER):
                crowd.follow(member, lid)
        if n == 0:                                    # the busiest list, and its slow consumers
            crowd.follow(viewer, lid, slow=True)
            crowd.follow(owner, lid, slow=True)
        writers(Storm(owner, dsn, base=list_path(lid), list_id=lid, apis=[owner, *editors], pause=0.25,
                      multi_row=True), rest=2 if n == 0 else 1, sql=1, seed=100 * n)
    for n, owner in enumerate(users[3:]):             # personal lists, written by REST and SQL
        lid = personal[owner.user["id"]]
        for _ in range(STREAMS_PER_MEMBER):
            crowd.follow(owner, lid)
        writers(Storm(owner, dsn, base=list_path(lid), list_id=lid, pause=0.5, multi_row=n % 2 == 0),
                rest=1, sql=1, seed=1000 + 100 * n)
    for n, owner in enumerate(quiet):                 # many idle streams, a rare change
        lid = personal[owner.user["id"]]
        for _ in range(QUIET_STREAMS):
            crowd.follow(owner, lid)
        writers(Storm(owner, dsn, base=list_path(lid), list_id=lid, pause=3.0), rest=1, sql=0, seed=5000 + n)

    lives = ListLives(crowd, users, dsn, seconds_each=min(20.0, max(8.0, seconds / 3)), outage=outage)
    every = min(60.0, max(10.0, seconds / 3))
    warm_up = min(300.0, max(5.0, seconds / 10))
    start = time.monotonic()
    setup_s = start - began
    probe.t0 = start
    for thread in threads:
        thread.start()
    crowd.start()
    lives.start()
    probe.start()
    rows: list[str] = []
    events: list[str] = []
    took_over = restarted = False
    latency_before = latency_buckets(a)
    next_report = start + every
    tally = Tally()
    try:
        while (now := time.monotonic()) < start + seconds:
            elapsed = now - start
            if not took_over and elapsed >= seconds / 3:
                took_over = True
                crowd.down.add(1)
                events.append(ringer_takeover(b, a))
                b = servers[1] = ServerProcess(dsn, b.log_path.with_suffix(".restarted.log"), env=SERVER_ENV,
                                               port=b.port)
                replaced.append(b)
                crowd.servers = servers
                b.wait_healthy()
                crowd.down.discard(1)
            elif not restarted and elapsed >= 2 * seconds / 3:
                restarted = True
                events.append(database_restart(cluster, servers, outage))
            if now >= next_report:
                next_report += every
                latency_after = latency_buckets(a)
                tally = check_against_log(dsn, crowd.live() + retired(crowd), final=False)
                rows.append(report_line(elapsed, tally, probe, probe.database(), quantile(latency_before, latency_after, 0.5),
                                        quantile(latency_before, latency_after, 0.99), crowd, warm_up))
                print("\n" + rows[-1], flush=True)
                latency_before = latency_after
                assert tally.clean, tally
            time.sleep(0.2)
    finally:
        lives.finish()
        for storm in storms:
            storm.stop.set()
        for thread in threads:
            thread.join(30)
        crowd.finish()
        if sys.exc_info()[0] is not None:     # failing: leave no reader behind
            crowd.close_all()
            probe.finish()

    # Everything in flight delivered, then the exactly-once check up to every list's head.
    while True:
        resumed = crowd.counts["resumed"] + crowd.counts["opened"]
        crowd.settle()
        crowd.fleet.wait_quiet(seconds=0.5, timeout=60)
        crowd.slow.wait_quiet(seconds=0.5, timeout=60)
        if crowd.counts["resumed"] + crowd.counts["opened"] == resumed and \
                not any(f.stream.ended for f in crowd.live()):
            break                     # nothing (re)opened or ended meanwhile: all is in
    quiet_at = time.monotonic()
    followers = crowd.followers
    tally = check_against_log(dsn, followers, final=True)
    diverged = converged(crowd.live())
    latency_after = latency_buckets(a)
    probe.sample()
    rows.append(report_line(time.monotonic() - start, tally, probe, probe.database(),
                            quantile(latency_before, latency_after, 0.5), quantile(latency_before, latency_after, 0.99),
                            crowd, warm_up))
    problems = [p for f in followers for p in f.stream.problems]
    errors = [e for storm in storms for e in storm.errors] + lives.errors
    writes = sum(storm.writes for storm in storms)
    refused = sum(storm.refused for storm in storms)

    # After every stream has closed: nothing of them may remain in the servers.
    checked_at = time.monotonic()
    crowd.close_all()
    closed_at = time.monotonic()
    wait_for(lambda: all(open_streams_gauge(srv) == 0 for srv in servers), timeout=20)
    dispatched = [metric_of(srv, "todopy_changes_dispatched_total") for srv in servers]
    assert all(dispatched), f"no changes dispatched: {dispatched}"     # the metric is there, and counts
    write_by_sql(dsn, personal[users[3].user["id"]], 20)
    time.sleep(1.0)                   # a followed list's changes would be read within a ringer tick (ms)
    still_followed = [metric_of(srv, "todopy_changes_dispatched_total") - before for srv, before in zip(servers, dispatched)]
    for api in users + quiet:       # HTTP keep-alive connections are descriptors of the server's too
        api.http.close()
    gc.collect()                    # the writers' own sessions, with their threads gone
    time.sleep(0.5)
    fds_after = open_fds(worker_pid(a))
    connections = server_connections(dsn)
    probe.finish()

    rss = probe.rss_since(warm_up)
    slope = slope_per_hour(rss) / 1024
    window_h = (rss[-1][0] - rss[0][0]) / 3600 if len(rss) > 1 else 0.0
    fitted_growth = slope * window_h
    rss_bound = RSS_ALLOWANCE_MIB + RSS_BOUND_MIB_PER_HOUR * window_h
    summary = (f"soak summary: {seconds:.0f}s, {writes} writes ({refused} refused during the restart or by a "
               f"budget), {tally.expected} changes due to followers, {tally.delivered} delivered, lost {tally.lost}, "
               f"duplicated {tally.duplicated}, out of order {tally.out_of_order}, unexpected {tally.unexpected}, "
               f"outlived access {tally.outlived}; {tally.snapshots_instead_of_resume} resumes answered with a "
               f"snapshot; {lives.lives} list lives ({lives.interrupted} cut short by the restart); streams {crowd.counts}, "
               f"ended by the servers {crowd.ends}; events: {'; '.join(events)}; "
               f"worker RSS {rss[0][1] / 1024 if rss else 0:.1f} -> {rss[-1][1] / 1024 if rss else 0:.1f} MiB after "
               f"warm-up, slope {slope:+.1f} MiB/h (fitted growth {fitted_growth:+.2f} MiB, bound {rss_bound:.2f}); "
               f"fds {fds_before} before, {fds_after} after; PostgreSQL connections {connections}; "
               f"changes read after every stream closed {still_followed}"
               + "".join(f"\n  {example}" for example in tally.examples))
    summary += (f"\n  wall time: {setup_s:.1f}s setting up; after the soak, {quiet_at - start - seconds:.1f}s until "
                f"quiet, {checked_at - quiet_at:.1f}s checking, {closed_at - checked_at:.1f}s closing, "
                f"{time.monotonic() - closed_at:.1f}s checking what remains")
    rows.append(summary)
    print("\n" + "\n".join(rows[-2:]), flush=True)

    assert problems == [], problems[:5]
    assert crowd.fleet.failures == [] and crowd.slow.failures == [], crowd.fleet.failures + crowd.slow.failures
    assert errors == [], errors[:5]
    assert crowd.counts.get("errors", 0) == 0
    assert tally.clean, tally
    assert diverged == [], f"{len(diverged)} followers diverged from GET of their list"
    assert tally.delivered > 0 and lives.lives >= 1 and took_over and restarted
    assert fitted_growth <= rss_bound, summary
    # The pool may have filled up since (a connection each), and the worker became the ringer.
    assert fds_after <= fds_before + POOL_SIZE + 2, \
        f"descriptors leaked: {fds_before} -> {fds_after}: {kinds_before} -> {fd_kinds(worker_pid(a))}"
    assert connections <= len(servers) * (POOL_SIZE + 2), f"{connections} connections to PostgreSQL"
    assert still_followed == [0] * len(servers), "a server still follows lists after every stream closed"


def retired(crowd: Crowd) -> list:
    with crowd.lock:
        return [f for f in crowd.followers if not f.live]


def metric_of(server: ServerProcess, name: str) -> float:
    return metric(requests.get(server.base_url + "/metrics", timeout=10).text, name)


def write_by_sql(dsn: str, list_id: str, count: int) -> None:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO todos (list_id, title) SELECT %s, 'after the streams' FROM generate_series(1, %s)",
                    (list_id, count))
    conn.close()


def ringer_takeover(ringer: ServerProcess, other: ServerProcess) -> str:
    """Kill the ringer's whole process group; the other server must take over."""
    assert elected(ringer) and not elected(other), "the first server started should be the ringer"
    os.killpg(ringer.process.pid, signal.SIGKILL)
    ringer.process.wait()
    killed = time.monotonic()
    wait_for(lambda: elected(other), timeout=20, interval=0.05)
    return f"ringer killed, the other server elected after {time.monotonic() - killed:.2f}s"


def database_restart(cluster, servers: list[ServerProcess], outage: threading.Event) -> str:
    """Stop PostgreSQL for two seconds; both servers must recover by themselves."""
    outage.set()
    try:
        cluster.stop()
        time.sleep(2.0)
        cluster.start()
        restarted = time.monotonic()
        for server in servers:
            wait_for(lambda: requests_ok(server), timeout=30, interval=0.1)
        recovered = time.monotonic() - restarted
        time.sleep(1.0)               # in-flight failures settle before they count as errors again
    finally:
        outage.clear()
    return f"PostgreSQL restarted, both servers healthy {recovered:.2f}s after"


def requests_ok(server: ServerProcess) -> bool:
    try:
        return requests.get(server.base_url + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_the_soak_catches_a_lost_a_repeated_and_a_reordered_change(server, dsn):
    """The check against the change log, on a real stream of real writes, then with the client's
    record tampered with: each fault is counted."""
    alice = register(server.base_url)
    lid = alice.get("/api/lists/").json()["lists"][0]["id"]
    crowd = Crowd([server])
    follower = crowd.follow(alice, lid)
    crowd.fleet.start()
    try:
        for n in range(5):
            alice.create_todo(f"t{n}")
        wait_for(lambda: len(follower.stream.replica.revs) == 5)
    finally:
        crowd.close_all()
    assert check_against_log(dsn, [follower], final=True).clean
    revs = follower.stream.replica.revs
    for tamper, field_name in [(lambda: revs.pop(2), "lost"), (lambda: revs.insert(2, revs[1]), "duplicated"),
                               (lambda: revs.insert(3, revs[0]), "out_of_order")]:
        kept = list(revs)
        tamper()
        follower.checked = Checked()
        tally = check_against_log(dsn, [follower], final=True)
        assert getattr(tally, field_name) == 1 and not tally.clean, (field_name, tally)
        revs[:] = kept
