"""The peer's tables in a database of todopy's: made anew (schema.sql) and filled from todopy's benchmark data.

Users keep their tokens (the same session hashes) and their personal lists' todos
(the same ids), so every stage drives todopy and the peer with the same users.
"""
from __future__ import annotations

from pathlib import Path

import psycopg2
import psycopg2.extensions

SCHEMA = Path(__file__).with_name("schema.sql")
COPY = """
INSERT INTO peer.sessions (token_hash, user_id, expires_time)
SELECT token_hash, user_id, expires_time FROM public.sessions;
INSERT INTO peer.todos (id, user_id, title, completed, created_time)
SELECT t.id, l.owner, t.title, t.completed, t.created_time
  FROM public.todos t JOIN public.lists l ON l.id = t.list_id AND l.personal;
ANALYZE peer.sessions, peer.todos;
"""


def install(dsn: str) -> None:
    """(Re)create schema `peer` and copy every personal list's todos and every session into it."""
    conn = psycopg2.connect(dsn, application_name="bench-peer-seed")
    try:
        with conn, conn.cursor() as cur:
            cur.execute(SCHEMA.read_text())
            cur.execute(COPY)
    finally:
        conn.close()


def writer_dsn(dsn: str) -> str:
    """`dsn` for SQL writers of the peer's tables: unqualified `todos` names peer.todos."""
    return psycopg2.extensions.make_dsn(dsn, options="-c search_path=peer,public")
