"""The triggers log and announce every change, whoever writes (psql included)."""
from __future__ import annotations

import json
import select
import time

import psycopg2


def listen(dsn: str):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("LISTEN todo_changes")
    return conn


def next_notification(conn, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn.poll()
        if conn.notifies:
            return conn.notifies.pop(0)
        select.select([conn], [], [], max(0.0, deadline - time.monotonic()))
    raise AssertionError("no notification")


def test_plain_sql_writes_are_logged_and_notified(dsn, sql):
    user_id = sql("INSERT INTO users (username, password_hash) VALUES ('psql_user', 'x') RETURNING id")[0][0]
    listener = listen(dsn)
    try:
        todo_id, rev = sql("INSERT INTO todos (owner, title) VALUES (%s, 'from psql') RETURNING id, rev",
                           (user_id,))[0]
        note = next_notification(listener)
        payload = json.loads(note.payload)
        assert payload == {"op": "insert", "rev": rev, "first_rev": rev, "count": 1,
                           "id": str(todo_id), "owner": str(user_id)}
        assert sql("SELECT op, todo_id, owner, title, completed FROM changes WHERE rev = %s", (rev,)) == [
            ("insert", todo_id, user_id, "from psql", False)]

        new_rev = sql("UPDATE todos SET completed = true WHERE id = %s RETURNING rev", (todo_id,))[0][0]
        assert new_rev > rev
        assert json.loads(next_notification(listener).payload)["op"] == "update"
        assert sql("SELECT op, completed, was_completed FROM changes WHERE rev = %s", (new_rev,)) == [
            ("update", True, False)]

        sql("DELETE FROM todos WHERE id = %s", (todo_id,))
        deleted = json.loads(next_notification(listener).payload)
        assert deleted["op"] == "delete" and deleted["rev"] > new_rev and deleted["id"] == str(todo_id)
        assert sql("SELECT op, title FROM changes WHERE rev = %s", (deleted["rev"],)) == [("delete", "from psql")]
    finally:
        listener.close()


def test_a_bulk_statement_notifies_once_with_the_rev_range(dsn, sql):
    user_id = sql("INSERT INTO users (username, password_hash) VALUES ('bulk_user', 'x') RETURNING id")[0][0]
    listener = listen(dsn)
    try:
        revs = [row[0] for row in sql(
            "INSERT INTO todos (owner, title) SELECT %s, 't' || n FROM generate_series(1, 50) n RETURNING rev",
            (user_id,))]
        note = json.loads(next_notification(listener).payload)
        assert note["count"] == 50 and note["first_rev"] == min(revs) and note["rev"] == max(revs)
        assert note["id"] is None and note["owner"] is None   # identifiers only for single rows
        listener.poll()
        assert not listener.notifies, "one statement, one notification"
        assert sql("SELECT count(*) FROM changes WHERE rev BETWEEN %s AND %s", (min(revs), max(revs)))[0][0] == 50
    finally:
        listener.close()


def test_rolled_back_writes_leave_no_change_and_no_notification(dsn, sql):
    user_id = sql("INSERT INTO users (username, password_hash) VALUES ('rollback_user', 'x') RETURNING id")[0][0]
    listener = listen(dsn)
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO todos (owner, title) VALUES (%s, 'never') RETURNING rev", (user_id,))
            rev = cur.fetchone()[0]
        conn.rollback()
        time.sleep(0.2)
        listener.poll()
        assert not listener.notifies
        assert sql("SELECT count(*) FROM changes WHERE rev = %s", (rev,))[0][0] == 0
    finally:
        conn.close()
        listener.close()
