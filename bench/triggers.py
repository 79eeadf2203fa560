"""The cost of the change-log + notify triggers on write throughput, measured with pgbench.

The same UPDATE workload (like the server's PUT) runs on a scratch database
twice: with the triggers, and after `ALTER TABLE todos DISABLE TRIGGER USER`.
Nobody listens on the scratch database; NOTIFY still queues and takes its
commit-time lock, as it does in production.
"""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import psycopg2

from bench.database import Database
from todopy.migrate import migrate

SCRATCH = "bench_triggers"
TODOS = 10_000
SEED = """
INSERT INTO users (id, username, password_hash) VALUES ('00000000-0000-0000-0000-000000000001', 'pgbench', '!');
INSERT INTO todos (id, owner, title)
SELECT md5(g::text)::uuid, '00000000-0000-0000-0000-000000000001', 'todo ' || g FROM generate_series(1, %(n)s) AS g;
"""
# One PUT's statement, keyed like the server's (id and owner), on a random todo.
SCRIPT = f"""\\set n random(1, {TODOS})
UPDATE todos SET title = 'pgbench ' || :n, completed = NOT completed
 WHERE id = md5(:n::text)::uuid AND owner = '00000000-0000-0000-0000-000000000001'
RETURNING id, title, completed, created_time, rev;
"""
TPS = re.compile(r"tps = ([\d.]+) \(without initial connection time\)")


def _scratch_dsn(database: Database) -> str:
    with database.conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {SCRATCH}")
        cur.execute(f"CREATE DATABASE {SCRATCH}")
    dsn = database.cluster.dsn(SCRATCH)
    migrate(dsn)
    conn = psycopg2.connect(dsn, application_name="bench")
    try:
        with conn, conn.cursor() as cur:
            cur.execute(SEED, {"n": TODOS})
    finally:
        conn.close()
    return dsn


def _pgbench(database: Database, script: Path, seconds: int, clients: int) -> float:
    cluster = database.cluster
    command = [str(cluster.bin_dir / "pgbench"), "-n", "-c", str(clients), "-j", "2", "-T", str(seconds),
               "-f", str(script), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", SCRATCH]
    env = {**os.environ, "PGPASSWORD": cluster.password_file.read_text().strip(), "PGAPPNAME": "bench-pgbench"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60)
    match = TPS.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"pgbench failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return float(match.group(1))


def measure(database: Database, seconds: int, clients: int) -> dict:
    """tps with and without the triggers, and the share of throughput they cost."""
    dsn = _scratch_dsn(database)
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(SCRIPT)
        script.flush()
        _pgbench(database, Path(script.name), 1, clients)                # warm caches
        with_triggers = _pgbench(database, Path(script.name), seconds, clients)
        conn = psycopg2.connect(dsn, application_name="bench")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("ALTER TABLE todos DISABLE TRIGGER USER")
        finally:
            conn.close()
        without_triggers = _pgbench(database, Path(script.name), seconds, clients)
    with database.conn.cursor() as cur:
        cur.execute(f"DROP DATABASE {SCRATCH}")
    return {"tps_with_triggers": with_triggers, "tps_without_triggers": without_triggers,
            "cost": 1.0 - with_triggers / without_triggers, "clients": clients, "seconds": seconds}
