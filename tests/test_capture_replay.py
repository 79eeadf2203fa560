"""What the capture logs is exactly what happened, for any mix of SQL in one transaction.

Random transactions write several lists at once: inserts, updates (a row twice, a bulk
statement), deletes (a row inserted in the same transaction too), upserts, MERGE, savepoints
rolled back, members added and removed, `SET CONSTRAINTS ALL IMMEDIATE` between statements,
whole transactions rolled back. After each one, every list's log replays to its table.
"""
from __future__ import annotations

import random
import uuid

import psycopg2
import pytest

LISTS = 3
TRANSACTIONS = 120


@pytest.fixture
def owners(sql) -> list[tuple[str, str]]:
    """(user id, personal list id) of fresh users made in SQL, and one extra user to add as a member."""
    made = []
    for _ in range(LISTS + 1):
        (user,), = sql("INSERT INTO users (username, password_hash) VALUES (%s, '!') RETURNING id::text",
                       (f"replay-{uuid.uuid4().hex[:12]}",))
        made.append((user, sql("SELECT personal_list(%s)::text", (user,))[0][0]))
    return made


def replayed(sql, list_id: str) -> dict[str, tuple[str, bool, int]]:
    """The list's todos as its log tells them: id -> (title, completed, rev of its latest change)."""
    todos: dict[str, tuple[str, bool, int]] = {}
    for rev, op, todo_id, title, completed in sql(
            "SELECT rev, op, todo_id::text, title, completed FROM changes WHERE list_id = %s AND kind = 'todo'"
            " ORDER BY rev", (list_id,)):
        if op == "delete":
            del todos[todo_id]
        else:
            assert (op == "insert") == (todo_id not in todos), f"rev {rev}: {op} of {todo_id}"
            todos[todo_id] = (title, completed, rev)
    return todos


def assert_log_is_the_table(sql, list_id: str) -> None:
    revs = [rev for (rev,) in sql("SELECT rev FROM changes WHERE list_id = %s ORDER BY rev", (list_id,))]
    (head, count), = sql("SELECT rev, todo_count FROM lists WHERE id = %s", (list_id,))
    assert revs == list(range(1, head + 1)), "a list's revs are 1, 2, ... its rev, each logged once"
    table = {todo_id: (title, completed, rev) for todo_id, title, completed, rev in sql(
        "SELECT id::text, title, completed, rev FROM todos WHERE list_id = %s", (list_id,))}
    assert replayed(sql, list_id) == table
    assert count == len(table)


def random_statement(rng: random.Random, cur, lists: list[str], member: str) -> None:
    list_id = rng.choice(lists)
    cur.execute("SELECT id::text FROM todos WHERE list_id = %s ORDER BY id", (list_id,))
    ids = [row[0] for row in cur.fetchall()]
    kind = rng.choice(["insert", "insert", "update", "update", "bulk", "delete", "upsert", "merge", "twice",
                       "born and gone", "member", "immediate", "savepoint"])
    title = f"t{rng.randrange(10**6)}"
    if kind == "insert" or not ids and kind in ("update", "delete", "twice", "merge"):
        cur.execute("INSERT INTO todos (list_id, title) SELECT %s, %s || g FROM generate_series(1, %s) g",
                    (list_id, title, rng.randint(1, 3)))
    elif kind == "update":
        cur.execute("UPDATE todos SET title = %s WHERE id = %s", (title, rng.choice(ids)))
    elif kind == "twice":
        todo = rng.choice(ids)
        cur.execute("UPDATE todos SET completed = NOT completed WHERE id = %s", (todo,))
        cur.execute("UPDATE todos SET title = %s WHERE id = %s", (title, todo))
    elif kind == "bulk":
        # Several lists in one statement, in whatever order the plan visits them.
        cur.execute("UPDATE todos SET completed = NOT completed WHERE list_id = ANY(%s::uuid[]) AND random() < 0.5",
                    (rng.sample(lists, 2),))
    elif kind == "delete":
        cur.execute("DELETE FROM todos WHERE id = ANY(%s::uuid[])", (rng.sample(ids, min(len(ids), 2)),))
    elif kind == "upsert":
        existing = rng.choice(ids) if ids else str(uuid.uuid4())
        cur.execute("INSERT INTO todos (id, list_id, title) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                    (existing, list_id, title))
        cur.execute("INSERT INTO todos (id, list_id, title) VALUES (%s, %s, %s)"
                    " ON CONFLICT (id) DO UPDATE SET title = excluded.title", (existing, list_id, title + "u"))
    elif kind == "merge":
        cur.execute("MERGE INTO todos t USING (VALUES (%s::uuid)) v(id) ON t.id = v.id"
                    " WHEN MATCHED THEN UPDATE SET completed = NOT t.completed", (rng.choice(ids),))
    elif kind == "born and gone":
        cur.execute("INSERT INTO todos (list_id, title) VALUES (%s, %s) RETURNING id", (list_id, title))
        cur.execute("DELETE FROM todos WHERE id = %s", cur.fetchone())
    elif kind == "member":
        cur.execute("DELETE FROM memberships WHERE list_id = %s AND user_id = %s", (list_id, member))
        if cur.rowcount == 0:
            cur.execute("INSERT INTO memberships (list_id, user_id, role) VALUES (%s, %s, 'editor')",
                        (list_id, member))
    elif kind == "immediate":
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute("SET CONSTRAINTS ALL DEFERRED")
    else:
        cur.execute("SAVEPOINT s")
        random_statement(rng, cur, lists, member)
        random_statement(rng, cur, lists, member)
        cur.execute("ROLLBACK TO SAVEPOINT s" if rng.random() < 0.7 else "RELEASE SAVEPOINT s")


def test_any_mix_of_sql_in_one_transaction_logs_exactly_what_happened(owners, dsn, sql):
    lists = [list_id for _, list_id in owners[:LISTS]]
    member = owners[LISTS][0]
    rng = random.Random(20)
    conn = psycopg2.connect(dsn)
    try:
        for _ in range(TRANSACTIONS):
            with conn.cursor() as cur:
                for _ in range(rng.randint(1, 6)):
                    random_statement(rng, cur, lists, member)
            conn.rollback() if rng.random() < 0.15 else conn.commit()
            for list_id in lists:
                assert_log_is_the_table(sql, list_id)
    finally:
        conn.close()
    assert sql("SELECT count(*) FROM capture_lists") == [(0,)], "the counts of committed rounds are cleared"
    assert sql("SELECT count(*) FROM changes_pending") == [(0,)]
    assert min(len(replayed(sql, list_id)) for list_id in lists) > 0
