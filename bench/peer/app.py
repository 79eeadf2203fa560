"""The peer's routes: REST GET/PUT of one todo, the bulk toggle, and the list stream.

    PEER_DATABASE_URL=postgresql://... uvicorn bench.peer.app:app --loop uvloop --http httptools
"""
from __future__ import annotations

import asyncio
import hashlib
import os
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, AsyncIterator
from uuid import UUID

import asyncpg
from fastapi import Depends, FastAPI, HTTPException, Request, Response, WebSocket
from pydantic import BaseModel, ConfigDict, field_validator
from starlette.websockets import WebSocketState

from bench.peer.hub import Hub, Subscription

COLUMNS = "id, title, completed, created_time, rev"
SESSION_USER = "SELECT user_id FROM peer.sessions WHERE token_hash = $1 AND expires_time > now()"
GET_TODO = f"SELECT {COLUMNS} FROM peer.todos WHERE id = $1 AND user_id = $2"
PUT_TODO = (f"UPDATE peer.todos SET title = $3, completed = $4 WHERE id = $1 AND user_id = $2"
            f" RETURNING {COLUMNS}")
# The list's rows are locked in id order first: two toggle-alls that locked them in scan order
# deadlocked (a seq scan's order follows where updated rows were last written).
TOGGLE_ALL = ("WITH locked AS (SELECT id FROM peer.todos WHERE user_id = $1 ORDER BY id FOR UPDATE)"
              " UPDATE peer.todos t SET completed = $2 FROM locked WHERE t.id = locked.id AND t.completed <> $2"
              " RETURNING t.id, t.title, t.completed, t.created_time, t.rev")
SNAPSHOT = f"SELECT {COLUMNS} FROM peer.todos WHERE user_id = $1 ORDER BY created_time, id"
REV = "SELECT last_value FROM peer.todo_rev"


class TodoIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    title: str
    completed: bool

    @field_validator("title")
    @classmethod
    def trimmed(cls, title: str) -> str:
        title = title.strip()
        if not 1 <= len(title) <= 512:
            raise ValueError("title must be 1 to 512 characters")
        return title


class ToggleIn(BaseModel):
    completed: bool


class TodoOut(BaseModel):
    id: UUID
    title: str
    completed: bool
    created_time: datetime
    rev: int


class TodosOut(BaseModel):
    todos: list[TodoOut]
    rev: int


hub = Hub()
pool: asyncpg.Pool


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    global pool
    dsn = os.environ["PEER_DATABASE_URL"]
    size = int(os.environ.get("PEER_POOL_SIZE", "8"))
    pool = await asyncpg.create_pool(dsn, min_size=size, max_size=size)
    await hub.start(dsn)
    try:
        yield
    finally:
        await hub.stop()
        await pool.close()


app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)


async def user_of(authorization: str | None) -> UUID | None:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return await pool.fetchval(SESSION_USER, hashlib.sha256(token.encode()).digest())


async def current_user(request: Request) -> UUID:
    user = await user_of(request.headers.get("authorization"))
    if user is None:
        raise HTTPException(401, "not signed in")
    return user


User = Annotated[UUID, Depends(current_user)]


@app.get("/api/todos/{todo_id}/", response_model=TodoOut)
async def get_todo(todo_id: UUID, user: User, response: Response) -> dict:
    row = await pool.fetchrow(GET_TODO, todo_id, user)
    if row is None:
        raise HTTPException(404, "no such todo")
    response.headers["ETag"] = f'"{row["rev"]}"'
    return dict(row)


@app.put("/api/todos/{todo_id}/", response_model=TodoOut)
async def put_todo(todo_id: UUID, todo: TodoIn, user: User) -> dict:
    row = await pool.fetchrow(PUT_TODO, todo_id, user, todo.title, todo.completed)
    if row is None:
        raise HTTPException(404, "no such todo")
    return dict(row)


@app.patch("/api/todos/", response_model=TodosOut)
async def toggle_all(toggle: ToggleIn, user: User) -> dict:
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(TOGGLE_ALL, user, toggle.completed)
        rev = await conn.fetchval(REV)
    return {"todos": [dict(row) for row in rows], "rev": rev}


@app.websocket("/api/todos/")
async def stream(websocket: WebSocket) -> None:
    user = await user_of(websocket.headers.get("authorization"))
    if user is None:
        await websocket.close(code=4401)
        return
    await websocket.accept()
    # Subscribe first, then read the snapshot: a change committed in between is
    # queued, never missed; one the snapshot already shows is dropped below.
    subscription = hub.subscribe(str(user))
    pump = None
    try:
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await conn.fetch(SNAPSHOT, user)
            rev = await conn.fetchval(REV)
        seen = {str(row["id"]): row["rev"] for row in rows}
        # model_validate, not the constructor: the same validation, but typed to take the rows as dicts.
        snapshot = TodosOut.model_validate({"todos": [dict(row) for row in rows], "rev": rev}).model_dump_json()
        await websocket.send_text(snapshot[:1] + '"type":"snapshot",' + snapshot[1:])
        await websocket.send_text(f'{{"type":"ready","rev":{rev}}}')
        pump = asyncio.create_task(_pump(websocket, subscription, seen))
        # Read until the client leaves (uvicorn answers pings); the pump writes meanwhile.
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    finally:
        hub.unsubscribe(subscription)
        if pump is not None:
            pump.cancel()
            if pump.done() and not pump.cancelled():
                pump.exception()        # a send to a client that left: nothing to report


async def _pump(websocket: WebSocket, subscription: Subscription, seen: dict[str, int]) -> None:
    """Send queued changes as they come, skipping those the snapshot already showed."""
    queue = subscription.queue
    while not subscription.overflowed.is_set():      # a full queue: get() returns at once, then we stop
        todo_id, rev, message = await queue.get()
        if seen.get(todo_id, 0) < rev:
            await websocket.send_text(message)
    if websocket.client_state == WebSocketState.CONNECTED:
        await websocket.close(code=4008)
