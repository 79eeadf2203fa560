"""The triggers log every change per list, whoever writes (psql included), without NOTIFY or a global lock."""
from __future__ import annotations

import json
import select
import threading
import time

import psycopg2
import pytest

from tests.pg import new_database
from todopy.sqlfiles import queries


def new_user(sql, name: str) -> tuple[str, str]:
    """A user made with plain SQL, and the personal list the trigger gave them."""
    user_id = sql("INSERT INTO users (username, password_hash) VALUES (%s, 'x') RETURNING id", (name,))[0][0]
    return user_id, sql("SELECT personal_list(%s)", (user_id,))[0][0]


def list_rev(sql, list_id: str) -> int:
    return sql("SELECT rev FROM lists WHERE id = %s", (list_id,))[0][0]


def test_plain_sql_writes_take_their_lists_next_revs_and_are_logged(sql):
    _, list_id = new_user(sql, "psql_user")
    start = list_rev(sql, list_id)
    # The rev is assigned at commit: inside the writing statement a new todo's is still 0.
    todo_id, provisional = sql("INSERT INTO todos (list_id, title) VALUES (%s, 'from psql') RETURNING id, rev",
                               (list_id,))[0]
    rev = sql("SELECT rev FROM todos WHERE id = %s", (todo_id,))[0][0]
    assert provisional == 0 and rev == start + 1 == list_rev(sql, list_id)
    assert sql("SELECT kind, op, todo_id, title, completed FROM changes WHERE list_id = %s AND rev = %s",
               (list_id, rev)) == [("todo", "insert", todo_id, "from psql", False)]

    sql("UPDATE todos SET completed = true WHERE id = %s", (todo_id,))
    new_rev = sql("SELECT rev FROM todos WHERE id = %s", (todo_id,))[0][0]
    assert new_rev == rev + 1
    assert sql("SELECT op, completed, was_completed FROM changes WHERE list_id = %s AND rev = %s",
               (list_id, new_rev)) == [("update", True, False)]

    sql("DELETE FROM todos WHERE id = %s", (todo_id,))
    assert list_rev(sql, list_id) == new_rev + 1
    assert sql("SELECT op, todo_id, title FROM changes WHERE list_id = %s AND rev = %s",
               (list_id, new_rev + 1)) == [("delete", todo_id, "from psql")]

    sql("UPDATE lists SET title = 'Renamed' WHERE id = %s", (list_id,))
    assert sql("SELECT kind, op, title FROM changes WHERE list_id = %s AND rev = %s",
               (list_id, new_rev + 2)) == [("list", "update", "Renamed")]


def test_a_bulk_statement_takes_consecutive_revs_of_its_list(sql):
    _, list_id = new_user(sql, "bulk_user")
    start = list_rev(sql, list_id)
    sql("INSERT INTO todos (list_id, title) SELECT %s, 't' || n FROM generate_series(1, 50) n", (list_id,))
    revs = sorted(row[0] for row in sql("SELECT rev FROM todos WHERE list_id = %s", (list_id,)))
    assert revs == list(range(start + 1, start + 51))
    assert sql("SELECT count(*) FROM changes WHERE list_id = %s AND rev > %s", (list_id, start))[0][0] == 50


def test_a_statements_revs_follow_the_list_whatever_order_it_wrote_the_rows(sql):
    """Rows written newest first (the plan's order) still take revs oldest first, one todo's changes in the
    order they were written, and a member added in the same transaction comes after them."""
    _, list_id = new_user(sql, "order_user")
    other, _ = new_user(sql, "order_member")
    sql("INSERT INTO todos (list_id, title, created_time)"
        " SELECT %s, 't' || n, now() - n * interval '1 minute' FROM generate_series(1, 6) n", (list_id,))
    start = list_rev(sql, list_id)
    sql("UPDATE todos SET completed = true WHERE list_id = %s;"
        " UPDATE todos SET title = title || ' again' WHERE list_id = %s AND title = 't3';"
        " INSERT INTO memberships (list_id, user_id, role) VALUES (%s, %s, 'viewer')",
        (list_id, list_id, list_id, other))
    logged = sql("SELECT kind, title FROM changes WHERE list_id = %s AND rev > %s ORDER BY rev", (list_id, start))
    assert logged == [("todo", "t6"), ("todo", "t5"), ("todo", "t4"), ("todo", "t3"), ("todo", "t3 again"),
                      ("todo", "t2"), ("todo", "t1"), ("member", None)]


def test_revs_of_different_lists_are_independent(sql):
    _, first = new_user(sql, "first_user")
    _, second = new_user(sql, "second_user")
    before = list_rev(sql, second)
    sql("INSERT INTO todos (list_id, title) SELECT %s, 't' FROM generate_series(1, 5)", (first,))
    assert list_rev(sql, second) == before


def rows_read(plan: dict, relation: str) -> int:
    """How many rows the nodes of an EXPLAIN ANALYZE plan read from `relation`, removed ones included."""
    here = plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0) if plan.get("Relation Name") == relation else 0
    return here + sum(rows_read(child, relation) for child in plan.get("Plans", ()))


def test_a_resume_too_long_to_serve_reads_no_more_of_the_log_than_one_it_serves(sql):
    user_id, list_id = new_user(sql, "long_gap")
    sql("INSERT INTO todos (list_id, title) SELECT %s, 't' || n FROM generate_series(1, 300) n", (list_id,))
    head = list_rev(sql, list_id)
    resume = queries("changes")["resume"]
    for since, resumable in ((0, False), (head - 20, True)):
        params = {"list": list_id, "since": since, "limit": 20, "user": user_id}
        [[[explained]]] = sql("EXPLAIN (ANALYZE, FORMAT JSON) " + resume, params)
        rows = sql(resume, params)
        assert {row[2] for row in rows} == {resumable}
        assert len(rows) == (20 if resumable else 1)
        assert rows_read(explained["Plan"], "changes") <= 20        # not the 300 changes the gap holds


def test_rolled_back_writes_leave_no_change(dsn, sql):
    _, list_id = new_user(sql, "rollback_user")
    before = list_rev(sql, list_id)
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO todos (list_id, title) VALUES (%s, 'never') RETURNING rev", (list_id,))
        conn.rollback()
    finally:
        conn.close()
    assert list_rev(sql, list_id) == before
    assert sql("SELECT count(*) FROM changes WHERE list_id = %s AND rev > %s", (list_id, before))[0][0] == 0


def test_a_writing_transaction_sends_no_notify(postgres, sql):
    """PREPARE TRANSACTION refuses any transaction that executed NOTIFY: every kind of
    write (todos, a new title, memberships, a new list, a deleted one) must prepare.
    In a database of its own: no ringer sleeps there, so its doorbell is not armed (a write
    while the ringer sleeps does ring it, and cannot be prepared: docs/design.md)."""
    dsn = new_database(postgres, sql)

    def own_sql(statement: str, params: tuple | None = None) -> list[tuple]:
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    owner, list_id = new_user(own_sql, "prepare_user")
    other, _ = new_user(own_sql, "prepare_other")
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO todos (list_id, title) VALUES (%s, 'a') RETURNING id", (list_id,))
            todo_id = cur.fetchone()[0]
            cur.execute("UPDATE todos SET completed = true WHERE id = %s", (todo_id,))
            cur.execute("DELETE FROM todos WHERE id = %s", (todo_id,))
            cur.execute("UPDATE lists SET title = 'new title' WHERE id = %s", (list_id,))
            cur.execute("INSERT INTO memberships (list_id, user_id, role) VALUES (%s, %s, 'viewer')", (list_id, other))
            cur.execute("INSERT INTO lists (owner, title) VALUES (%s, 'shared') RETURNING id", (owner,))
            cur.execute("DELETE FROM lists WHERE id = %s", (cur.fetchone()[0],))
            cur.execute("PREPARE TRANSACTION 'todopy_no_notify'")
        conn.rollback()        # the prepared transaction is no longer this session's
        own_sql("ROLLBACK PREPARED 'todopy_no_notify'")
    finally:
        conn.close()


def test_writers_of_different_lists_do_not_wait_for_each_other(dsn, sql):
    _, held = new_user(sql, "held_user")
    _, free = new_user(sql, "free_user")
    holder = psycopg2.connect(dsn)
    writer = psycopg2.connect(dsn, options="-c statement_timeout=2000")
    try:
        with holder.cursor() as cur:
            cur.execute("INSERT INTO todos (list_id, title) VALUES (%s, 'held open')", (held,))
        # The held transaction keeps its list's row locked; another list's writer commits at once.
        with writer.cursor() as cur:
            cur.execute("INSERT INTO todos (list_id, title) VALUES (%s, 'not waiting')", (free,))
        writer.commit()
    finally:
        holder.rollback()
        holder.close()
        writer.close()


def test_writers_of_one_list_take_revs_in_commit_order_and_wait_only_to_commit(dsn, sql):
    """Revs are assigned at commit: an open writer of a list holds back no other writer of it."""
    _, list_id = new_user(sql, "order_user")
    first = psycopg2.connect(dsn)
    second = psycopg2.connect(dsn)
    try:
        with first.cursor() as cur:
            cur.execute("INSERT INTO todos (list_id, title) VALUES (%s, 'first') RETURNING id", (list_id,))
            (first_id,) = cur.fetchone()
        with second.cursor() as cur:
            cur.execute("SET statement_timeout = '5s'")      # it must not wait for the open first writer
            cur.execute("INSERT INTO todos (list_id, title) VALUES (%s, 'second') RETURNING id", (list_id,))
            (second_id,) = cur.fetchone()
        second.commit()
        first.commit()
        revs = dict(sql("SELECT title, rev FROM todos WHERE id IN (%s, %s)", (first_id, second_id)))
        assert revs["first"] == revs["second"] + 1 == list_rev(sql, list_id)
    finally:
        first.close()
        second.close()


def next_notification(conn, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn.poll()
        if conn.notifies:
            return conn.notifies.pop(0)
        select.select([conn], [], [], max(0.0, deadline - time.monotonic()))
    raise AssertionError("no notification")


def wait_for_ring(listener, list_id: str, head: int) -> tuple[bool, list | None]:
    """Read rings until one names `list_id` at `head`; its (meta, users)."""
    while True:
        for moved_list, rev, meta, users in json.loads(next_notification(listener).payload):
            assert moved_list != list_id or rev <= head, f"rung past {head}: {rev}"
            if moved_list == list_id and rev == head:
                return meta, users


@pytest.mark.usefixtures("server")
def test_the_ringer_names_each_list_that_moved_with_its_head_rev(dsn, sql):
    _, list_id = new_user(sql, "rung_user")
    listener = psycopg2.connect(dsn)
    listener.autocommit = True
    try:
        with listener.cursor() as cur:
            cur.execute("LISTEN todopy_ring")
        sql("INSERT INTO todos (list_id, title) SELECT %s, 't' || n FROM generate_series(1, 3) n", (list_id,))
        revs = [row[0] for row in sql("SELECT rev FROM todos WHERE list_id = %s", (list_id,))]
        wait_for_ring(listener, str(list_id), max(revs))
        sql("UPDATE lists SET title = 'renamed' WHERE id = %s", (list_id,))
        meta, users = wait_for_ring(listener, str(list_id), max(revs) + 1)
        assert meta and users is None, "a new title is a change of the list itself, of nobody's membership"
    finally:
        listener.close()
