"""Housekeeping: the change log is pruned by age, old sessions and sign-in failures forgotten."""
from __future__ import annotations

import socket

from todopy import maintenance
from todopy.db import ConnectionPool
from todopy.settings import Settings


def test_housekeeping_prunes_by_age_and_forgets_stale_rows(dsn, sql):
    user = sql("INSERT INTO users (username, password_hash) VALUES ('keeper', 'x') RETURNING id")[0][0]
    other = sql("INSERT INTO users (username, password_hash) VALUES ('other', 'x') RETURNING id")[0][0]
    (list_id,) = sql("SELECT personal_list(%s)", (user,))[0]
    (other_list,) = sql("SELECT personal_list(%s)", (other,))[0]
    sql("INSERT INTO todos (list_id, title) SELECT %s, 't' || n FROM generate_series(1, 30) n", (list_id,))
    sql("INSERT INTO todos (list_id, title) VALUES (%s, 'recent')", (other_list,))
    head = sql("SELECT rev FROM lists WHERE id = %s", (list_id,))[0][0]
    other_head = sql("SELECT rev FROM lists WHERE id = %s", (other_list,))[0][0]
    sql("UPDATE changes SET changed_time = now() - interval '2 hours' WHERE list_id = %s AND rev <= %s - 20",
        (list_id, head))
    sql("INSERT INTO sessions (token_hash, user_id, expires_time) VALUES ('\\x01', %s, now() - interval '1 s'),"
        " ('\\x02', %s, now() + interval '1 hour')", (user, user))
    sql("INSERT INTO login_throttle (name_key, failures, updated_time) VALUES"
        " ('stale', 3, now() - interval '2 days'), ('recent', 3, now())")

    pool = ConnectionPool(dsn, 1)
    try:
        pruned = maintenance.run_once(pool, Settings(changelog_retention_s=3600))
        assert pruned == head - 20
        # Older than an hour: gone, and the list's horizon says so (resumes from before get snapshots).
        assert sql("SELECT min(rev), max(rev) FROM changes WHERE list_id = %s", (list_id,))[0] == (head - 19, head)
        assert sql("SELECT horizon FROM lists WHERE id = %s", (list_id,))[0][0] == head - 20
        # Another list's recent changes and horizon are untouched.
        assert sql("SELECT count(*) FROM changes WHERE list_id = %s", (other_list,))[0][0] == other_head
        assert sql("SELECT horizon FROM lists WHERE id = %s", (other_list,))[0][0] == 0
    finally:
        pool.close()
    assert [bytes(row[0]) for row in sql("SELECT token_hash FROM sessions")] == [b"\x02"]
    assert sql("SELECT name_key FROM login_throttle") == [("recent",)]


def test_a_malformed_chunked_body_is_a_json_400(server, alice):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /api/todos/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + alice.token.encode()
                     + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
        answer = b""
        while not answer.endswith(b"}}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b'"code":"bad_request"' in answer.replace(b" ", b"")
    assert alice.list_todos()["todos"] == []
