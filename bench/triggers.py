"""What todopy's triggers cost durable writes, measured with pgbench, with the server running.

The same UPDATE workload (like the server's PUT) runs on a scratch database with
`fsync` and `synchronous_commit` on, as production runs: each pgbench client
updates the todos of its own user's list (no two writers share a list, as in
production most don't), once with the triggers and once after `ALTER TABLE todos
DISABLE TRIGGER USER`. A todopy server is connected to the scratch database
throughout, so its ringer ticks over the change log as it would in production.
Measured with 16 writers (where a design that serialises commits falls over)
and with 1 (nothing to serialise). Then, with the server stopped, what each of
the change log's indexes costs the same 16 writers (INDEX_VARIANTS).
"""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import psycopg2

from bench.database import Database
from bench.servers import start_todopy

SCRATCH = "bench_triggers"
WRITERS = 16
TODOS_PER_WRITER = 500
SEED = """
INSERT INTO users (id, username, password_hash)
SELECT ('00000000-0000-0000-0000-' || lpad(w::text, 12, '0'))::uuid, 'pgbench' || w, '!'
  FROM generate_series(1, %(writers)s) AS w;
INSERT INTO todos (id, list_id, title)
SELECT md5((w * 100000 + g)::text)::uuid, personal_list(('00000000-0000-0000-0000-' || lpad(w::text, 12, '0'))::uuid),
       'todo ' || g
  FROM generate_series(1, %(writers)s) AS w CROSS JOIN generate_series(1, %(todos)s) AS g;
"""
# One PUT's statement, keyed like the server's (id and list), on a random todo of this client's list.
SCRIPT = f"""\\set n random(1, {TODOS_PER_WRITER})
\\set w :client_id + 1
UPDATE todos SET title = 'pgbench ' || :n, completed = NOT completed
 WHERE id = md5((:w * 100000 + :n)::text)::uuid
   AND list_id = personal_list(('00000000-0000-0000-0000-' || lpad(:w::text, 12, '0'))::uuid)
RETURNING id, title, completed, created_time, rev;
"""
# The change log's indexes, each measured by what it costs the same writes (16 writers, triggers on,
# no server: its ringer's scans would blur the writes' own cost): shipped, then one change at a time.
INDEX_VARIANTS = {
    "shipped (PK, btree on xid, BRIN on changed_time)": ("", ""),
    "without the BRIN on changed_time": ("DROP INDEX changes_changed_time",
                                         "CREATE INDEX changes_changed_time ON changes USING brin (changed_time)"),
    "btree on changed_time instead of the BRIN": (
        "DROP INDEX changes_changed_time; CREATE INDEX changes_time_btree ON changes (changed_time)",
        "DROP INDEX changes_time_btree;"
        " CREATE INDEX changes_changed_time ON changes USING brin (changed_time)"),
    "without the btree on xid": ("DROP INDEX changes_xid", "CREATE INDEX changes_xid ON changes (xid)"),
}
TPS = re.compile(r"tps = ([\d.]+) \(without initial connection time\)")


def _scratch_dsn(database: Database) -> str:
    dsn = database.scratch(SCRATCH)
    conn = psycopg2.connect(dsn, application_name="bench")
    try:
        with conn, conn.cursor() as cur:
            cur.execute(SEED, {"writers": WRITERS, "todos": TODOS_PER_WRITER})
    finally:
        conn.close()
    return dsn


def _settings(dsn: str) -> dict[str, str]:
    conn = psycopg2.connect(dsn, application_name="bench")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit',"
                        " 'wal_sync_method', 'full_page_writes')")
            return dict(cur.fetchall())
    finally:
        conn.close()


def _pgbench(database: Database, script: Path, seconds: int, clients: int) -> float:
    cluster = database.cluster
    command = [str(cluster.bin_dir / "pgbench"), "-n", "-c", str(clients), "-j", str(min(clients, 2)),
               "-T", str(seconds), "-f", str(script), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
               SCRATCH]
    env = {**os.environ, "PGPASSWORD": cluster.password_file.read_text().strip(), "PGAPPNAME": "bench-pgbench"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60)
    match = TPS.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"pgbench failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return float(match.group(1))


def _ddl(dsn: str, statements: str) -> None:
    conn = psycopg2.connect(dsn, application_name="bench")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statements)
    finally:
        conn.close()


def _set_triggers(dsn: str, enabled: bool) -> None:
    _ddl(dsn, f"ALTER TABLE todos {'ENABLE' if enabled else 'DISABLE'} TRIGGER USER")


def _index_costs(dsn: str, database: Database, script: Path, seconds: int) -> dict:
    """Durable writes (16 writers) per change-log index variant, each against no triggers alternately."""
    costs = {}
    for name, (apply, undo) in INDEX_VARIANTS.items():
        if apply:
            _ddl(dsn, apply)
        try:
            _set_triggers(dsn, False)
            baseline = _pgbench(database, script, seconds, WRITERS)
            _set_triggers(dsn, True)
            tps = _pgbench(database, script, seconds, WRITERS)
        finally:
            _set_triggers(dsn, True)
            if undo:
                _ddl(dsn, undo)
        costs[name] = {"tps": round(tps, 1), "tps_without_triggers": round(baseline, 1),
                       "ratio": round(tps / baseline, 3)}
        print(f"[bench]   change log {name}: {tps:.0f} tps, {tps / baseline:.0%} of no triggers", flush=True)
    return costs


def measure(database: Database, seconds: int, log_dir: Path, pool_size: int) -> dict:
    """tps with and without the triggers, at 16 writers and at 1, with the server running."""
    dsn = _scratch_dsn(database)
    settings = _settings(dsn)
    if settings.get("fsync") != "on" or settings.get("synchronous_commit") != "on":
        raise RuntimeError(f"durable writes need fsync and synchronous_commit on: {settings}")
    server = start_todopy(dsn, log_dir, pool_size, name="todopy-triggers")
    results: dict = {"settings": settings, "seconds": seconds}
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
            script.write(SCRIPT)
            script.flush()
            path = Path(script.name)
            _pgbench(database, path, 2, WRITERS)                       # warm caches
            for clients in (WRITERS, 1):
                # Alternate, twice each, so that a drift of the machine hits both sides alike.
                with_t, without_t = [], []
                for _ in range(2):
                    _set_triggers(dsn, True)
                    with_t.append(_pgbench(database, path, seconds, clients))
                    _set_triggers(dsn, False)
                    without_t.append(_pgbench(database, path, seconds, clients))
                _set_triggers(dsn, True)
                with_tps, without_tps = sum(with_t) / 2, sum(without_t) / 2
                results[f"writers_{clients}"] = {"tps_with_triggers": round(with_tps, 1),
                                                 "tps_without_triggers": round(without_tps, 1),
                                                 "ratio": with_tps / without_tps}
            server.stop()
            results["change_log_indexes"] = _index_costs(dsn, database, path, seconds)
    finally:
        server.stop()
    database.drop(SCRATCH)
    return results
