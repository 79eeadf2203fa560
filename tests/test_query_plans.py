"""The change log's hot reads stay index look-ups whatever its size (a week of changes is kept).

The ringer's tick and the dispatcher's read run hundreds of times a second as
prepared statements, so after five runs PostgreSQL may plan them generically,
without their values, and by statistics that lag the log's growth. Each test
grows the log behind stale statistics, runs the statement as the server does,
and reads the plan it settled on.
"""
from __future__ import annotations


import psycopg2
import psycopg2.extensions
import pytest

from tests.pg import new_database
from todopy import db, prepared
from todopy.realtime.ringer import SESSION, since
from todopy.sqlfiles import queries

CHANGES_SQL = queries("changes")
OLD_CHANGES = 100_000


@pytest.fixture
def big_log(postgres, sql) -> str:
    """A database of its own whose change log grew to 100,000 rows since it was last analyzed."""
    dsn = new_database(postgres, sql)
    setup = psycopg2.connect(dsn)
    setup.autocommit = True
    with setup.cursor() as cur:
        cur.execute("ALTER TABLE changes SET (autovacuum_enabled = false)")   # the statistics stay stale
        cur.execute("ANALYZE changes")
        cur.execute("INSERT INTO changes (list_id, rev, kind, op, title, xid, changed_time)"
                    " SELECT gen_random_uuid(), 1, 'list', 'update', 'old', '3'::xid8, now() - interval '1 day'"
                    "   FROM generate_series(1, %s)", (OLD_CHANGES,))
    setup.close()
    return dsn


def settled_plan(conn: psycopg2.extensions.connection, query: str, params: dict) -> str:
    """The plan of `query` as the server runs it: prepared, after enough runs to go generic."""
    with conn.cursor() as cur:
        for _ in range(7):
            prepared.execute(cur, query, params)
            cur.fetchall()
    execute = conn.prepared[prepared.statement(query).name]
    with conn.cursor(cursor_factory=psycopg2.extensions.cursor) as plain:   # EXPLAIN's column has a space
        plain.execute("EXPLAIN " + execute, [params[name] for name in prepared.statement(query).params])
        return "\n".join(line for line, in plain.fetchall())


def test_a_tick_looks_up_new_xids_by_index(big_log):
    conn = db.connect(big_log)
    conn.autocommit = True
    held = psycopg2.connect(big_log)
    try:
        # An xid still in progress below the snapshot's xmax (a later one committed): the
        # snapshot lists it, and the tick's second half looks it up.
        with held.cursor() as cur:
            cur.execute("INSERT INTO users (username, password_hash) VALUES ('ringplan', '!')")
        with conn.cursor() as cur:
            cur.execute("INSERT INTO users (username, password_hash) VALUES ('ringplan2', '!')")
            cur.execute(SESSION)
            cur.execute("SELECT pg_current_snapshot()::text AS snapshot")
            snapshot = cur.fetchone().snapshot
        assert since(snapshot)["xip"], snapshot
        plan = settled_plan(conn, CHANGES_SQL["ring"], since(snapshot))
    finally:
        held.rollback()
        held.close()
        conn.close()
    assert "Seq Scan on changes" not in plan, plan
    assert plan.count("changes_xid") == 2, plan       # both halves: newer xids, and those in progress then


def test_the_dispatcher_reads_each_list_by_its_key_range(big_log):
    conn = db.connect(big_log)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT array_agg(DISTINCT list_id::text) AS lists FROM (SELECT list_id FROM changes"
                        " LIMIT 10) AS sample")
            lists = cur.fetchone().lists
        plan = settled_plan(conn, CHANGES_SQL["after"], {"lists": lists, "revs": [0] * len(lists), "limit": 5000})
    finally:
        conn.close()
    assert "Seq Scan on changes" not in plan and "Merge Join" not in plan, plan
    assert "Index Cond: ((list_id = cursor.list_id) AND (rev > cursor.rev))" in plan, plan
