"""The capture is an observer: any SQL behaves as it would without the triggers, and what it logs
is exactly what happened (issue 20's findings: added deadlocks, phantom upserts)."""
from __future__ import annotations

import random
import threading
import time

import psycopg2
import psycopg2.errors

from tests.support import Api, register

SECONDS = 10


def todo_log(sql, list_id: str) -> list[tuple]:
    return sql("SELECT rev, op, todo_id::text, title, completed FROM changes WHERE list_id = %s AND kind = 'todo'"
               " ORDER BY rev", (list_id,))


def counts_agree(sql, list_id: str) -> None:
    (kept, actual), = sql("SELECT todo_count, (SELECT count(*) FROM todos WHERE list_id = l.id) FROM lists l"
                          " WHERE id = %s", (list_id,))
    assert kept == actual


def test_single_row_sql_writers_beside_rest_toggle_alls_never_deadlock(start_server, dsn, sql):
    # The workload writes ~1,000 toggle-alls of 40 rows: far past a user's write budget.
    server = start_server(env={"TODOPY_WRITE_BURST": "100000000", "TODOPY_WRITE_RATE": "100000000"})
    alice = register(server.base_url)
    for n in range(40):
        alice.create_todo(f"todo {n}")
    list_id = sql("SELECT personal_list(%s)", (alice.user["id"],))[0][0]
    ids = [row[0] for row in sql("SELECT id FROM todos WHERE list_id = %s", (list_id,))]
    stop = time.monotonic() + SECONDS
    deadlocks: list[str] = []
    failures: list[str] = []
    counts = {"sql": 0, "rest": 0}

    def sql_writer(seed: int) -> None:
        rng = random.Random(seed)
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                while time.monotonic() < stop:
                    try:
                        cur.execute("UPDATE todos SET completed = NOT completed WHERE id = %s", (rng.choice(ids),))
                        counts["sql"] += 1
                    except psycopg2.errors.DeadlockDetected as error:
                        deadlocks.append(str(error))
        finally:
            conn.close()

    def rest_writer(seed: int) -> None:
        api = Api(alice.base_url, alice.token)
        completed = bool(seed)
        while time.monotonic() < stop:
            response = api.patch("/api/todos/", {"completed": completed})
            completed = not completed
            counts["rest"] += 1
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text}")

    threads = [threading.Thread(target=sql_writer, args=(n,)) for n in range(3)]
    threads += [threading.Thread(target=rest_writer, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert deadlocks == [] and failures == [], (deadlocks[:3], failures[:3])
    assert counts["sql"] > 100 and counts["rest"] > 10, counts
    # Every change logged, each todo's rev its latest change's, revs gapless.
    revs = [row[0] for row in sql("SELECT rev FROM changes WHERE list_id = %s ORDER BY rev", (list_id,))]
    assert revs == list(range(revs[0], revs[0] + len(revs)))
    stale = sql("SELECT t.id FROM todos t WHERE t.list_id = %s AND t.rev <> (SELECT max(rev) FROM changes c"
                " WHERE c.list_id = t.list_id AND c.todo_id = t.id)", (list_id,))
    assert stale == []


def test_upserts_log_only_what_they_wrote(alice: Api, sql):
    todo = alice.create_todo("kept")
    list_id = sql("SELECT personal_list(%s)", (alice.user["id"],))[0][0]
    before = todo_log(sql, list_id)
    sql("INSERT INTO todos (id, list_id, title) VALUES (%s, %s, 'phantom') ON CONFLICT DO NOTHING",
        (todo["id"], list_id))
    sql("UPDATE todos SET title = 'nothing' WHERE id = gen_random_uuid()")
    sql("DELETE FROM todos WHERE list_id = %s AND title = 'no such title'", (list_id,))
    assert todo_log(sql, list_id) == before
    assert alice.get(f"/api/todos/{todo['id']}/").json()["title"] == "kept"

    sql("INSERT INTO todos (id, list_id, title) VALUES (%s, %s, 'upserted') ON CONFLICT (id)"
        " DO UPDATE SET title = excluded.title", (todo["id"], list_id))
    sql("MERGE INTO todos t USING (VALUES (%s::uuid)) v(id) ON t.id = v.id"
        " WHEN MATCHED THEN UPDATE SET completed = true", (todo["id"],))
    after = todo_log(sql, list_id)[len(before):]
    assert [(op, title, completed) for _, op, _, title, completed in after] == [
        ("update", "upserted", False), ("update", "upserted", True)]
    assert alice.get(f"/api/todos/{todo['id']}/").json()["rev"] == after[-1][0]
    counts_agree(sql, list_id)


def test_rolled_back_subtransactions_leave_no_change_and_the_count_holds(alice: Api, dsn, sql):
    list_id = sql("SELECT personal_list(%s)", (alice.user["id"],))[0][0]
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO todos (list_id, title) VALUES (%s, 'stays')", (list_id,))
            cur.execute("SAVEPOINT s")
            cur.execute("INSERT INTO todos (list_id, title) VALUES (%s, 'rolled back')", (list_id,))
            cur.execute("ROLLBACK TO SAVEPOINT s")
        conn.commit()
    finally:
        conn.close()
    assert [title for _, _, _, title, _ in todo_log(sql, list_id)] == ["stays"]
    counts_agree(sql, list_id)


def test_truncate_todos_is_a_logged_delete_of_every_todo(alice: Api, bob: Api, sql):
    kept = [alice.create_todo(f"a{n}") for n in range(3)] + [bob.create_todo("b")]
    lists = [sql("SELECT personal_list(%s)", (api.user["id"],))[0][0] for api in (alice, bob)]
    sql("TRUNCATE todos")
    for list_id in lists:
        deleted = [todo_id for _, op, todo_id, _, _ in todo_log(sql, list_id) if op == "delete"]
        assert len(deleted) == (3 if list_id == lists[0] else 1)
        counts_agree(sql, list_id)
    assert {t["id"] for t in kept} == {row[0] for row in sql("SELECT todo_id::text FROM changes WHERE op = 'delete'"
                                                             " AND kind = 'todo' AND list_id = ANY(%s::uuid[])",
                                                             (lists,))}
    assert alice.list_todos()["todos"] == []


def test_a_todo_cannot_move_to_another_list(alice: Api, bob: Api, sql):
    todo = alice.create_todo("mine")
    other = sql("SELECT personal_list(%s)", (bob.user["id"],))[0][0]
    try:
        sql("UPDATE todos SET list_id = %s WHERE id = %s", (other, todo["id"]))
    except psycopg2.errors.CheckViolation as error:
        assert "cannot" in str(error)
    else:
        raise AssertionError("the move was allowed")
    assert alice.get(f"/api/todos/{todo['id']}/").json() == todo
