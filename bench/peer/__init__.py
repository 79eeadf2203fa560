"""The peer: the server a Python developer would write today for the benchmarked subset of todopy's API.

FastAPI on uvicorn (uvloop, httptools), asyncpg with a pool, one LISTEN
connection per process fanning NOTIFY payloads out in memory, a NOTIFY trigger
on its own tables (schema.sql, schema `peer`), streams that subscribe before
they read their snapshot. It serves, for the personal list only:

- `GET /api/todos/<id>/`, `PUT /api/todos/<id>/`, `PATCH /api/todos/` (toggle all);
- the WebSocket stream `/api/todos/`: snapshot, ready, then change messages,
  in todopy's message format.

`make bench` runs it beside todopy in the same run (bench.peer.seed copies
todopy's benchmark users, sessions and todos into its tables).
"""
