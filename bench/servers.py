"""The processes under test: the real `todopy serve`, the peer (bench.peer) and the two ceilings, each on a free port."""
from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from todopy.embedded import free_port

HOST = "127.0.0.1"
TODOPY = str(Path(sys.executable).with_name("todopy"))
REPO = Path(__file__).resolve().parent.parent
FD_LIMIT = 65536


def raise_fd_limit() -> None:
    """In the child before exec: room for 10k+ sockets (root may raise the hard limit; others get theirs)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, max(FD_LIMIT, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Server:
    """One server subprocess (`{port}` in its command becomes a free port) with its log file."""

    def __init__(self, name: str, command: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.port = free_port()
        self.log_path = log_path
        self._log = open(log_path, "wb")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("TODOPY_") and k != "DATABASE_URL"}
        environment.update(env or {})
        self.process = subprocess.Popen([part.replace("{port}", str(self.port)) for part in command],
                                        env=environment, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True, preexec_fn=raise_fd_limit)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def wait_listening(self, path: str | None = None, timeout: float = 60.0) -> None:
        """Until the port accepts (and `path` answers 200, if given)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            try:
                if path is None:
                    socket.create_connection((HOST, self.port), timeout=1).close()
                    return
                with urllib.request.urlopen(self.base_url + path, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready within {timeout}s; see {self.log_path}")

    def worker(self) -> psutil.Process:
        """The process doing the work: gunicorn's single worker for todopy, else the process itself."""
        process = psutil.Process(self.process.pid)
        children = process.children()
        if self.name.startswith("todopy"):
            if len(children) != 1:
                raise RuntimeError(f"expected one gunicorn worker, found {len(children)}")
            return children[0]
        return process

    def rss(self) -> int:
        return self.worker().memory_info().rss

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def start_todopy(dsn: str, log_dir: Path, pool_size: int, name: str = "todopy") -> Server:
    # The per-user limits protect a server from one user; the benchmark's few users stand for
    # many, so they are lifted: what is measured is the server's capacity, not one user's share.
    server = Server(name, [TODOPY, "serve", "--port", "{port}"], log_dir / f"{name}.log", env={
        "DATABASE_URL": dsn, "TODOPY_WORKERS": "1", "TODOPY_POOL_SIZE": str(pool_size),
        "TODOPY_MAX_STREAMS_PER_USER": "1000000", "TODOPY_WRITE_BURST": "1000000000",
        "TODOPY_WRITE_RATE": "1000000000"})
    server.wait_listening("/healthz")
    return server


def start_ceiling(module: str, log_dir: Path, name: str | None = None) -> Server:
    server = Server(name or module, [sys.executable, "-m", f"bench.{module}", "{port}"], log_dir / f"{name or module}.log")
    server.wait_listening()
    return server


def start_peer(dsn: str, log_dir: Path, pool_size: int, name: str = "peer") -> Server:
    """The peer on uvicorn, one process (uvloop, httptools, websockets-sansio), its pool as large as todopy's."""
    server = Server(name, [sys.executable, "-m", "uvicorn", "bench.peer.app:app", "--host", HOST, "--port", "{port}",
                           "--loop", "uvloop", "--http", "httptools", "--ws", "websockets-sansio", "--no-access-log",
                           "--log-level", "warning", "--backlog", "4096"],
                    log_dir / f"{name}.log", env={"PEER_DATABASE_URL": dsn, "PEER_POOL_SIZE": str(pool_size)})
    server.wait_listening()
    return server
