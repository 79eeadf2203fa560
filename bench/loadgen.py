"""The orchestrator's side of a `bench.streamclient` process: start it, read its events, say go."""
from __future__ import annotations

import json
import queue
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import psutil

from bench.servers import REPO, raise_fd_limit


class StreamClient:
    """One load-generator process running one scenario; every wait is bounded."""

    def __init__(self, spec: dict[str, Any], log_path: Path) -> None:
        self._spec_file = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump(spec, self._spec_file)
        self._spec_file.close()
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "bench.streamclient", self._spec_file.name],
                                        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._log, preexec_fn=raise_fd_limit)
        self._events: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None     # opened with stdout=PIPE
        for line in self.process.stdout:
            try:
                self._events.put(json.loads(line))
            except ValueError:
                continue
        self._events.put(None)

    def next(self, event: str, timeout: float) -> dict[str, Any]:
        """The next event, which must be `event`."""
        try:
            message = self._events.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"stream client: no {event!r} within {timeout:.0f}s") from None
        if message is None:
            raise RuntimeError(f"stream client exited ({self.process.wait()}) before {event!r}")
        if message["event"] == "error":
            raise RuntimeError(f"stream client failed: {message['error']}")
        if message["event"] != event:
            raise RuntimeError(f"stream client: expected {event!r}, got {message['event']!r}")
        return message

    def go(self) -> None:
        assert self.process.stdin is not None      # opened with stdin=PIPE
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = 60.0) -> None:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        finally:
            self._log.close()
            Path(self._spec_file.name).unlink(missing_ok=True)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def run_burst(spec: dict[str, Any], log_path: Path, server: psutil.Process) -> dict[str, Any]:
    """A burst scenario from start to end: its `open` and `burst` events merged, with the CPU
    time `server` spent meanwhile (a figure that other load on the machine does not distort)."""
    client = StreamClient({"scenario": "burst", **spec}, log_path)
    try:
        opened = client.next("open", timeout=spec["deadline"])
        cpu_before = cpu_seconds(server)
        result = client.next("burst", timeout=spec["deadline"])
        server_cpu = cpu_seconds(server) - cpu_before
    finally:
        client.finish()
    return {**result, "opened": opened, "server_cpu_seconds": round(server_cpu, 3),
            "server_cpu_us_per_frame": round(server_cpu / max(1, result["received"]) * 1e6, 2)}
