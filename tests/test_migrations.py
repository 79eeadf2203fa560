"""Migrations apply from empty, re-apply as a no-op, and tolerate concurrent runs."""
from __future__ import annotations

import os
import subprocess
import uuid

import psycopg2
import pytest

from tests.support import TODOPY
from todopy import sqlfiles
from todopy.migrate import migrate


@pytest.fixture
def empty_database(postgres, dsn):
    """A brand-new database in the test cluster, dropped afterwards."""
    name = f"m_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(postgres.dsn("postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")  # a generated identifier, not data
    yield postgres.dsn(name)
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE {name} WITH (FORCE)")
    admin.close()


def applied_names(dsn: str) -> list[str]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT name FROM schema_migrations ORDER BY name")
        return [row[0] for row in cur.fetchall()]


def test_migrations_apply_from_empty_then_are_a_no_op(empty_database):
    names = [name for name, _ in sqlfiles.migrations()]
    assert names == sorted(names) and names[0].startswith("0001_")
    assert migrate(empty_database) == names
    assert migrate(empty_database) == []
    assert applied_names(empty_database) == names


def test_two_processes_migrating_at_once_apply_each_migration_once(empty_database):
    env = {**os.environ, "DATABASE_URL": empty_database}
    runs = [subprocess.Popen([TODOPY, "migrate"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=60) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert applied_names(empty_database) == [name for name, _ in sqlfiles.migrations()]
    summaries = sorted(out.strip().splitlines()[-1] for out, _ in outputs)
    assert summaries[0] == "applied 0 migration(s)", summaries
    assert summaries[1].startswith(f"applied {len(sqlfiles.migrations())} migration(s)"), summaries


def test_every_migration_runs_in_a_transaction(empty_database):
    """A failing migration leaves nothing half-applied (no COMMIT/BEGIN inside the files)."""
    for name, text in sqlfiles.migrations():
        upper = text.upper()
        assert "COMMIT;" not in upper and "BEGIN;" not in upper, name
