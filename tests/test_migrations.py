"""Migrations apply from empty, re-apply as a no-op, and tolerate concurrent runs."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

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


def test_no_migration_file_ends_its_own_transaction():
    """The files leave transactions to `migrate` (a COMMIT inside would split one)."""
    for name, text in sqlfiles.migrations():
        upper = text.upper()
        assert "COMMIT;" not in upper and "BEGIN;" not in upper, name


FAILING = {
    # Fails half-way through its own statements.
    "in_the_migration": "CREATE TABLE half_applied (id int);\nSELECT 1 / 0;\n",
    # Runs whole, then its bookkeeping row cannot be written: both must go, or a
    # re-run would apply it twice (or never, were the row written without it).
    "in_its_bookkeeping": """
CREATE TABLE half_applied (id int);
CREATE FUNCTION refuse_bookkeeping() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'no bookkeeping today'; END $$;
CREATE TRIGGER refuse_bookkeeping BEFORE INSERT ON schema_migrations
    FOR EACH ROW EXECUTE FUNCTION refuse_bookkeeping();
""",
}


@pytest.mark.parametrize("failure", sorted(FAILING))
def test_a_failing_migration_leaves_neither_its_changes_nor_its_bookkeeping_row(empty_database, tmp_path,
                                                                               failure):
    """`todopy migrate` of a package whose newest migration fails: each migration is one transaction."""
    package = tmp_path / "todopy"       # the installed package, plus one migration that fails
    shutil.copytree(Path(sysconfig.get_paths()["purelib"]) / "todopy", package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (package / "sql" / "9999_fails.sql").write_text(FAILING[failure])
    done = subprocess.run([sys.executable, "-m", "todopy", "migrate"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "DATABASE_URL": empty_database,
                                                      "PYTHONPATH": str(tmp_path)})
    assert done.returncode != 0, done
    assert "9999_fails" not in applied_names(empty_database)
    assert applied_names(empty_database) == [name for name, _ in sqlfiles.migrations()], "the others applied"
    with psycopg2.connect(empty_database) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('half_applied'), to_regproc('refuse_bookkeeping')")
        assert cur.fetchone() == (None, None), "the failed migration left something behind"
