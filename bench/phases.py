"""The measurements, one function per phase, each bounded in count and time.

1. streams: open list streams (one user each) in stages up to 10,000; at each
   stage sample the worker's RSS, then time SQL writes at 1,000/s from their
   commit to their change frame; PostgreSQL connections are sampled throughout;
2. fan-out: 1,000 streams of one user, PUTs back to back, against the bare
   gevent-websocket broadcast ceiling; then write-to-client latency of one
   user's streams, 50 and 500 of them at 10 PUTs/s and 500 with PUTs back to back;
3. change throughput: 100 users with a stream each, bulk toggles;
4. REST: wrk GET and PUT of one todo, against the bare pywsgi ceiling, todopy and the peer
   in alternated rounds (the median round reported);
5. idle: idle list streams held by todopy's one worker in stages up to 50,000,
   against the bare gevent-websocket ceiling at the same stages: RSS per stream,
   each handshake's time (its tail is the server's pauses) and todopy's own
   garbage-collection pauses (from /metrics).
Each phase but the last measures todopy and the peer (bench.peer) alike, one after the other.
(6. the wake-up path's hazards, an open write transaction and the ringer's death: bench.wakeup;
 7. trigger cost: bench.triggers, once the servers are stopped.)
"""
from __future__ import annotations

import dataclasses
import json
import re
import resource
import time
import traceback
import urllib.request
from pathlib import Path
from typing import Any, Callable

from bench import rest
from bench.database import BenchUser, ConnectionSampler, Database
from bench.loadgen import StreamClient, run_burst
from bench.plan import POOL_SIZE, Plan
from bench.report import percentile
from bench.servers import HOST, Server, start_ceiling, start_todopy

IDLE_FD_ROOM = 1_000       # descriptors an idle stage leaves each process for everything else
SETTLE_SECONDS = 1.0       # before sampling RSS: let the worker finish logging and go idle
# Counting streams read at most every READ_PAUSE seconds, taking many frames per read: the
# load generator then costs a few µs per message and is not what limits the figure.
READ_PAUSE = 0.05


@dataclasses.dataclass
class Run:
    """Everything one run measured, filled phase by phase."""

    plan: Plan
    log_dir: Path
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    warnings: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)     # phases that could not measure

    def phase(self, name: str, work: Callable[[], Any]) -> Any:
        """Run one phase; a failure is reported and the other phases still run."""
        started = time.monotonic()
        print(f"[bench] {name} ...", flush=True)
        try:
            result = work()
        except Exception as error:
            self.warnings.append(f"{name} failed: {error}")
            self.failed.append(name)
            traceback.print_exc()
            result = None
        print(f"[bench] {name} done in {time.monotonic() - started:.1f}s", flush=True)
        self.details[name] = result
        return result

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            self.warnings.append(message)


def stream_target(server: Server) -> dict[str, Any]:
    return {"host": HOST, "port": server.port}


def warm_up(run: Run, server: Server, user: BenchUser) -> None:  # todopy or the peer
    """A few streams and writes, so imports and first-use allocations are not counted as streams."""
    todo = user.todo_ids[0]
    run_burst({**stream_target(server), "streams": [[user.token, "/api/todos/"]] * 10,
               "writes": [["PUT", f"/api/todos/{todo}/", user.token, json.dumps({"title": f"warm {i}",
                                                                                  "completed": False})]
                          for i in range(20)],
               "concurrency": 2, "expected_frames": 200, "connect_concurrency": 10, "timeout": 30,
               "deadline": 60}, run.log_dir / "streamclient.log", server.worker())
    rest.run_wrk(server.base_url, 1, 10, server.worker(), method="GET", users=[user])


def streams_phase(run: Run, server: Server, database: Database, users: list[BenchUser],
                  writer_dsn: str | None = None) -> dict[str, Any]:
    """The ramp; probe writes go to `writer_dsn` (the peer's tables for the peer), else to todopy's."""
    plan = run.plan
    time.sleep(SETTLE_SECONDS)
    rss_idle = server.rss()
    stages: list[dict[str, Any]] = []
    spec = {"scenario": "ramp", **stream_target(server), "dsn": writer_dsn or database.dsn,
            "users": [[u.token, u.todo_ids[0]] for u in users],
            "stages": list(plan.stages), "probe_rate": plan.probe_rate, "probe_seconds": plan.probe_seconds,
            "connect_concurrency": plan.connect_concurrency, "deadline": 1800}
    with ConnectionSampler(database) as sampler:
        client = StreamClient(spec, run.log_dir / "streamclient.log")
        try:
            for target in plan.stages:
                opened = client.next("stage", timeout=600)
                time.sleep(SETTLE_SECONDS)
                rss = server.rss()
                client.go()
                probe = client.next("latency", timeout=plan.probe_seconds + 120)
                latencies = probe.pop("latencies_ms")
                write_latencies = probe.pop("write_latencies_ms")
                commits = probe.pop("commit_ms")
                stage = {"open": opened["ready"], "target": target, "failed": opened["failed"],
                         "open_seconds": opened["seconds"], "rss_bytes": rss,
                         "latency_ms": _spread(latencies), "write_latency_ms": _spread(write_latencies),
                         "commit_ms": _spread(commits), "probe": probe}
                stages.append(stage)
                print(f"[bench]   {server.name} {stage['open']:>6} streams: RSS {rss / 2**20:.1f} MiB, commit-to-client p50 "
                      f"{stage['latency_ms']['p50']} ms p99 {stage['latency_ms']['p99']} ms "
                      f"({probe['received']}/{probe['sent']} frames; the commits themselves p50 "
                      f"{stage['commit_ms']['p50']} ms p99 {stage['commit_ms']['p99']} ms)", flush=True)
                run.check(opened["failed"] == 0, f"{server.name}: {opened['failed']} streams failed to open at "
                          f"stage {target}: {opened['errors']}")
                run.check(probe["lost"] == 0 and not probe["errors"] and probe["received"] == probe["sent"],
                          f"{server.name} stage {target}: {probe['sent'] - probe['received']} of {probe['sent']} "
                          f"probe frames never arrived (or their writes were never made); {probe['errors']}")
            done = client.next("done", timeout=60)
        finally:
            client.finish()
    last = stages[-1]
    return {"rss_idle_bytes": rss_idle, "stages": stages, "alive_at_end": done["alive"],
            "pg_connections_peak": sampler.peak, "pg_connection_samples": sampler.samples,
            "rss_per_stream_bytes": (last["rss_bytes"] - rss_idle) / max(1, last["open"])}


def _spread(values: list[float]) -> dict[str, float | None]:
    return {f"p{p}": percentile(values, p) for p in (50, 90, 99)} | {"max": max(values, default=None)}


def fanout_spec(streams: list[list], writes: list[list], plan: Plan) -> dict[str, Any]:
    return {"streams": streams, "writes": writes, "concurrency": 1,
            "expected_frames": len(streams) * len(writes), "connect_concurrency": plan.connect_concurrency,
            "read_pause": READ_PAUSE, "timeout": 300, "deadline": 600}


def fanout_phase(run: Run, server: Server, peer: Server, ceiling: Server, user: BenchUser) -> dict[str, Any]:
    plan = run.plan
    todo = user.todo_ids[0]
    writes = [["PUT", f"/api/todos/{todo}/", user.token, json.dumps({"title": f"fanout {i}", "completed": False})]
              for i in range(plan.fanout_writes)]
    measured, peer_result = (
        run_burst({**stream_target(subject), **fanout_spec([[user.token, "/api/todos/"]] * plan.fanout_streams,
                                                           writes, plan)},
                  run.log_dir / "streamclient.log", subject.worker())
        for subject in (server, peer))
    broadcast = [["POST", "/broadcast", None, None]] * plan.fanout_writes
    ceiling_result = run_burst({**stream_target(ceiling), **fanout_spec([[None, "/"]] * plan.fanout_streams,
                                                                        broadcast, plan)},
                               run.log_dir / "streamclient.log", ceiling.worker())
    for name, result in (("todopy", measured), ("peer", peer_result), ("ceiling", ceiling_result)):
        run.check(result["received"] == result["expected"] and not result["errors"],
                  f"fan-out ({name}): {result['received']}/{result['expected']} frames; {result['errors']}")
    return {"todopy": measured, "peer": peer_result, "ceiling": ceiling_result,
            "todopy_messages_per_s": measured["received"] / measured["seconds"],
            "peer_messages_per_s": peer_result["received"] / peer_result["seconds"],
            "ceiling_messages_per_s": ceiling_result["received"] / ceiling_result["seconds"]}


def latency_phase(run: Run, server: Server, peer: Server, ceiling: Server, user: BenchUser) -> dict[str, Any]:
    """Write-to-client latency of one user's streams, paced and back to back; the ceiling's the same way.

    Back to back, each server takes writes as fast as it answers them, so a tail measures its own
    pace as much as its fan-out: the burst is then run again with all three paced at the rate the
    slowest of them answered (`burst_<n>_common`), the same load for each."""
    plan = run.plan
    todo = user.todo_ids[0]
    burst = f"burst_{plan.burst_streams}"
    cases = {**{f"paced_{n}": (n, plan.paced_rate, plan.paced_writes) for n in plan.paced_streams},
             burst: (plan.burst_streams, None, plan.fanout_writes)}
    results: dict[str, Any] = {}

    def measure(case: str, count: int, rate: float | None, writes: int) -> None:
        for name, subject in (("todopy", server), ("peer", peer), ("ceiling", ceiling)):
            if name == "ceiling":
                streams, requests = [[None, "/"]] * count, [["POST", "/broadcast", None, None]] * writes
            else:
                streams = [[user.token, "/api/todos/"]] * count
                requests = [["PUT", f"/api/todos/{todo}/", user.token,
                             json.dumps({"title": f"{case} {i}", "completed": False})] for i in range(writes)]
            spec = {**stream_target(subject), **fanout_spec(streams, requests, plan), "read_pause": 0.0,
                    "rate": rate}
            found = run_burst(spec, run.log_dir / "streamclient.log", subject.worker())
            run.check(found["received"] == found["expected"] and not found["errors"],
                      f"{case} ({name}): {found['received']}/{found['expected']} frames; {found['errors']}")
            results.setdefault(case, {})[name] = {**found, "rate": rate}
        print(f"[bench]   {case}: write-to-client p50/p99 " + ", ".join(
            f"{name} {r['latency_ms']['p50']}/{r['latency_ms']['p99']} ms" for name, r in results[case].items()),
            flush=True)

    for case, (count, rate, writes) in cases.items():
        measure(case, count, rate, writes)
    common = min(plan.fanout_writes / max(found["writes_seconds"], 1e-3) for found in results[burst].values())
    measure(f"{burst}_common", plan.burst_streams, round(common, 1), plan.fanout_writes)
    return results


def throughput_phase(run: Run, server: Server, users: list[BenchUser]) -> dict[str, Any]:
    plan = run.plan
    writes = [["PATCH", "/api/todos/", user.token, json.dumps({"completed": round_ % 2 == 0})]
              for round_ in range(plan.bulk_rounds) for user in users]
    result = run_burst({**stream_target(server), "streams": [[user.token, "/api/todos/"] for user in users],
                        "writes": writes, "concurrency": plan.bulk_concurrency,
                        "expected_frames": len(users) * plan.bulk_todos * plan.bulk_rounds,
                        "connect_concurrency": plan.connect_concurrency, "read_pause": READ_PAUSE,
                        "timeout": 300, "deadline": 600},
                       run.log_dir / "streamclient.log", server.worker())
    run.check(result["received"] == result["expected"] and not result["errors"],
              f"throughput ({server.name}): {result['received']}/{result['expected']} changes delivered; "
              f"{result['errors']}")
    return {**result, "changes_per_s": result["received"] / result["seconds"]}


def rest_phase(run: Run, server: Server, peer: Server, ceiling: Server, users: list[BenchUser]) -> dict[str, Any]:
    """wrk GET and PUT against todopy and the peer in alternated rounds, each figure the median round's.

    One run each, a shared machine's drift (a checkpoint, another tenant) decides which is ahead by
    as much as either is: PUT's ratio to the peer moved between 0.63 and 1.05 from run to run."""
    plan = run.plan
    results = {
        "ceiling": rest.run_wrk(ceiling.base_url + "/", plan.rest_seconds, plan.rest_connections, ceiling.worker()),
    }
    rounds: dict[str, list[dict[str, Any]]] = {}
    for round_ in range(plan.rest_rounds):
        subjects = (("", server), ("peer_", peer))
        for prefix, subject in subjects if round_ % 2 == 0 else subjects[::-1]:
            for method in ("GET", "PUT"):
                rounds.setdefault(prefix + method.lower(), []).append(rest.run_wrk(
                    subject.base_url, plan.rest_seconds, plan.rest_connections, subject.worker(),
                    method=method, users=users))
    for name, found in rounds.items():
        results[name] = {**sorted(found, key=lambda r: r["requests_per_s"])[len(found) // 2],
                         "rounds_per_s": [r["requests_per_s"] for r in found]}
        print(f"[bench]   REST {name}: " + ", ".join(f"{r['requests_per_s']:,.0f}" for r in found) + " req/s",
              flush=True)
    for name, found in [("ceiling", [results["ceiling"]]), *rounds.items()]:
        for result in found:
            run.check(result["non_2xx"] == 0 and result["socket_errors"] == 0,
                      f"REST {name}: {result['non_2xx']} non-2xx responses, {result['socket_errors']} socket errors")
    return results


GC_SAMPLE = re.compile(r'^todopy_gc_pause_seconds_(count|sum|bucket)\{([^}]*)\} ([0-9.e+-]+)$', re.MULTILINE)


def gc_pauses(server: Server) -> dict[str, dict[str, float]]:
    """todopy's garbage-collection pauses so far, per generation: count, seconds, and counts at or below each bucket."""
    with urllib.request.urlopen(server.base_url + "/metrics", timeout=30) as response:
        text = response.read().decode()
    found: dict[str, dict[str, float]] = {}
    for kind, labels, value in GC_SAMPLE.findall(text):
        fields = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        key = kind if kind != "bucket" else f"le_{fields['le']}"
        found.setdefault(fields["generation"], {})[key] = float(value)
    return found


def _pauses_between(before: dict, after: dict) -> dict[str, Any]:
    """Full (generation-2) collections between two samples: how many, their seconds, how many took over 0.1 and 0.5 s."""
    old, new = before.get("2", {}), after.get("2", {})
    count = new.get("count", 0.0) - old.get("count", 0.0)
    over = {f"over_{limit}s": count - (new.get(f"le_{limit}", 0.0) - old.get(f"le_{limit}", 0.0))
            for limit in ("0.1", "0.5")}
    return {"full_collections": int(count), "seconds": round(new.get("sum", 0.0) - old.get("sum", 0.0), 3),
            **{key: int(value) for key, value in over.items()}}


def idle_stages(plan: Plan) -> tuple[int, ...]:
    """The plan's idle stages, within what one process may open here: its open-files hard limit, less
    room for the rest (the server refuses streams past its limit less TODOPY_FD_RESERVE). Raising the
    hard limit takes privileges (CAP_SYS_RESOURCE) that a sandbox may not grant, root or not."""
    room = resource.getrlimit(resource.RLIMIT_NOFILE)[1] - IDLE_FD_ROOM
    return tuple(sorted({min(stage, room) for stage in plan.idle_stages}))


def idle_phase(run: Run, dsn: str, users: list[BenchUser]) -> dict[str, Any]:
    """Idle streams in stages, each server fresh (todopy's one worker, then the bare limit), so that
    memory freed by earlier phases does not flatter either: RSS per stream, handshake times and,
    for todopy, its full collections while they opened."""
    stages = idle_stages(run.plan)
    if max(stages) < max(run.plan.idle_stages):
        run.warnings.append(f"idle: this machine's open-files hard limit ({resource.getrlimit(resource.RLIMIT_NOFILE)[1]:,}, "
                            f"not raisable here) caps one process at {max(stages):,} streams, not "
                            f"{max(run.plan.idle_stages):,}")
    results: dict[str, Any] = {"stages": list(stages)}
    for name in ("todopy", "ceiling"):
        subject = (start_todopy(dsn, run.log_dir, POOL_SIZE, name="todopy-idle") if name == "todopy"
                   else start_ceiling("ceiling_fanout", run.log_dir, name="ceiling-idle"))
        try:
            results[name] = _hold_idle(run, name, subject, users, stages)
        finally:
            subject.stop()
    return results


def _hold_idle(run: Run, name: str, subject: Server, users: list[BenchUser], stages_held: tuple[int, ...]
               ) -> dict[str, Any]:
    plan = run.plan
    targets: list[list[str | None]]     # the peer's streams carry no token
    if name == "todopy":
        targets = [[users[i % len(users)].token, "/api/todos/"] for i in range(max(stages_held))]
    else:
        targets = [[None, "/"]] * max(stages_held)
    time.sleep(SETTLE_SECONDS)
    rss_idle = subject.rss()
    pauses = gc_pauses(subject) if name == "todopy" else None
    client = StreamClient({"scenario": "hold", **stream_target(subject), "targets": targets,
                           "stages": list(stages_held), "connect_concurrency": plan.connect_concurrency,
                           "deadline": 1800}, run.log_dir / "streamclient.log")
    stages = []
    try:
        for target in stages_held:
            opened = client.next("stage", timeout=900)
            time.sleep(SETTLE_SECONDS)
            rss = subject.rss()
            stage = {"target": target, "open": opened["ready"], "failed": opened["failed"],
                     "open_seconds": opened["seconds"], "handshake_ms": opened["handshake_ms"],
                     "rss_bytes": rss, "rss_per_stream_bytes": (rss - rss_idle) / max(1, opened["ready"])}
            if pauses is not None:
                now = gc_pauses(subject)
                stage["gc"] = _pauses_between(pauses, now)
                pauses = now
            stages.append(stage)
            print(f"[bench]   {name} {opened['ready']:>6} idle streams in {opened['seconds']:.0f} s: "
                  f"RSS {rss / 2**20:.0f} MiB, {stage['rss_per_stream_bytes'] / 1024:.1f} KiB a stream; "
                  f"handshake p50/p99/max {opened['handshake_ms']['p50']}/{opened['handshake_ms']['p99']}/"
                  f"{opened['handshake_ms']['max']} ms" + (f"; full collections {stage['gc']}" if "gc" in stage
                                                           else ""), flush=True)
            run.check(opened["failed"] == 0, f"idle {name}: {opened['failed']} streams failed to open at stage "
                      f"{target}: {opened['errors']}")
            client.go()
        done = client.next("done", timeout=120)
    finally:
        client.finish(timeout=120)
    return {"rss_idle_bytes": rss_idle, "stages": stages, "alive_at_end": done["alive"]}
