"""Housekeeping: the change log is pruned by age and size, old sessions and sign-in failures forgotten."""
from __future__ import annotations

import socket

from todopy import maintenance
from todopy.db import Pool
from todopy.settings import Settings


def test_housekeeping_prunes_by_age_and_rows_and_forgets_stale_rows(dsn, sql):
    user = sql("INSERT INTO users (username, password_hash) VALUES ('keeper', 'x') RETURNING id")[0][0]
    sql("INSERT INTO todos (owner, title) SELECT %s, 't' || n FROM generate_series(1, 30) n", (user,))
    head = sql("SELECT max(rev) FROM changes")[0][0]
    sql("UPDATE changes SET changed_time = now() - interval '2 hours' WHERE rev <= %s - 20", (head,))
    sql("INSERT INTO sessions (token_hash, user_id, expires_time) VALUES ('\\x01', %s, now() - interval '1 s'),"
        " ('\\x02', %s, now() + interval '1 hour')", (user, user))
    sql("INSERT INTO login_throttle (name_key, failures, updated_time) VALUES"
        " ('stale', 3, now() - interval '2 days'), ('recent', 3, now())")

    pool = Pool(dsn, 1)
    try:
        pruned = maintenance.run_once(pool, Settings(changelog_retention_s=3600, changelog_max_rows=10_000))
        assert pruned > 0
        assert sql("SELECT min(rev) FROM changes")[0][0] == head - 19       # older than an hour: gone
        assert sql("SELECT rev FROM changelog_horizon")[0][0] == head - 20  # resumes from before get snapshots
        maintenance.run_once(pool, Settings(changelog_retention_s=3600, changelog_max_rows=5))
        assert sql("SELECT count(*), max(rev) FROM changes")[0] == (5, head)  # the latest change is always kept
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
