"""A PostgreSQL failover under a write storm: a primary, a synchronous streaming standby, and a promotion.

Run as `python -m tests.cluster.failover` (`make test-cluster`). PostgreSQL's own
tools do the work (pg_basebackup, synchronous replication, `pg_ctl promote`); the
servers' DATABASE_URL names both (libpq multi-host, target_session_attrs=read-write).
With writes flowing, the primary is stopped hard and the standby promoted. Shown,
one PASS/FAIL line each: REST answers 503 for a moment and then works; every
acknowledged write is still there (synchronous commit); streams end up exactly
right, resuming with `since` where they were closed; one process rings on the new
primary; the outage and the time streams took to catch up after the promotion.
"""
from __future__ import annotations

import os
import pwd
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

from tests.cluster.common import Cleanup, Report, Server, Writers, serve, start_database, verdict
from tests.fleet import Fleet, FleetStream
from tests.support import LIST, Api, free_port, register
from todopy.embedded import SUPERUSER, SYSTEM_USER, EmbeddedPostgres
from todopy.migrate import migrate

SERVERS = 2
STREAMS_PER_SERVER = 8
CATCH_UP_TARGET = 5.0          # streams caught up within 5 s of the promotion


def main() -> int:
    report = Report("failover")
    cleanup = Cleanup()
    work = Path(tempfile.mkdtemp(prefix="todopy-failover-"))
    cleanup.add("work directory", lambda: shutil.rmtree(work, ignore_errors=True))
    try:
        primary = start_database(work / "primary", hba=("host replication all 127.0.0.1/32 scram-sha-256",))
        cleanup.add("primary", lambda: primary.stop("immediate"))
        migrate(primary.dsn())
        standby = start_standby(primary, work / "standby", cleanup)
        password = primary.password_file.read_text().strip()
        dsn = (f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/todopy"
               "?target_session_attrs=read-write&connect_timeout=2")
        servers = [Server(f"server{i}", dsn, "127.0.0.1", free_port(), work) for i in range(SERVERS)]
        serve(servers, cleanup)
        prove(report, servers, primary, standby)
    finally:
        cleanup.run()
    return report.exit_status()


def start_standby(primary: EmbeddedPostgres, data_dir: Path, cleanup: Cleanup) -> EmbeddedPostgres:
    """A streaming standby of `primary` made by pg_basebackup, then made its synchronous standby."""
    owner = pwd.getpwnam(SYSTEM_USER) if os.geteuid() == 0 else None
    data_dir.mkdir(mode=0o700)
    if owner is not None:
        os.chown(data_dir, owner.pw_uid, owner.pw_gid)
    password = primary.password_file.read_text().strip()
    source = f"host=127.0.0.1 port={primary.port} user={SUPERUSER} password={password} application_name=standby1"
    primary.run("pg_basebackup", "-d", source, "-D", str(data_dir), "-X", "stream", "-c", "fast", "-R")
    standby = EmbeddedPostgres(data_dir)
    cleanup.add("standby", lambda: standby.stop("immediate"))
    standby.start()
    conn = psycopg2.connect(primary.dsn())
    conn.autocommit = True
    try:
        make_synchronous(conn.cursor())
    finally:
        conn.close()
    return standby


def make_synchronous(cur) -> None:
    """Wait until the standby streams, then make it synchronous."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        cur.execute("SELECT state FROM pg_stat_replication WHERE application_name = 'standby1'")
        row = cur.fetchone()
        if row and row[0] == "streaming":
            break
        time.sleep(0.1)
    else:
        raise RuntimeError("the standby never streamed")
    # From now on a commit returns only once the standby has it on disk: the failover loses none.
    cur.execute("ALTER SYSTEM SET synchronous_standby_names = 'standby1'")
    cur.execute("SELECT pg_reload_conf()")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        cur.execute("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'")
        if cur.fetchone()[0] == "sync":
            return
        time.sleep(0.1)
    raise RuntimeError("the standby never became synchronous")


def prove(report: Report, servers: list[Server], primary: EmbeddedPostgres, standby: EmbeddedPostgres) -> None:
    alice = register(servers[0].base_url)
    fleets = [Fleet(server.ws_url) for server in servers]
    for fleet in fleets:
        for _ in range(STREAMS_PER_SERVER):
            fleet.open(alice.token)
        fleet.start()
    writers = Writers(alice.token, servers)
    try:
        writers.start()
        time.sleep(1.5)
        stopped = time.monotonic()
        primary.stop("immediate")                  # the primary's host is gone: no clean shutdown
        # Half the clients lose their connection with it (say, their network blipped too): they
        # come back once the API answers again, each resuming from its own replica's rev.
        dropped = [(n, stream) for n, fleet in enumerate(fleets) for stream in fleet.streams[:STREAMS_PER_SERVER // 2]]
        for n, stream in dropped:
            fleets[n].abandon(stream)
        primary_gone = time.monotonic()
        standby.run("pg_ctl", "-D", str(standby.data_dir), "promote", "-w", "-t", "60")
        promoted = time.monotonic()
        report.note(f"primary stopped in {primary_gone - stopped:.2f}s, standby promoted "
                    f"{promoted - primary_gone:.2f}s later")
        # A marker written as soon as REST works again: every stream must get it.
        marker = None
        while time.monotonic() - promoted < 30 and marker is None:
            response = Api(servers[0].base_url, alice.token).post(LIST, {"title": "after the promotion"})
            if response.status_code == 201:
                marker = response.json()
            else:
                time.sleep(0.05)
        rest_back = time.monotonic() - promoted
        for n, stream in dropped:
            target = fleets[(n + 1) % len(fleets)]
            target.open(alice.token, f"{LIST}?since={stream.replica.rev}", replica=stream.replica)
            target.resumed += 1
        caught_up = wait_caught_up(fleets, servers, alice.token, marker, promoted)
        time.sleep(1.0)
        writers.finish()
        refused = [moment for moment in writers.unavailable if moment >= stopped]
        report.check("REST answers 503 briefly, then works", marker is not None and writers.statuses[201] > 0,
                     f"writes refused {len(refused)} times ({dict(writers.statuses)}); REST wrote again "
                     f"{rest_back:.2f}s after the promotion, {rest_back + promoted - stopped:.2f}s after the "
                     f"primary stopped")
        report.check("streams caught up", caught_up is not None and caught_up <= CATCH_UP_TARGET,
                     f"every stream had the first write after the promotion {caught_up:.2f}s after it"
                     if caught_up is not None else "some stream never caught up")
        ringing = [server.name for server in servers if server.rings(2)]
        deadline = time.monotonic() + 5
        while len(ringing) != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
            ringing = [server.name for server in servers if server.rings(2)]
        report.check("ringer re-elected on the new primary", len(ringing) == 1, f"ringing: {ringing}")
        for fleet in fleets:
            fleet.wait_quiet(1.0)
        resume_closed(fleets, servers, alice.token)
        for fleet in fleets:
            fleet.wait_quiet(1.0)
        truth = Api(servers[0].base_url, alice.token).list_todos()["todos"]
        report.check("streams resume exactly with since", sum(fleet.resumed for fleet in fleets) >= len(dropped),
                     f"{len(dropped)} dropped at the failover and {sum(fleet.resumed for fleet in fleets) - len(dropped)}"
                     " closed by a server resumed with since (exactness: the checks below)")
        verdict(report, fleets, truth, writers.acked)
    finally:
        writers.finish()
        for fleet in fleets:
            fleet.stop()


def resume_closed(fleets: list[Fleet], servers: list[Server], token: str) -> None:
    """Streams the server closed (not those whose replica caught a broken promise) resume with `since`."""
    for n, fleet in enumerate(fleets):
        for stream in list(fleet.streams):
            if stream.close_code is None and not stream.problems:
                continue
            if any("duplicate" in problem or "disorder" in problem for problem in stream.problems):
                continue              # a broken promise: the verdict must see it
            fleet.abandon(stream)
            target = fleets[(n + 1) % len(fleets)]
            try:
                target.open(token, f"{LIST}?since={stream.replica.rev}", replica=stream.replica)
                target.resumed += 1
            except Exception as error:        # the database may still be away: keep it, try again later
                stream.problems.append(f"resume failed: {error!r}")
                fleet.streams.append(stream)


def wait_caught_up(fleets: list[Fleet], servers: list[Server], token: str, marker: dict | None,
                   promoted: float) -> float | None:
    if marker is None:
        return None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        resume_closed(fleets, servers, token)
        streams: list[FleetStream] = [stream for fleet in fleets for stream in fleet.streams]
        if all(marker["id"] in stream.replica.todos for stream in streams):
            return time.monotonic() - promoted
        time.sleep(0.05)
    return None


if __name__ == "__main__":
    sys.exit(main())
