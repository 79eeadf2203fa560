"""Fixtures: one throwaway PostgreSQL per test run, one shared server, and servers on demand."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

import psycopg2
import psycopg2.errors
import pytest

from tests.support import Api, ServerProcess, register, start_postgres
from todopy.embedded import EmbeddedPostgres
from todopy.migrate import migrate

ARTIFACTS = Path(os.environ.get("TODOPY_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL cluster for the whole run, migrated; stopped at the end."""
    cluster = start_postgres(tmp_path_factory.mktemp("pg") / "data")
    migrate(cluster.dsn())
    yield cluster
    cluster.stop("immediate")


@pytest.fixture(scope="session")
def dsn(postgres: EmbeddedPostgres) -> str:
    return postgres.dsn()


@pytest.fixture
def sql(dsn: str) -> Iterator[Callable]:
    """Run one statement as a separate client (like psql); returns the rows, if any."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True

    def run(statement: str, params: tuple | dict | None = None) -> list[tuple]:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []

    yield run
    conn.close()


@pytest.fixture(scope="session")
def server(dsn: str, artifacts: Path) -> Iterator[ServerProcess]:
    """The shared server: most black-box tests talk to it (each with fresh users)."""
    process = ServerProcess(dsn, artifacts / "server.log", env={"TODOPY_LOGIN_COOLDOWN": "2"})
    process.wait_healthy()
    yield process
    process.stop()


@pytest.fixture
def start_server(dsn: str, artifacts: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., ServerProcess]]:
    """Start extra servers with their own settings; all stopped after the test."""
    started: list[ServerProcess] = []

    def start(env: dict[str, str] | None = None, args: tuple[str, ...] = (), database: str | None = dsn,
              wait: bool = True, open_files: tuple[int, int] | None = None) -> ServerProcess:
        name = request.node.name.replace("/", "_")[:80]
        process = ServerProcess(database, artifacts / f"server-{name}-{len(started)}.log", env=env, args=args,
                                open_files=open_files)
        started.append(process)
        if wait:
            process.wait_healthy()
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def alice(server: ServerProcess) -> Api:
    return register(server.base_url)


@pytest.fixture
def bob(server: ServerProcess) -> Api:
    return register(server.base_url)


@pytest.fixture
def anonymous(server: ServerProcess) -> Api:
    return Api(server.base_url)


@pytest.fixture(autouse=True)
def clean_database(request: pytest.FixtureRequest) -> None:
    """Each test starts without users or todos (the change log and its revs carry on)."""
    if "postgres" not in request.fixturenames and "server" not in request.fixturenames:
        return
    dsn = request.getfixturevalue("dsn")
    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            # A browser of the previous test may still be writing. Its keyed write holds its
            # idempotency key before the todos, so the tables are taken in that order; a deadlock
            # with any other order is retried.
            for attempt in range(3):
                try:
                    cur.execute("TRUNCATE users, sessions, idempotency_keys, lists, memberships, todos,"
                                " login_throttle")
                    break
                except psycopg2.errors.DeadlockDetected:
                    if attempt == 2:
                        raise
    finally:
        conn.close()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak-seconds", type=float, default=float(os.environ.get("SOAK_SECONDS") or 30),
                     help="duration of the soak test (default: SOAK_SECONDS, else 30)")


# Setting up, checking and tearing down a soak takes its time besides the soak itself.
SOAK_OVERHEAD_S = 240


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A soak's timeout follows its duration (the project-wide `timeout` would cut a long one short)."""
    seconds = config.getoption("--soak-seconds")
    for item in items:
        if "soak_seconds" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(seconds + SOAK_OVERHEAD_S))


@pytest.fixture
def soak_seconds(request: pytest.FixtureRequest) -> float:
    return request.config.getoption("--soak-seconds")
