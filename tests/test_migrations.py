"""Migrations apply from empty, re-apply as a no-op, and tolerate concurrent runs."""
from __future__ import annotations

import ast
import difflib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

import psycopg2
import pytest

from tests import schema
from tests.support import PASSWORD, TODOPY
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


def test_the_schema_snapshot_is_what_the_migrations_build(postgres, empty_database):
    migrate(empty_database)
    built = schema.dump(postgres, empty_database)
    committed = schema.SNAPSHOT.read_text() if schema.SNAPSHOT.exists() else ""
    difference = "".join(difflib.unified_diff(committed.splitlines(True), built.splitlines(True),
                                              "sql/schema.sql (committed)", "the migrations (built)"))
    assert built == committed, (f"sql/schema.sql is not what the migrations build: run `{schema.REGENERATE}` "
                                f"and commit it\n{difference}")


def notified_channels(sql_text: str) -> set[str]:
    """The channels a piece of SQL sends notifications on: `pg_notify('<channel>', ...)` or `NOTIFY <channel>`."""
    return set(re.findall(r"pg_notify\(\s*'(\w+)'", sql_text, re.IGNORECASE)) | \
        set(re.findall(r"^\s*NOTIFY\s+(\w+)", sql_text, re.IGNORECASE | re.MULTILINE))


def test_every_channel_the_schema_and_queries_notify_is_one_the_realtime_layer_names():
    """No dead NOTIFY: a channel nobody LISTENs to costs every notifying commit the queue lock
    for nothing. The realtime layer holds the listening side (todopy/realtime/), so each
    channel must be a string it names."""
    sql = sqlfiles.sql_dir()
    text = schema.SNAPSHOT.read_text() + "".join(f.read_text() for f in (sql / "queries").iterdir())
    channels = notified_channels(text)
    realtime = Path(sqlfiles.__file__).parent / "realtime"
    named = {node.value for path in realtime.rglob("*.py") for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    assert channels and channels <= named, f"notified, yet never named by todopy/realtime/: {channels - named}"
    assert notified_channels("SELECT pg_notify('x', ''); SELECT 1;\n  NOTIFY y;") == {"x", "y"}


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


def test_the_shared_lists_migration_keeps_every_todo_and_old_resumes_are_exact_or_snapshots(
        empty_database, start_server):
    """A database at the single-owner schema (0007), with users, todos and change-log rows, migrated."""
    from werkzeug.security import generate_password_hash

    from tests.support import Api, Stream

    before = [(name, text) for name, text in sqlfiles.migrations() if name < "0008"]
    conn = psycopg2.connect(empty_database)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE schema_migrations (name text PRIMARY KEY,"
                    " applied_time timestamptz NOT NULL DEFAULT now())")
        for name, text in before:
            cur.execute(text)
            cur.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
        password_hash = generate_password_hash(PASSWORD, method="scrypt")
        users = {}
        for name in ("ann", "ben"):
            cur.execute("INSERT INTO users (username, password_hash) VALUES (%s, %s) RETURNING id",
                        (name, password_hash))
            users[name] = cur.fetchone()[0]
        cur.execute("INSERT INTO todos (owner, title, completed) SELECT %s, 'ann ' || n, n %% 2 = 0"
                    " FROM generate_series(1, 5) n", (users["ann"],))
        cur.execute("INSERT INTO todos (owner, title) VALUES (%s, 'ben''s only')", (users["ben"],))
        cur.execute("UPDATE todos SET title = title || ' (edited)' WHERE title = 'ann 1'")
        cur.execute("SELECT id, owner, title, completed, rev, created_time FROM todos ORDER BY id")
        old_todos = cur.fetchall()
        cur.execute("SELECT max(rev) FROM changes")
        (head,) = cur.fetchone()
    conn.close()

    assert migrate(empty_database) == [name for name, _ in sqlfiles.migrations() if name >= "0008"]

    conn = psycopg2.connect(empty_database)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT t.id, l.owner, t.title, t.completed, t.rev, t.created_time"
                    " FROM todos t JOIN lists l ON l.id = t.list_id AND l.personal ORDER BY t.id")
        assert cur.fetchall() == old_todos      # every todo, in its owner's personal list, data intact
        cur.execute("SELECT owner, rev, horizon, todo_count FROM lists ORDER BY owner")
        counts = {users["ann"]: 5, users["ben"]: 1}
        assert sorted(cur.fetchall()) == sorted((owner, head, head, n) for owner, n in counts.items())
    conn.close()

    server = start_server(database=empty_database)
    token = Api(server.base_url).post("/api/session/", {"username": "ann", "password": PASSWORD}).json()["token"]
    ann = Api(server.base_url, token)
    assert len(ann.list_todos()["todos"]) == 5 and ann.list_todos()["rev"] == head
    # A stream that was at the old head resumes exactly: nothing changed in its list since.
    at_head = Stream(server.ws_url, f"/api/todos/?since={head}", token)
    behind = Stream(server.ws_url, f"/api/todos/?since={head - 1}", token)
    try:
        assert at_head.sync() == ([], {"type": "ready", "rev": head})
        (snapshot,), ready = behind.sync()            # older: behind the horizon, a snapshot
        assert snapshot["type"] == "snapshot" and len(snapshot["todos"]) == 5 and ready["rev"] == head
        created = ann.create_todo("after the migration")
        assert created["rev"] > head
        assert at_head.recv(10)["todo"] == created
    finally:
        at_head.close(), behind.close()
