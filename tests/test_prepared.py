"""The prepared-statement fast path (todopy/prepared.py) against psycopg2's plain execution."""
from __future__ import annotations

import psycopg2
import psycopg2.errors

from todopy import prepared
from todopy.db import ConnectionPool
from todopy.sqlfiles import queries


def test_placeholders_become_positional_and_repeat():
    st = prepared.statement("SELECT %(a)s::int + %(b)s::int + %(a)s::int WHERE 'x' LIKE '%%'")
    assert st is not None and st.params == ("a", "b")
    assert st.prepare.endswith("AS SELECT $1::int + $2::int + $1::int WHERE 'x' LIKE '%'")
    assert prepared.statement("SELECT 1; SELECT 2") is None           # several statements: plain text
    assert prepared.statement("SELECT %s") is None                   # positional: plain text


def test_every_named_query_answers_the_same_prepared_and_plain(dsn, sql):
    user = sql("INSERT INTO users (username, password_hash) VALUES ('prep', 'x') RETURNING id")[0][0]
    (list_id,) = sql("SELECT personal_list(%s)", (user,))[0]
    sql("INSERT INTO todos (list_id, title, completed) SELECT %s, 't' || n, n %% 2 = 0"
        " FROM generate_series(1, 5) n", (list_id,))
    (todo_id,) = sql("SELECT id FROM todos WHERE list_id = %s LIMIT 1", (list_id,))[0]
    reads = [
        ("todos", "list", {"list": list_id, "completed": None, "user": user}),
        ("todos", "list", {"list": list_id, "completed": True, "user": user}),
        ("todos", "get", {"id": todo_id, "list": list_id, "user": user}),
        ("todos", "current_rev", {"id": todo_id, "list": list_id}),
        ("lists", "of_user", {"user": user}),
        ("lists", "membership", {"list": list_id, "user": user}),
        ("lists", "members", {"list": list_id}),
        ("changes", "heads", {"lists": [str(list_id)]}),
        ("changes", "after", {"lists": [str(list_id)], "revs": [2], "limit": 100}),
        ("changes", "resume", {"list": list_id, "since": 3, "limit": 100, "user": user}),
    ]
    plain = psycopg2.connect(dsn)
    plain.autocommit = True
    pool = ConnectionPool(dsn, 1)
    try:
        for module, name, params in reads:
            text = queries(module)[name]
            assert prepared.statement(text) is not None, name
            with plain.cursor() as cur:
                cur.execute(text, params)
                expected = cur.fetchall()
            for _ in range(2):              # prepared on the first call, executed as prepared on the second
                assert pool.query_all(text, params) == expected, name
        # A write, prepared: the same effect as the plain statement's.
        update = queries("todos")["update"]
        pool.execute(update, {"id": todo_id, "list": list_id, "if_revs": None, "title": "prepared", "completed": None})
        assert sql("SELECT title FROM todos WHERE id = %s", (todo_id,)) == [("prepared",)]
    finally:
        pool.close()
        plain.close()


def test_a_script_runs_its_statements_prepared_in_one_transaction_and_answers_with_the_last(dsn, sql):
    user = sql("INSERT INTO users (username, password_hash) VALUES ('script', 'x') RETURNING id")[0][0]
    (list_id,) = sql("SELECT personal_list(%s)", (user,))[0]
    todos = queries("todos")
    pool = ConnectionPool(dsn, 1)
    try:
        script = [queries("writes")["as_writer"], todos["create"], queries("writes")["assign_revs"], todos["written"]]
        for n in range(2):                    # prepared on the first run, executed as prepared on the second
            params = {"list": list_id, "id": f"00000000-0000-4000-8000-00000000000{n}", "title": f"scripted {n}",
                      "completed": False, "writer": "", "session": ""}
            rows = pool.script(script, params)
            assert [(row.title, row.rev) for row in rows] == [(f"scripted {n}", sql(
                "SELECT rev FROM lists WHERE id = %s", (list_id,))[0][0])]
        with pool.connection() as conn:
            assert len(conn.prepared) == 3 and len(conn.unpreparable) == 1     # SET CONSTRAINTS is sent as text
            assert list(conn.scripts) == [tuple(script)]                        # composed once, then reused
        # One transaction: a failing last statement takes the write back with it.
        try:
            pool.script([todos["create"], "SELECT 1 / 0"], {**params, "id": "00000000-0000-4000-8000-000000000009"})
        except psycopg2.errors.DivisionByZero:
            pass
        assert sql("SELECT count(*) FROM todos WHERE list_id = %s", (list_id,)) == [(2,)]
    finally:
        pool.close()
