"""Each fast path of todopy/fastpaths.py against the library it copies, in one server, interleaved.

    python -m bench.fastpaths [--method GET|PUT] [--seconds 90] [--only PATH] [--period 0.5] [--users 1000]

`make bench` compares servers run one after another; on a shared machine their
figures vary by more than one fast path saves. Here one process serves the real
app (todopy's pywsgi handler, a real PostgreSQL) while wrk loads it, and every
`period` seconds the next variant serves: all fast paths, each in turn done by
its library instead, then all of them. Other load on the machine falls on every
variant alike. For each it prints the median server CPU per request over its
slices, and the requests it served (the same time each, so a slower variant
serves fewer).
"""
from __future__ import annotations

if __name__ == "__main__":
    from gevent import monkey

    monkey.patch_all()
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()

import argparse
import gc
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import gevent
from gevent.pywsgi import WSGIHandler, WSGIServer
# Measured against the fast path that replaces it: pywsgi's parser is not public, so not in its stubs.
from gevent.pywsgi import headers_factory  # type: ignore[attr-defined]
from werkzeug.wrappers import Response

from bench.database import Database
from bench.rest import LUA, wrk_path
from todopy import fastpaths, logs
from todopy.app import create_app
from todopy.server import Handler
from todopy.settings import Settings


def library_headers(lines: list[str]) -> Any:
    return headers_factory(io.BytesIO("".join(lines).encode("iso-8859-1")))


def library_json(self: fastpaths.JSONResponse, environ: dict, start_response: Callable) -> Iterable[bytes]:
    return Response(self.body, self.status, self.headers, content_type=fastpaths.JSON_CONTENT_TYPE)(
        environ, start_response)


def library_no_content(self: fastpaths.NoContent, environ: dict, start_response: Callable) -> Iterable[bytes]:
    return Response(status=204)(environ, start_response)


def library_access(self: fastpaths.AccessLog, method: str, path: str, status: str, seconds: float,
                   user_id: str | None, error: str | None) -> None:
    extra = {"method": method, "path": path, "status": int(status), "ms": round(seconds * 1000, 2),
             "user_id": user_id, "error": error} if self.json else None
    logs.ACCESS.info("%s %s %s %.1fms", method, path, status, seconds * 1000, extra=extra)


# fast path -> (owner, attribute, the library doing its job)
SWAPS: dict[str, list[tuple[Any, str, Any]]] = {
    "headers": [(fastpaths, "headers_message", library_headers)],
    # Private to pywsgi (absent from its stubs): the library's first send, swapped in on purpose.
    "write": [(fastpaths, "write_with_headers", WSGIHandler._write_with_headers)],  # type: ignore[attr-defined]
    "response": [(fastpaths.JSONResponse, "__call__", library_json),
                 (fastpaths.NoContent, "__call__", library_no_content)],
    "accesslog": [(fastpaths.AccessLog, "write", library_access)],
}
FAST = {(owner, name): getattr(owner, name) for swaps in SWAPS.values() for owner, name, _ in swaps}


def use_library_for(paths: set[str]) -> None:
    """The library does the job of the fast paths named, ours that of the others."""
    for path, swaps in SWAPS.items():
        for owner, name, library in swaps:
            setattr(owner, name, library if path in paths else FAST[owner, name])


class CountingHandler(Handler):
    requests = 0

    def handle_one_request(self) -> Any:
        CountingHandler.requests += 1
        return super().handle_one_request()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fastpaths", description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=("GET", "PUT"), default="GET")
    parser.add_argument("--seconds", type=int, default=90, help="wrk's run (default 90)")
    parser.add_argument("--only", choices=sorted(SWAPS), help="only this fast path against its library")
    parser.add_argument("--period", type=float, default=0.5, help="seconds each variant serves in turn")
    parser.add_argument("--users", type=int, default=1000, help="users whose todos wrk reads or writes")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    paths = [args.only] if args.only else list(SWAPS)
    variants = [("all fast", set()), *((f"library {path}", {path}) for path in paths)]
    if len(paths) > 1:
        variants.append(("all library", set(paths)))

    gevent.config.track_greenlet_tree = False       # as the worker sets it
    with tempfile.TemporaryDirectory(prefix="todopy-fastpaths-") as tmp:
        server_log = open(Path(tmp) / "server.log", "w")
        sys.stderr, stderr = server_log, sys.stderr   # the access log and the others, out of the way
        database = Database(Path(tmp) / "pg")
        try:
            logs.configure(args.log_format, "INFO")
            users = database.seed("fast", args.users, 1)
            app = create_app(Settings(log_format=args.log_format), database.dsn)
            app.start()
            server = WSGIServer(("127.0.0.1", 0), app, handler_class=CountingHandler, log=None)
            server.start()
            assert server.server_port is not None       # start() has bound the socket
            gc.freeze()
            slices = run(args, server.server_port, users, variants, Path(tmp))
            server.stop()
            app.shutdown(1001)
        finally:
            database.stop()
            sys.stderr = stderr
            server_log.close()
    report(args, variants, slices)
    return 0


def run(args: argparse.Namespace, port: int, users: list, variants: list[tuple[str, set[str]]],
        tmp: Path) -> dict[str, list[tuple[float, int]]]:
    """wrk's load while the variants take turns; (CPU seconds, requests) of every slice, per variant."""
    pairs = tmp / "pairs.txt"
    pairs.write_text("".join(f"{user.token} {user.todo_ids[0]}\n" for user in users))
    env = dict(os.environ, BENCH_METHOD=args.method, BENCH_PAIRS=str(pairs))
    url = f"http://127.0.0.1:{port}"
    subprocess.run([wrk_path(), "-t1", "-c10", "-d2s", "-s", str(LUA), url], env=env, capture_output=True)  # warm
    slices: dict[str, list[tuple[float, int]]] = {name: [] for name, _ in variants}

    def rotate() -> None:
        turn = 0
        while True:
            name, paths = variants[turn % len(variants)]
            use_library_for(paths)
            cpu, count = time.process_time(), CountingHandler.requests
            gevent.sleep(args.period)
            slices[name].append((time.process_time() - cpu, CountingHandler.requests - count))
            turn += 1

    rotator = gevent.spawn(rotate)
    done = subprocess.run([wrk_path(), "-t2", "-c20", f"-d{args.seconds}s", "-s", str(LUA), url], env=env,
                          capture_output=True, text=True)
    rotator.kill()
    use_library_for(set())
    if done.returncode != 0 or "Non-2xx" in done.stdout:
        raise RuntimeError(f"wrk failed or got errors:\n{done.stdout}\n{done.stderr}")
    return slices


def report(args: argparse.Namespace, variants: list[tuple[str, set[str]]],
           slices: dict[str, list[tuple[float, int]]]) -> None:
    def median_us(name: str) -> float:
        return statistics.median(cpu / count * 1e6 for cpu, count in slices[name] if count) if any(
            count for _, count in slices[name]) else float("nan")

    base_us, base_count = median_us("all fast"), sum(count for _, count in slices["all fast"])
    print(f"REST {args.method} of one todo, {args.seconds} s, variants in turns of {args.period} s "
          f"({args.log_format} access log): median server CPU per request")
    for name, _ in variants:
        count = sum(n for _, n in slices[name])
        us = median_us(name)
        print(f"  {name:18s} {us:7.1f} µs ({us - base_us:+6.1f}, {us / base_us - 1:+6.1%})   "
              f"{count:7d} requests ({count / max(1, base_count) - 1:+6.1%})")


if __name__ == "__main__":
    sys.exit(main())
