"""`make bench` works: a --quick run completes and writes every figure (a smoke run, not the targets); so does bench.fastpaths."""
from __future__ import annotations

import json
import re
import signal
import shutil
import subprocess
import sys
from pathlib import Path

import psutil

from bench.plan import TARGETS

REPO = Path(__file__).resolve().parent.parent


RELATIVE = ("fanout_messages_per_s", "rest_get_per_s", "rest_put_per_s",   # judged as ratios to a ceiling
            "durable_writes_16", "durable_writes_1", "durable_writes_hot", "durable_writes_streamed",
            "paced_small_p50_ms", "paced_small_p99_ms", "paced_large_p50_ms", "paced_large_p99_ms", "burst_p99_ms",
            "burst_common_p99_ms", "idle_rss_ratio")
# Figures measured on todopy only: the peer has no ringer to kill nor a connection budget of ours to count;
# the idle stage sets todopy's one worker against the bare limit alone.
TODOPY_ONLY = ("pg_connections", "held_open_p99_ms", "failover_s", "idle_held", "idle_rss_ratio",
               "idle_handshake_max_ms")


def verdict(key: str, figure: dict) -> bool:
    """PASS or MISS as TARGETS define it, from the figure's own numbers."""
    comparison, threshold = TARGETS[key]
    value = figure["ratio"] if key in RELATIVE else figure["measured"]
    return value >= threshold if comparison == ">=" else value <= threshold


def test_quick_benchmark_runs_every_phase_and_writes_every_figure(tmp_path: Path) -> None:
    assert shutil.which("wrk"), "the benchmark needs wrk: `make test` installs it (make browser-deps)"
    done = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--results", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=420)
    output = f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"
    assert done.returncode == 0, output
    (result,) = tmp_path.glob("bench-*.json")
    document = json.loads(result.read_text())
    figures = document["figures"]
    assert set(figures) == set(TARGETS), output
    for key in RELATIVE:
        assert figures[key]["ceiling"] > 0 and figures[key]["ratio"] > 0, key
    for key, figure in figures.items():
        assert isinstance(figure["measured"], (int, float)), f"{key} was not measured\n{output}"
        assert figure["pass"] is verdict(key, figure), f"{key}: {figure}"
        if key not in TODOPY_ONLY:      # every other row is todopy / peer / limit
            assert isinstance(figure["peer"], (int, float)), f"{key} was not measured on the peer\n{output}"
    # The peer served the same users without an error: every REST answer 2xx, every change delivered.
    assert not [warning for warning in document["warnings"] if "peer" in warning], output
    # Issue 20's harder case: every change pgbench committed reached the stream of its list, on both servers.
    for subject in ("todopy", "peer"):
        for run in document["phases"]["triggers"]["streamed"]["runs"][subject]:
            assert run["transactions"] > 0 and run["delivered"] == run["transactions"], (subject, run)
    for workload in ("multi_row", "toggle"):
        assert set(document["phases"]["deadlocks"][workload]) == {"todopy", "peer"}, workload
    assert document["phases"]["deadlocks"]["toggle"]["peer"]["requests"] > 0
    for phase in ("streams", "streams-peer"):
        assert [stage["open"] for stage in document["phases"][phase]["stages"]] == list(document["plan"]["stages"])
    for subject in ("todopy", "ceiling"):      # the idle stage: every stream opened, its pauses read from /metrics
        stages = document["phases"]["idle"][subject]["stages"]
        assert [stage["open"] for stage in stages] == list(document["plan"]["idle_stages"]), subject
    assert all("gc" in stage for stage in document["phases"]["idle"]["todopy"]["stages"])
    assert list(tmp_path.glob("bench-*.png")), "no plot"
    assert re.search(r"^figure +todopy +peer +limit ", done.stdout, re.MULTILINE), "no table on stdout"
    # REST figures are medians of alternated rounds; paced latency is also set against limit + one commit.
    for name in ("get", "put", "peer_get", "peer_put"):
        assert len(document["phases"]["rest"][name]["rounds_per_s"]) == document["plan"]["rest_rounds"], name
    assert re.search(r"^paced_\d+: the limit plus one durable commit, p50/p99 [\d.]+/[\d.]+ ms .* against it todopy ",
                     done.stdout, re.MULTILINE), output


def test_the_fast_paths_benchmark_measures_each_against_its_library() -> None:
    assert shutil.which("wrk"), "the benchmark needs wrk: `make test` installs it (make browser-deps)"
    done = subprocess.run([sys.executable, "-m", "bench.fastpaths", "--seconds", "3", "--users", "20"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"
    measured = dict(re.findall(r"^  (\S.*?)\s+([\d.]+) µs", done.stdout, re.MULTILINE))
    assert set(measured) == {"all fast", "library headers", "library write", "library response",
                             "library accesslog", "all library"}, done.stdout
    assert all(float(us) > 0 for us in measured.values()), done.stdout


def test_a_stopped_benchmark_stops_its_postgresql_and_servers(tmp_path: Path) -> None:
    """SIGTERM (a CI timeout, `kill`) ends the run as its own end does: no PostgreSQL or server is left running."""
    bench = subprocess.Popen([sys.executable, "-m", "bench.run", "--quick", "--only", "rest", "--results",
                              str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert bench.stdout is not None
        cluster = None
        for line in bench.stdout:
            found = re.search(r"PostgreSQL in (\S+)", line)
            cluster = cluster or (found.group(1) if found else None)
            if "warm-up done" in line:          # its database and its four servers are up
                break
        assert cluster, "the run did not say where its PostgreSQL is"
        servers = psutil.Process(bench.pid).children(recursive=True)
        assert len(servers) >= 4, servers       # todopy, the peer and the two ceilings (and what they started)
        bench.send_signal(signal.SIGTERM)
        bench.wait(timeout=60)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        if bench.stdout is not None:
            bench.stdout.close()
    left = [p.info["cmdline"] for p in psutil.process_iter(["cmdline", "status"])
            if p.info["status"] != psutil.STATUS_ZOMBIE and (p in servers or cluster in " ".join(p.info["cmdline"] or ()))]
    assert not left, f"still running after the benchmark stopped: {left}"
    assert not Path(cluster).exists(), "its temporary directory was left behind"

