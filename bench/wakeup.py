"""The wake-up path under its two hazards: a write transaction left open, and the ringer's death.

1. held open: one user's list has a write transaction open (as a forgotten psql
   session would) for the whole probe; 100 other users' streams are timed from
   commit to frame while their lists are written at 200 writes/s. Then the held
   transaction commits, and its change must still arrive.
2. failover: two servers on a scratch database; the elected ringer's whole
   process group is killed with SIGKILL one second into a probe of 100 writes/s
   on a stream of the survivor. The worst commit-to-client time of the probe is
   how long changes waited for a new ringer (within one write interval).
"""
from __future__ import annotations

import os
import re
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg2

from bench.database import BenchUser, Database, seed_users
from bench.loadgen import StreamClient
from bench.plan import Plan
from bench.report import percentile
from bench.servers import Server, start_todopy

HELD_STREAMS = 100
HELD_RATE = 200.0
FAILOVER_RATE = 100.0
FAILOVER_KILL_AFTER = 1.0            # seconds into the probe
FAILOVER_SECONDS = 4.0               # the probe's length: the kill, an election (~0.5 s) and some more
FAILOVER_SCRATCH = "bench_failover"
ELECTED = re.compile(r"^todopy_ringer_elected(?:\{[^}]*\})? ([0-9.]+)$", re.M)
HOLD = "UPDATE todos SET title = 'held open' WHERE id = %(id)s"


def _probe(server: Server, dsn: str, users: list[BenchUser], rate: float, seconds: float, log_path: Path,
           during: Any = None) -> dict[str, Any]:
    """One ramp stage of len(users) streams probed at `rate` writes/s; `during()` runs as the probe starts."""
    spec = {"scenario": "ramp", "host": "127.0.0.1", "port": server.port, "dsn": dsn,
            "users": [[u.token, u.todo_ids[0]] for u in users], "stages": [len(users)], "probe_rate": rate,
            "probe_seconds": seconds, "connect_concurrency": 50, "deadline": 300}
    client = StreamClient(spec, log_path)
    try:
        opened = client.next("stage", timeout=120)
        client.go()
        if during is not None:
            during()
        probe = client.next("latency", timeout=seconds + 60)
        client.next("done", timeout=60)
    finally:
        client.finish()
    if opened["failed"]:
        raise RuntimeError(f"{opened['failed']} probe streams failed to open: {opened['errors']}")
    return probe


def _summary(probe: dict[str, Any]) -> dict[str, Any]:
    latencies = probe["latencies_ms"]
    return {"sent": probe["sent"], "received": probe["received"], "lost": probe["lost"], "errors": probe["errors"],
            "latency_ms": {f"p{p}": percentile(latencies, p) for p in (50, 99)} | {"max": max(latencies, default=None)}}


def held_open(server: Server, database: Database, users: list[BenchUser], seconds: float,
              log_dir: Path) -> dict[str, Any]:
    """Other lists' commit-to-client while one list's write transaction stays open."""
    holder, others = users[0], users[1:]
    held = psycopg2.connect(database.dsn, application_name="bench-held-open")
    try:
        with held.cursor() as cur:
            cur.execute(HOLD, {"id": holder.todo_ids[0]})
        opened_at = time.monotonic()
        probe = _probe(server, database.dsn, others, HELD_RATE, seconds, log_dir / "held-open.log")
        held_seconds = time.monotonic() - opened_at
        held.commit()
    finally:
        held.close()
    with database.conn.cursor() as cur:
        cur.execute("SELECT title FROM todos WHERE id = %s", (holder.todo_ids[0],))
        row = cur.fetchone()
        assert row is not None              # the holder's todo was seeded and is never deleted
        committed = row[0] == "held open"
    return {**_summary(probe), "held_seconds": round(held_seconds, 1), "held_change_committed": committed,
            "streams": len(others), "rate": HELD_RATE}


def _elected(server: Server) -> bool:
    try:
        with urllib.request.urlopen(server.base_url + "/metrics", timeout=2) as response:
            match = ELECTED.search(response.read().decode())
    except OSError:
        return False
    return bool(match and float(match.group(1)) == 1.0)


def failover(database: Database, log_dir: Path, pool_size: int) -> dict[str, Any]:
    """Kill the elected ringer mid-probe; how long the survivor's stream waited, and whether anything was lost."""
    dsn = database.scratch(FAILOVER_SCRATCH)
    conn = psycopg2.connect(dsn, application_name="bench")
    conn.autocommit = True
    try:
        users = seed_users(conn, "failover", 1, 1, "failover-secret-")
    finally:
        conn.close()
    servers = [start_todopy(dsn, log_dir, pool_size, name=f"todopy-failover-{n}") for n in (1, 2)]
    try:
        deadline = time.monotonic() + 10
        holders: list[Server] = []
        while time.monotonic() < deadline and len(holders) != 1:
            holders = [server for server in servers if _elected(server)]
            time.sleep(0.05)
        if len(holders) != 1:
            raise RuntimeError(f"expected one elected ringer, found {len(holders)}")
        holder = holders[0]
        survivor = next(server for server in servers if server is not holder)
        killed: dict[str, float] = {}

        def kill_the_ringer() -> None:
            time.sleep(FAILOVER_KILL_AFTER)
            os.killpg(holder.process.pid, signal.SIGKILL)
            killed["at"] = time.monotonic()
            while not _elected(survivor) and time.monotonic() - killed["at"] < 10:
                time.sleep(0.01)
            killed["elected"] = time.monotonic()

        probe = _probe(survivor, dsn, users, FAILOVER_RATE, FAILOVER_SECONDS, log_dir / "failover.log",
                       kill_the_ringer)
        took_over = _elected(survivor)
    finally:
        for server in servers:
            server.stop()
        database.drop(FAILOVER_SCRATCH)
    summary = _summary(probe)
    if not took_over:
        raise RuntimeError("the surviving server never became the ringer")
    return {**summary, "rate": FAILOVER_RATE, "elected_after_s": round(killed["elected"] - killed["at"], 3),
            "worst_wait_s": (summary["latency_ms"]["max"] or 0.0) / 1000.0}


def measure(server: Server, database: Database, users: list[BenchUser], plan: Plan, log_dir: Path,
            pool_size: int) -> dict[str, Any]:
    return {"held_open": held_open(server, database, users, plan.probe_seconds, log_dir),
            "failover": failover(database, log_dir, pool_size)}
