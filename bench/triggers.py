"""What the capture costs durable writes, measured with pgbench from outside, servers running.

The same UPDATE workload (like the server's PUT) runs on a scratch database with
`fsync` and `synchronous_commit` on, as production runs, against three tables:
todopy's `todos` with its triggers, the peer's `peer.todos` with its NOTIFY
trigger, and todopy's `todos` after `ALTER TABLE todos DISABLE TRIGGER USER`
(the limit: the same writes, captured by nobody). todopy's server and the peer
are connected to the scratch database throughout, so todopy's ringer ticks over
the change log and the peer's LISTEN connection takes every notification.

- 16 writers over 16 lists (each pgbench client updates its own list's todos,
  as most production writers do), and 1 writer;
- the hot list: the same 16 writers all on one list (writers of one list queue
  through its commit by design);
- the harder case (issue 20): 16 writers over 16 lists with one stream open on
  each list, so the server reads and delivers every change while ~10,000/s flow;
  median of three alternated rounds;
- then, with the servers stopped, what each of the change log's indexes costs
  the 16 writers (INDEX_VARIANTS).
Rounds alternate between the tables, so that a drift of the machine hits all alike.
"""
from __future__ import annotations

import os
import re
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg2

from bench.database import Database
from bench.loadgen import StreamClient
from bench.peer import seed as peer_seed
from bench.plan import Plan
from bench.servers import HOST, Server, start_peer, start_todopy

SCRATCH = "bench_triggers"
WRITERS = 16
TODOS_PER_WRITER = 500
STREAM_SECRET = "pgbench-stream-"
SEED = """
INSERT INTO users (id, username, password_hash)
SELECT ('00000000-0000-0000-0000-' || lpad(w::text, 12, '0'))::uuid, 'pgbench' || w, '!'
  FROM generate_series(1, %(writers)s) AS w;
INSERT INTO todos (id, list_id, title)
SELECT md5((w * 100000 + g)::text)::uuid, personal_list(('00000000-0000-0000-0000-' || lpad(w::text, 12, '0'))::uuid),
       'todo ' || g
  FROM generate_series(1, %(writers)s) AS w CROSS JOIN generate_series(1, %(todos)s) AS g;
INSERT INTO sessions (token_hash, user_id, expires_time)
SELECT sha256(convert_to(%(secret)s || w, 'UTF8')), ('00000000-0000-0000-0000-' || lpad(w::text, 12, '0'))::uuid,
       now() + interval '1 day'
  FROM generate_series(1, %(writers)s) AS w;
CREATE TABLE bench_writer_lists (w int PRIMARY KEY, list_id uuid NOT NULL);
INSERT INTO bench_writer_lists
SELECT w, personal_list(('00000000-0000-0000-0000-' || lpad(w::text, 12, '0'))::uuid)
  FROM generate_series(1, %(writers)s) AS w;
"""
# One PUT's statement, keyed like each server's (id and list, or id and user), on a random todo of
# this client's list (`:w` is the client's writer) or, for the hot list, of writer 1's. The list's id
# comes from a seeded table: `personal_list()`, a SQL function, is planned again at every call; with
# the statement's own planning (now prepared) that was a quarter of the backend's CPU per write in
# every subject, the limit's too (perf, one writer), which neither server's write spends.
TODOPY_WHERE = "list_id = (SELECT b.list_id FROM bench_writer_lists b WHERE b.w = :w)"
PEER_WHERE = "user_id = ('00000000-0000-0000-0000-' || lpad(:w::text, 12, '0'))::uuid"
SCRIPT = """\\set n random(1, {todos})
\\set w {writer}
UPDATE {table} SET title = 'pgbench ' || :n, completed = NOT completed
 WHERE id = md5((:w * 100000 + :n)::text)::uuid
   AND {where}
RETURNING id, title, completed, created_time, rev;
"""
SPREAD, HOT = ":client_id + 1", "1"
TABLES = {"todopy": ("todos", TODOPY_WHERE), "peer": ("peer.todos", PEER_WHERE), "limit": ("todos", TODOPY_WHERE)}
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
PROCESSED = re.compile(r"number of transactions actually processed: (\d+)")


def _scratch_dsn(database: Database) -> str:
    dsn = database.scratch(SCRATCH)
    conn = psycopg2.connect(dsn, application_name="bench")
    try:
        with conn, conn.cursor() as cur:
            cur.execute(SEED, {"writers": WRITERS, "todos": TODOS_PER_WRITER, "secret": STREAM_SECRET})
    finally:
        conn.close()
    peer_seed.install(dsn)
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


class Scripts:
    """The pgbench scripts, one per (table, spread or hot), written once to temp files."""

    def __init__(self, directory: Path) -> None:
        self.paths: dict[tuple[str, str], Path] = {}
        for subject, (table, where) in TABLES.items():
            for spread, writer in (("spread", SPREAD), ("hot", HOT)):
                path = directory / f"{subject}-{spread}.sql"
                path.write_text(SCRIPT.format(todos=TODOS_PER_WRITER, writer=writer, table=table, where=where))
                self.paths[subject, spread] = path


def _pgbench(database: Database, script: Path, seconds: int, clients: int) -> dict[str, float]:
    cluster = database.cluster
    # Prepared statements, as both servers run their writes.
    command = [str(cluster.bin_dir / "pgbench"), "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(clients, 2)),
               "-T", str(seconds), "-f", str(script), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
               SCRATCH]
    env = {**os.environ, "PGPASSWORD": cluster.password_file.read_text().strip(), "PGAPPNAME": "bench-pgbench"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60)
    match = TPS.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"pgbench failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    processed = PROCESSED.search(done.stdout)
    return {"tps": float(match.group(1)), "transactions": int(processed.group(1)) if processed else 0}


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


def _round(database: Database, dsn: str, scripts: Scripts, subject: str, spread: str, seconds: int,
           clients: int) -> dict[str, float]:
    """One pgbench run on `subject`'s table; the limit is todopy's table with its triggers off."""
    _set_triggers(dsn, subject != "limit")
    try:
        return _pgbench(database, scripts.paths[subject, spread], seconds, clients)
    finally:
        _set_triggers(dsn, True)


def _compare(database: Database, dsn: str, scripts: Scripts, spread: str, seconds: int, clients: int,
             rounds: int, streams: dict[str, Server] | None = None) -> dict[str, Any]:
    """`rounds` alternated runs of todopy, the peer and the limit; the median tps of each and the ratios.

    With `streams`, each server's run has one stream open per writer's list, and counts what it delivered."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in TABLES}
    for _ in range(rounds):
        for subject in TABLES:
            server = (streams or {}).get(subject)
            if server is None:
                runs[subject].append(_round(database, dsn, scripts, subject, spread, seconds, clients))
            else:
                runs[subject].append(_streamed_round(database, dsn, scripts, subject, server, seconds, clients))
    result: dict[str, Any] = {"clients": clients, "rounds": rounds, "seconds": seconds, "runs": runs}
    for subject, done in runs.items():
        result[f"{subject}_tps"] = round(statistics.median(run["tps"] for run in done), 1)
    for subject in ("todopy", "peer"):
        result[f"{subject}_ratio"] = result[f"{subject}_tps"] / result["limit_tps"]
    return result


def _streamed_round(database: Database, dsn: str, scripts: Scripts, subject: str, server: Server, seconds: int,
                    clients: int) -> dict[str, float]:
    """A pgbench run while `server` streams every writer's list to a client that counts the changes."""
    spec = {"scenario": "burst", "host": HOST, "port": server.port,
            "streams": [[f"{STREAM_SECRET}{w}", "/api/todos/"] for w in range(1, WRITERS + 1)],
            "writes": [], "concurrency": 1, "expected_frames": 10**9, "connect_concurrency": WRITERS,
            "read_pause": 0.05, "timeout": seconds + 30, "deadline": seconds + 120}
    client = StreamClient(spec, server.log_path.with_name("triggers-streams.log"))
    try:
        opened = client.next("open", timeout=60)
        if opened["failed"]:
            raise RuntimeError(f"{subject}: {opened['failed']} streams failed to open: {opened['errors']}")
        run = _round(database, dsn, scripts, subject, "spread", seconds, clients)
        delivered = client.next("burst", timeout=seconds + 120)
    finally:
        client.finish()
    return {**run, "delivered": delivered["received"]}


def _index_costs(dsn: str, database: Database, scripts: Scripts, seconds: int) -> dict:
    """Durable writes (16 writers) per change-log index variant, each against no triggers alternately."""
    costs = {}
    for name, (apply, undo) in INDEX_VARIANTS.items():
        if apply:
            _ddl(dsn, apply)
        try:
            baseline = _round(database, dsn, scripts, "limit", "spread", seconds, WRITERS)["tps"]
            tps = _round(database, dsn, scripts, "todopy", "spread", seconds, WRITERS)["tps"]
        finally:
            if undo:
                _ddl(dsn, undo)
        costs[name] = {"tps": round(tps, 1), "tps_without_triggers": round(baseline, 1),
                       "ratio": round(tps / baseline, 3)}
        print(f"[bench]   change log {name}: {tps:.0f} tps, {tps / baseline:.0%} of no triggers", flush=True)
    return costs


def _say(name: str, figures: dict[str, Any]) -> None:
    print(f"[bench]   {name}: todopy {figures['todopy_tps']:.0f} tps ({figures['todopy_ratio']:.0%}), peer "
          f"{figures['peer_tps']:.0f} tps ({figures['peer_ratio']:.0%}), limit {figures['limit_tps']:.0f} tps",
          flush=True)


def measure(database: Database, plan: Plan, log_dir: Path, pool_size: int) -> dict:
    """tps of todopy, the peer and the limit at 16 writers, 1, the hot list and the harder case; index costs."""
    seconds = plan.pgbench_seconds
    dsn = _scratch_dsn(database)
    settings = _settings(dsn)
    if settings.get("fsync") != "on" or settings.get("synchronous_commit") != "on":
        raise RuntimeError(f"durable writes need fsync and synchronous_commit on: {settings}")
    servers = {"todopy": start_todopy(dsn, log_dir, pool_size, name="todopy-triggers")}
    results: dict = {"settings": settings, "seconds": seconds}
    try:
        servers["peer"] = start_peer(dsn, log_dir, pool_size, name="peer-triggers")
        with tempfile.TemporaryDirectory(prefix="todopy-pgbench-") as directory:
            scripts = Scripts(Path(directory))
            for subject in TABLES:                                          # warm caches
                _round(database, dsn, scripts, subject, "spread", 1, WRITERS)
            for clients in (WRITERS, 1):
                results[f"writers_{clients}"] = _compare(database, dsn, scripts, "spread", seconds, clients, 2)
                _say(f"{WRITERS} writers over {WRITERS} lists" if clients == WRITERS else "1 writer",
                     results[f"writers_{clients}"])
            results["hot_list"] = _compare(database, dsn, scripts, "hot", seconds, WRITERS, 2)
            _say(f"{WRITERS} writers on one list", results["hot_list"])
            results["streamed"] = _compare(database, dsn, scripts, "spread", plan.harder_seconds, WRITERS,
                                           plan.harder_rounds, streams=servers)
            _say(f"{WRITERS} writers, every list streamed (median of {plan.harder_rounds})", results["streamed"])
            for server in servers.values():
                server.stop()
            results["change_log_indexes"] = _index_costs(dsn, database, scripts, seconds)
    finally:
        for server in servers.values():
            server.stop()
    database.drop(SCRATCH)
    return results
