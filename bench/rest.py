"""REST throughput with wrk: todopy's GET and PUT of one todo, and the bare ceiling."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import psutil

from bench.database import BenchUser
from bench.loadgen import cpu_seconds

LUA = Path(__file__).with_name("wrk_todos.lua")
RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
PERCENTILE = re.compile(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("wrk is not installed: `make browser-deps` (Debian package wrk)")
    return path


def run_wrk(url: str, seconds: int, connections: int, server: psutil.Process, *, method: str | None = None,
            users: list[BenchUser] | None = None) -> dict:
    """One wrk run (2 threads); with `method`, requests come from the Lua script over `users`' todos.

    Also the CPU time `server` spent per request: other load on the machine distorts
    requests per second, hardly the cost of one request."""
    command = [wrk_path(), "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    env = dict(os.environ)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as pairs:
        if method is not None:
            pairs.write("".join(f"{user.token} {user.todo_ids[0]}\n" for user in users or []))
            pairs.flush()
            env.update(BENCH_METHOD=method, BENCH_PAIRS=pairs.name)
            command += ["-s", str(LUA)]
        cpu_before = cpu_seconds(server)
        done = subprocess.run([*command, url], env=env, capture_output=True, text=True, timeout=seconds + 60)
        server_cpu = cpu_seconds(server) - cpu_before
    rate_found = RATE.search(done.stdout)
    if done.returncode != 0 or rate_found is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    errors = NON_2XX.search(done.stdout)
    sockets = SOCKET_ERRORS.search(done.stdout)
    rate = float(rate_found.group(1))
    return {
        "requests_per_s": rate,
        "server_cpu_us_per_request": round(server_cpu / max(1.0, rate * seconds) * 1e6, 1),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": sum(map(int, sockets.groups())) if sockets else 0,
        "latency_ms": {f"p{p}": round(float(v) * UNIT_MS[u], 3) for p, v, u in PERCENTILE.findall(done.stdout)},
        "connections": connections, "seconds": seconds, "output": done.stdout,
    }
