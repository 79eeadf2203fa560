"""Running the server: health while the database comes and goes, the embedded mode, the CLI."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.support import PASSWORD, TODOPY, ServerProcess, register, start_postgres, wait_for
from todopy.migrate import migrate


def health(server: ServerProcess) -> requests.Response:
    return requests.get(server.base_url + "/healthz", timeout=5)


def test_health_is_503_while_the_database_is_down_and_recovers_without_a_restart(tmp_path, start_server):
    cluster = start_postgres(tmp_path / "pg")
    try:
        migrate(cluster.dsn())
        server = start_server(database=cluster.dsn())
        user = register(server.base_url)
        assert health(server).json() == {"status": "ok"}

        cluster.stop()
        started = time.monotonic()
        down = health(server)
        assert time.monotonic() - started < 3, "health must answer quickly, not hang"
        assert down.status_code == 503
        body = down.json()
        assert body["status"] == "unavailable"
        assert body["error"]["code"] == "database_unavailable"
        assert "database" in body["error"]["message"]
        failed_write = user.post("/api/todos/", {"title": "while down"})
        assert failed_write.status_code == 503
        assert failed_write.json()["error"]["code"] == "database_unavailable"

        cluster.start()
        wait_for(lambda: health(server).status_code == 200)
        assert user.post("/api/todos/", {"title": "after restart"}).status_code == 201
        assert server.process.poll() is None
    finally:
        cluster.stop("immediate")


def postgres_processes(data_dir: Path) -> list[str]:
    """Live (non-zombie) postgres processes serving `data_dir`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "State:\tZ" in status:
            continue
        if "postgres" in cmdline and str(data_dir) in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_embedded_mode_serves_and_leaves_no_postgres_behind(tmp_path, artifacts, stop_signal):
    data_dir = (tmp_path / "data").resolve()
    server = ServerProcess(None, artifacts / f"embedded-{stop_signal.name}.log",
                           env={"TODOPY_DATA_DIR": str(data_dir)})
    try:
        server.wait_healthy(timeout=60)
        assert (data_dir / "PG_VERSION").exists()
        assert postgres_processes(data_dir), "the embedded PostgreSQL should be running"
        url = subprocess.run([TODOPY, "db-url"], env={**os.environ, "TODOPY_DATA_DIR": str(data_dir)},
                             capture_output=True, text=True, timeout=30)
        assert url.returncode == 0 and url.stdout.startswith("postgresql://"), url
        user = register(server.base_url)
        assert user.post("/api/todos/", {"title": "kept"}).status_code == 201
    finally:
        if stop_signal == signal.SIGINT:
            os.killpg(server.process.pid, signal.SIGINT)   # Ctrl-C: the whole foreground process group
        else:
            server.signal(stop_signal)
        assert server.process.wait(30) == 0, server.log()
    assert postgres_processes(data_dir) == []
    assert not (data_dir / "postmaster.pid").exists()

    # A second run reuses the data.
    again = ServerProcess(None, artifacts / f"embedded-{stop_signal.name}-2.log",
                          env={"TODOPY_DATA_DIR": str(data_dir)})
    try:
        again.wait_healthy(timeout=60)
        signed_in = requests.post(again.base_url + "/api/session/", timeout=10,
                                  json={"username": user.user["username"], "password": PASSWORD})
        assert signed_in.status_code == 200
        token = signed_in.json()["token"]
        todos = requests.get(again.base_url + "/api/todos/", headers={"Authorization": f"Bearer {token}"},
                             timeout=10).json()["todos"]
        assert [todo["title"] for todo in todos] == ["kept"]
    finally:
        again.stop()
    assert postgres_processes(data_dir) == []


@pytest.mark.parametrize("command", [[], ["serve"], ["migrate"], ["db-url"]])
def test_every_command_has_help(command):
    result = subprocess.run([TODOPY, *command, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: todopy")
    if command == ["serve"]:
        for flag in ("--host", "--port", "--workers", "DATABASE_URL"):
            assert flag in result.stdout


def test_db_url_prints_database_url_when_set():
    result = subprocess.run([TODOPY, "db-url"], env={**os.environ, "DATABASE_URL": "postgresql://example/db"},
                            capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout) == (0, "postgresql://example/db\n")


def test_a_bad_setting_is_refused_with_a_message_naming_it():
    result = subprocess.run([TODOPY, "serve"], env={**os.environ, "PORT": "eighty"},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "PORT must be an integer" in result.stderr


def test_an_unreachable_database_is_a_clear_error(tmp_path):
    result = subprocess.run([TODOPY, "migrate"], capture_output=True, text=True, timeout=30,
                            env={**os.environ, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert result.returncode == 1
    assert "cannot connect to the database" in result.stderr and "DATABASE_URL" in result.stderr
