"""The wheel alone serves the whole app: built from the sdist, installed into a bare virtualenv.

What `make dist` makes is what a user installs without the repository: no make,
no node, no constraints.txt, dependencies resolved by pip from the package
index (through pip's cache). The server it installs must find its SQL and its
front end inside the package, start an embedded PostgreSQL when DATABASE_URL is
unset, and serve the API, the page and the streams.

Set TODOPY_TEST_WHEEL to a wheel (e.g. the one `make dist` left in dist/) to
test that one instead of building afresh.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.support import Stream, register, wait_for
from todopy.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
# The wheel test builds and installs packages: give it more than the default per-test limit.
pytestmark = pytest.mark.timeout(900)


def run(command: list[str], **kwargs: object) -> str:
    """Run `command`; on failure, show its output."""
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(command)} exited with {result.returncode}:\n{result.stdout[-5000:]}"
    return result.stdout


def clean_environment() -> dict[str, str]:
    """This process's environment without anything that would point at the repository or its venv."""
    dropped = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PIP_CONSTRAINT", "PIP_REQUIREMENT", "DATABASE_URL",
               "PROMETHEUS_MULTIPROC_DIR")
    environment = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("TODOPY_")}
    # The venv we run in must not be found first on PATH either.
    environment["PATH"] = os.pathsep.join(p for p in environment.get("PATH", "").split(os.pathsep)
                                          if Path(p).resolve() != Path(sys.executable).parent.resolve())
    return environment


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel under test: TODOPY_TEST_WHEEL, or one built here from an sdist, as `make dist` does."""
    given = os.environ.get("TODOPY_TEST_WHEEL")
    if given:
        return Path(given).resolve()
    if not (ROOT / "static" / "dist" / "index.html").exists():
        pytest.fail("static/dist is not built: run the tests through `make test` (it builds the front end)")
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=out, env=clean_environment())
    (sdist,) = out.glob("todopy-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert expected_package_data() <= names, sorted(expected_package_data() - names)
    (built,) = out.glob("todopy-*.whl")
    return built


def expected_package_data() -> set[str]:
    """The SQL and built front-end files, as paths inside the package."""
    sql = {f"todopy/sql/{p.relative_to(ROOT / 'sql')}" for p in (ROOT / "sql").rglob("*.sql")}
    assets = {f"todopy/assets/{p.relative_to(ROOT / 'static' / 'dist')}"
              for p in (ROOT / "static" / "dist").rglob("*") if p.is_file()}
    return sql | assets


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare virtualenv with the wheel (and what pip resolves for it) installed; its bin directory."""
    venv = tmp_path_factory.mktemp("venv")
    run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)], env=clean_environment())
    run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], cwd=venv, env=clean_environment())
    return venv / "bin"


@pytest.fixture(scope="module")
def served(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`todopy serve` from the bare virtualenv, on its embedded PostgreSQL; the base URL."""
    home = tmp_path_factory.mktemp("home")
    port = free_port()
    environment = {**clean_environment(), "TODOPY_DATA_DIR": str(home / "pg")}
    log_path = home / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([str(installed / "todopy"), "serve", "--port", str(port)], cwd=home,
                                   env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"todopy serve exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                return requests.get(base_url + "/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(healthy, timeout=90, interval=0.2)
        yield base_url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # Stopping the server stops the PostgreSQL it started.
    wait_for(lambda: not (home / "pg" / "postmaster.pid").exists(), timeout=15)


def test_the_wheel_carries_the_sql_and_the_front_end(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert expected_package_data() <= names, sorted(expected_package_data() - names)


def test_the_installed_server_uses_its_own_package(installed: Path) -> None:
    where = run([str(installed / "python"), "-c", "import todopy; print(todopy.__file__)"], cwd=installed,
                env=clean_environment())
    assert Path(where.strip()).is_relative_to(installed.parent), where


def test_api_page_and_stream(served: str) -> None:
    started = time.monotonic()
    user = register(served)
    response = user.post("/api/todos/", {"title": "from the wheel"})
    assert response.status_code == 201, response.text
    todo = response.json()
    assert user.list_todos()["todos"] == [todo]

    page = requests.get(served + "/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    (script,) = re.findall(r'<script[^>]+src="([^"]+\.js)"', page.text)
    asset = requests.get(served + script, timeout=10)
    assert asset.status_code == 200 and "javascript" in asset.headers["Content-Type"]
    assert len(asset.content) > 1000

    stream = Stream(served.replace("http://", "ws://"), "/api/todos/", user.token)
    try:
        messages, ready = stream.sync()
    finally:
        stream.close()
    assert [m["type"] for m in messages] == ["snapshot"]
    assert messages[0]["todos"] == [todo]
    assert ready["rev"] >= messages[0]["rev"] >= todo["rev"]
    user.http.close()
    assert time.monotonic() - started < 30
