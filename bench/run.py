"""`make bench`: measure todopy against its targets and against ceilings measured in the same run.

    python -m bench.run [--quick] [--only PHASE[,PHASE...]] [--results DIR]

Starts its own PostgreSQL (in a temp dir), the real `todopy serve` with one
worker, the peer (bench/peer: FastAPI + asyncpg, one process) and the two
ceilings (bench/ceiling_rest.py, bench/ceiling_fanout.py); runs the phases of
bench.phases (each on todopy and on the peer), bench.wakeup, bench.triggers and
bench.deadlocks; prints a table (todopy / peer / limit per row) and writes a
JSON file and a plot to bench/results/. `--only rest` runs the REST phase alone
(about a minute): the figures of phases not run are `n/a`.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench import deadlocks, rest, triggers, wakeup
from bench.database import Database
from bench.peer import seed as peer_seed
from bench.phases import (Run, fanout_phase, idle_phase, latency_phase, rest_phase, streams_phase, throughput_phase,
                          warm_up)
from bench.plan import FULL, POOL_SIZE, QUICK
from bench.report import cpu_notes, figures, index_notes, latency_notes, plot, table, write_json, write_notes
from bench.servers import REPO, Server, start_ceiling, start_peer, start_todopy

PHASES = ("streams", "fanout", "throughput", "rest", "idle", "wakeup", "triggers", "deadlocks")
REST_USERS = 1_000                  # users whose todos wrk reads and writes


def phase_list(text: str) -> tuple[str, ...]:
    """`rest` or `streams,rest`: phases to run, in the order of PHASES."""
    chosen = {name.strip() for name in text.split(",") if name.strip()}
    unknown = chosen - set(PHASES)
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(PHASES)}")
    return tuple(name for name in PHASES if name in chosen)


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    # A stop (a CI timeout, `kill`) ends the run as its end does: the `finally` below stops the
    # servers and PostgreSQL, which Python's default SIGTERM would skip, leaving them running.
    signal.signal(signal.SIGTERM, _stop)
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run with small numbers (~10-30 s)")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results",
                        help="where the JSON, the plot and the logs go (default bench/results/)")
    parser.add_argument("--only", type=phase_list, default=PHASES, metavar="PHASE[,PHASE...]",
                        help=f"run only these phases (of {', '.join(PHASES)}); default all")
    args = parser.parse_args(argv)
    only = args.only
    plan = QUICK if args.quick else FULL
    rest.wrk_path()                                  # fail now, not after minutes of set-up
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_dir = args.results / "logs"
    log_dir.mkdir(exist_ok=True)
    for old_log in log_dir.glob("*.log"):
        old_log.unlink()
    run = Run(plan, log_dir)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="todopy-bench-") as tmp:
        print(f"[bench] {'quick' if args.quick else 'full'} run of {', '.join(only)}; PostgreSQL in {tmp}",
              flush=True)
        database = Database(Path(tmp) / "pg")
        servers: list[Server] = []
        try:
            # Streams need every stage's users; REST alone needs only its own.
            ramp_count = plan.ramp_users if "streams" in only else min(plan.ramp_users, REST_USERS)
            ramp_users = database.seed("ramp", ramp_count, 1)
            fan_user = database.seed("fan", 1, 1)[0]
            bulk_users = database.seed("bulk", plan.bulk_users, plan.bulk_todos) if "throughput" in only else []
            warm_user = database.seed("warm", 1, 1)[0]
            held_users = database.seed("held", wakeup.HELD_STREAMS + 1, 1) if "wakeup" in only else []
            peer_seed.install(database.dsn)              # the same users, tokens and todos, in its own tables
            server = start_todopy(database.dsn, log_dir, POOL_SIZE)
            servers.append(server)
            peer = start_peer(database.dsn, log_dir, POOL_SIZE)
            servers.append(peer)
            ceiling_rest = start_ceiling("ceiling_rest", log_dir)
            servers.append(ceiling_rest)
            ceiling_fanout = start_ceiling("ceiling_fanout", log_dir)
            servers.append(ceiling_fanout)
            run.phase("warm-up", lambda: warm_up(run, server, warm_user))
            run.phase("warm-up-peer", lambda: warm_up(run, peer, warm_user))
            if "streams" in only:
                run.phase("streams", lambda: streams_phase(run, server, database, ramp_users))
                run.phase("streams-peer", lambda: streams_phase(run, peer, database, ramp_users,
                                                                peer_seed.writer_dsn(database.dsn)))
            if "fanout" in only:
                run.phase("fanout", lambda: fanout_phase(run, server, peer, ceiling_fanout, fan_user))
                run.phase("latency", lambda: latency_phase(run, server, peer, ceiling_fanout, fan_user))
                run.phase("durable_commit", lambda: database.durable_commit_ms(plan.paced_writes, plan.paced_rate))
            if "throughput" in only:
                run.phase("throughput", lambda: throughput_phase(run, server, bulk_users))
                run.phase("throughput-peer", lambda: throughput_phase(run, peer, bulk_users))
            if "rest" in only:
                run.phase("rest", lambda: rest_phase(run, server, peer, ceiling_rest, ramp_users[:REST_USERS]))
            if "idle" in only:
                run.phase("idle", lambda: idle_phase(run, database.dsn, ramp_users))
            if "wakeup" in only:
                run.phase("wakeup", lambda: wakeup.measure(server, database, held_users, plan, log_dir, POOL_SIZE))
            for process in servers:
                process.stop()
            if "triggers" in only:
                run.phase("triggers", lambda: triggers.measure(database, plan, log_dir, POOL_SIZE))
            if "deadlocks" in only:
                run.phase("deadlocks", lambda: deadlocks.measure(database, plan, log_dir, POOL_SIZE))
        finally:
            for process in servers:
                process.stop()
            database.stop()
    results = figures(run)
    mode = "quick (smoke run: sizes too small for the targets)" if args.quick else "full"
    if only != PHASES:
        mode += f" (only {', '.join(only)})"
    print()
    print(table(results))
    notes = cpu_notes(run) + latency_notes(run) + write_notes(run) + index_notes(run)
    for note in notes:
        print(note)
    for warning in run.warnings:
        print(f"warning: {warning}")
    json_path = args.results / f"bench-{stamp}.json"
    plot_path = args.results / f"bench-{stamp}.png"
    details = {"mode": mode, "time": stamp, "seconds": round(time.monotonic() - started, 1),
               "plan": dataclasses.asdict(plan), "pool_size": POOL_SIZE,
               "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                           "platform": platform.platform()},
               "cpu_notes": notes, "warnings": run.warnings, "phases": run.details}
    write_json(json_path, results, details)
    stages = (run.details.get("streams") or {}).get("stages") or []
    if stages:
        plot(plot_path, stages, f"todopy, one worker, {os.cpu_count()} cores ({mode.split()[0]} run)")
    print(f"\nwrote {json_path}" + (f" and {plot_path}" if stages else ""))
    if run.failed:
        print(f"phases that failed to measure: {', '.join(run.failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
