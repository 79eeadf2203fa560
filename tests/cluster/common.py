"""What both cluster proofs share: pass/fail lines, a write storm that remembers what was acknowledged,
the end check of every stream's replica, and clean-up that runs however the proof ends."""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import requests

from tests.fleet import Fleet, FleetStream
from tests.support import LIST, TODOPY, Api, by_id, metric, wait_healthy
from todopy.embedded import EmbeddedPostgres


class Report:
    """One `PASS`/`FAIL` line per check, and the exit status they add up to."""

    def __init__(self, proof: str) -> None:
        self.proof = proof
        self.failed = 0

    def check(self, name: str, ok: bool, detail: str) -> bool:
        print(f"{'PASS' if ok else 'FAIL'} {self.proof}: {name}: {detail}", flush=True)
        self.failed += not ok
        return ok

    def note(self, text: str) -> None:
        print(f"     {self.proof}: {text}", flush=True)

    def exit_status(self) -> int:
        print(f"{'PASS' if not self.failed else 'FAIL'} {self.proof}: "
              f"{'all checks passed' if not self.failed else f'{self.failed} check(s) failed'}", flush=True)
        return 1 if self.failed else 0


class Cleanup:
    """Undo steps run in reverse order at the end, also on an exception, SIGTERM or SIGINT."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, Callable[[], object]]] = []
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def add(self, name: str, step: Callable[[], object]) -> None:
        self.steps.append((name, step))

    def run(self) -> None:
        while self.steps:
            name, step = self.steps.pop()
            try:
                step()
            except Exception as error:          # every other step must still run
                print(f"     clean-up of {name} failed: {error!r}", file=sys.stderr, flush=True)

    @staticmethod
    def _on_signal(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)


def sh(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True)


class Server:
    """`todopy serve` as a host: a process group of its own (optionally in a network namespace)."""

    def __init__(self, name: str, dsn: str, host: str, port: int, log_dir: Path, *, netns: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.base_url = f"http://{host}:{port}"
        self.ws_url = f"ws://{host}:{port}"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("TODOPY_")}
        environment.update({"DATABASE_URL": dsn, **(env or {})})
        prefix = ["ip", "netns", "exec", netns] if netns else []
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([*prefix, TODOPY, "serve", "--host", "0.0.0.0" if netns else host,
                                             "--port", str(port)], env=environment, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def wait_healthy(self, timeout: float = 30) -> None:
        wait_healthy(self.process, self.base_url, lambda: f"{self.name}: {self.log_path.read_text()[-3000:]}",
                     timeout)

    def rings(self, timeout: float = 1.0) -> bool | None:
        """Whether this host is the elected ringer; None when it does not answer."""
        try:
            text = requests.get(self.base_url + "/metrics", timeout=timeout).text
        except requests.RequestException:
            return None
        return metric(text, "todopy_ringer_elected") >= 1

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def serve(servers: list[Server], cleanup: Cleanup) -> None:
    """Each server stopped by `cleanup` whatever happens, then every one of them healthy."""
    for server in servers:
        cleanup.add(server.name, server.stop)
    for server in servers:
        server.wait_healthy()


class Writers:
    """Threads creating todos through whichever of `hosts` they are given, remembering every acknowledged one."""

    def __init__(self, token: str, hosts: list[Server], threads: int = 4) -> None:
        self.token = token
        self.hosts = hosts
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked: dict[str, dict] = {}
        self.statuses: collections.Counter = collections.Counter()
        self.unavailable: list[float] = []        # when a write was refused for want of a database
        self.acked_at: list[float] = []
        self._threads = [threading.Thread(target=self._write, args=(i,), daemon=True) for i in range(threads)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(15)

    def _write(self, seed: int) -> None:
        n = 0
        while not self.stop.is_set():
            host = self.hosts[(seed + n) % len(self.hosts)]
            n += 1
            api = Api(host.base_url, self.token)
            try:
                response = api.post(LIST, {"title": f"w{seed}-{n}"})
            except requests.RequestException:
                with self.lock:
                    self.statuses["no answer"] += 1
                    self.unavailable.append(time.monotonic())
                time.sleep(0.05)
                continue
            with self.lock:
                self.statuses[response.status_code] += 1
                if response.status_code == 201:
                    todo = response.json()
                    self.acked[todo["id"]] = todo
                    self.acked_at.append(time.monotonic())
                elif response.status_code == 503:
                    self.unavailable.append(time.monotonic())
            if response.status_code != 201:
                time.sleep(0.05)
            time.sleep(0.01)


def verdict(report: Report, fleets: list[Fleet], truth: list[dict], acked: dict[str, dict]) -> None:
    """Every stream's replica against the list as REST shows it, and against every acknowledged write."""
    present = by_id(truth)
    streams: list[FleetStream] = [stream for fleet in fleets for stream in fleet.streams]
    lost = duplicates = differing = 0
    for stream in streams:
        lost += sum(1 for todo_id in acked if todo_id not in stream.replica.todos)
        differing += stream.replica.todos != present
        duplicates += sum(1 for problem in stream.problems if "duplicate" in problem or "disorder" in problem)
    problems = [problem for stream in streams for problem in stream.problems]
    report.check("acknowledged writes kept", all(todo_id in present for todo_id in acked),
                 f"{len(acked)} acknowledged, {sum(1 for t in acked if t not in present)} missing from the list")
    report.check("frames lost", lost == 0 and differing == 0,
                 f"{lost} acknowledged writes missing from {len(streams)} streams; {differing} replicas differ from REST")
    report.check("duplicates", duplicates == 0 and not problems,
                 f"{duplicates} duplicate or out-of-order changes; {len(problems)} stream problems {problems[:3]}")


def start_database(data_dir: Path, *, listen: str = "127.0.0.1", hba: tuple[str, ...] = (),
                   settings: dict[str, str] | None = None) -> EmbeddedPostgres:
    """A new embedded cluster listening on `listen`, with extra pg_hba lines and settings."""
    cluster = EmbeddedPostgres(data_dir)
    cluster.start()
    configure(cluster, listen=listen, hba=hba, settings=settings)
    cluster.stop()
    cluster.start()
    return cluster


def configure(cluster: EmbeddedPostgres, *, listen: str | None = None, hba: tuple[str, ...] = (),
              settings: dict[str, str] | None = None) -> None:
    """Later lines of postgresql.auto.conf win over the embedded defaults (read at the next start)."""
    lines = [f"listen_addresses = '{listen}'"] if listen else []
    lines += [f"{name} = '{value}'" for name, value in (settings or {}).items()]
    with open(cluster.data_dir / "postgresql.auto.conf", "a") as conf:
        conf.write("".join(line + "\n" for line in lines))
    with open(cluster.data_dir / "pg_hba.conf", "a") as conf:
        conf.write("".join(line + "\n" for line in hba))
