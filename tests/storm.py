"""A write storm on one list and the streams that read through it: the exactly-once proof's tools.

`Storm` writes through REST (several users in turn) and through plain SQL
transactions that hold their rev a while before committing (rev order is not
commit order); a `Reader` follows one stream into a `Replica`, optionally
dropping and resuming once, until it sees the last title written.
"""
from __future__ import annotations

import random
import threading
import time
import uuid

import psycopg2
import requests

from tests.support import LIST, Api, Replica, Stream, stream

REST_WRITERS = 8
SQL_WRITERS = 3


class Storm:
    """Writers of one list: REST threads (as `apis`, in turn) and plain-SQL transactions, until `stop`."""

    def __init__(self, api: Api, dsn: str, *, base: str = LIST, list_id: str | None = None,
                 apis: list[Api] | None = None, pause: float = 0.0, multi_row: bool = False) -> None:
        self.api, self.dsn = api, dsn
        self.base = base                           # the list's todos URL
        self.list_id = list_id                     # None: the api user's personal list
        self.apis = apis or [api]
        self.pause = pause                         # seconds each writer rests between writes
        self.multi_row = multi_row                 # SQL writers also write several rows per statement
        self.stop = threading.Event()
        self.ids: list[str] = []
        self.lock = threading.Lock()
        self.errors: list[str] = []
        self.writes = 0
        # While set (the database is being restarted), failures are expected: counted in
        # `refused`, not errors. A 429 (a write budget) is always a refusal, never an error.
        self.outage = threading.Event()
        self.refused = 0
        self.resent = 0                 # writes sent again after the connection dropped, with their key

    def _failed(self, what: str) -> None:
        if self.outage.is_set():
            self.refused += 1
        else:
            # When, to find it in the server's log.
            self.errors.append(f"{time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d} {what}")

    def _pick(self, rng: random.Random) -> str | None:
        with self.lock:
            return rng.choice(self.ids) if self.ids else None

    def rest_writer(self, seed: int) -> None:
        writer = self.apis[seed % len(self.apis)]
        rng, api, LIST = random.Random(seed), Api(writer.base_url, writer.token), self.base
        while not self.stop.is_set():
            roll, todo_id = rng.random(), self._pick(rng)
            crowded = len(self.ids) > 120
            try:
                if roll < 0.30 and not crowded or todo_id is None:
                    r = self._write(api, "POST", LIST, {"title": f"t{rng.random():.6f}",
                                                        "completed": rng.random() < 0.3})
                    if r.status_code == 201:
                        with self.lock:
                            self.ids.append(r.json()["id"])
                elif roll < 0.55:
                    r = self._write(api, "PATCH", f"{LIST}{todo_id}/", rng.choice([
                        {"completed": rng.random() < 0.5}, {"title": f"edit {rng.random():.6f}"},
                        {"title": "both", "completed": True}]))
                elif roll < 0.65:
                    r = self._write(api, "PUT", f"{LIST}{todo_id}/", {"title": "put", "completed": rng.random() < 0.5})
                elif roll < 0.80 or crowded and roll < 0.9:
                    r = self._write(api, "DELETE", f"{LIST}{todo_id}/")
                    with self.lock:
                        if todo_id in self.ids:
                            self.ids.remove(todo_id)
                elif roll < 0.93:
                    query = rng.choice(["", "?completed=true", "?completed=false"])
                    r = self._write(api, "PATCH", LIST + query, {"completed": rng.random() < 0.5})
                else:
                    r = self._write(api, "DELETE", LIST + "?completed=true")
                if r.status_code == 429:
                    # The account's write budget is spent: wait as asked, as a client must (or it
                    # would take every token as it refills, and its other writes would starve).
                    self.refused += 1
                    self.stop.wait(float(r.headers.get("Retry-After", "1")))
                elif r.status_code not in (200, 201, 204, 404):
                    self._failed(f"{r.request.method} {r.request.path_url}: {r.status_code} {r.text[:200]}")
                self.writes += 1
            except Exception as error:  # noqa: BLE001 - reported by the test
                self._failed(f"writer: {error!r}")
            if self.pause:
                self.stop.wait(self.pause * (0.5 + rng.random()))

    def _write(self, api: Api, method: str, path: str, body: dict | None = None) -> requests.Response:
        """One write, performed once however often it is sent (Idempotency-Key): a server may close
        an idle keep-alive connection just as a request goes out on it (RFC 9112 section 9.6), and
        a client then sends it again, as browsers do."""
        key = str(uuid.uuid4())
        for attempt in range(5):
            try:
                r = api.request(method, path, json_body=body, headers={"Idempotency-Key": key})
            except requests.ConnectionError:
                if attempt == 4:
                    raise
                self.resent += 1
                continue
            if r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_in_use":
                time.sleep(float(r.headers.get("Retry-After", "1")))
                continue
            return r
        return r

    def sql_writer(self, seed: int) -> None:
        """Transactions that take a rev, then dawdle before committing: the rev/commit-order trap."""
        rng = random.Random(seed)
        conn = psycopg2.connect(self.dsn)
        list_id = self.list_id
        try:
            if list_id is None:
                with conn, conn.cursor() as cur:
                    cur.execute("SELECT personal_list(%s)", (self.api.user["id"],))
                    (list_id,) = cur.fetchone()
            while not self.stop.is_set():
                try:
                    if conn.closed:
                        conn = psycopg2.connect(self.dsn)      # after a database restart
                    with conn, conn.cursor() as cur:
                        if self.multi_row and rng.random() < 0.3:
                            self._multi_row(cur, list_id, rng)
                        else:
                            cur.execute("INSERT INTO todos (list_id, title) VALUES (%s, 'from sql') RETURNING id",
                                        (list_id,))
                            (todo_id,) = cur.fetchone()
                            cur.execute("SELECT pg_sleep(%s)", (rng.random() * 0.004,))
                            cur.execute("UPDATE todos SET completed = true, title = 'from sql, done' WHERE id = %s",
                                        (todo_id,))
                            if rng.random() < 0.5:
                                cur.execute("DELETE FROM todos WHERE id = %s", (todo_id,))
                    self.writes += 1
                    time.sleep(rng.random() * 0.01 + (self.pause * (0.5 + rng.random()) if self.pause else 0))
                except psycopg2.Error as error:
                    self._failed(f"sql writer: {error!r}")
                    if self.outage.is_set():
                        time.sleep(0.2)
        finally:
            conn.close()

    @staticmethod
    def _multi_row(cur, list_id: str, rng: random.Random) -> None:
        """Statements that change several rows at once: each row is its own change, in one transaction."""
        cur.execute("INSERT INTO todos (list_id, title) SELECT %s, 'sql batch ' || n FROM generate_series(1, %s) n",
                    (list_id, rng.randint(2, 5)))
        cur.execute("SELECT pg_sleep(%s)", (rng.random() * 0.004,))
        cur.execute("UPDATE todos SET completed = NOT completed WHERE list_id = %s AND title LIKE 'sql batch %%'",
                    (list_id,))
        cur.execute("DELETE FROM todos WHERE list_id = %s AND title LIKE 'sql batch %%'", (list_id,))

    def threads(self) -> list[threading.Thread]:
        return ([threading.Thread(target=self.rest_writer, args=(i,), daemon=True) for i in range(REST_WRITERS)]
                + [threading.Thread(target=self.sql_writer, args=(100 + i,), daemon=True)
                   for i in range(SQL_WRITERS)])


class Reader(threading.Thread):
    """Reads one stream into a Replica until it sees `last_title`; optionally drops and resumes once."""

    def __init__(self, server, api: Api, query: str, last_title: str, *, resume_after: float | None = None,
                 base: str = LIST) -> None:
        super().__init__(daemon=True)
        self.server, self.api, self.query, self.last_title = server, api, query, last_title
        self.base = base
        self.resume_after = resume_after
        self.replica = Replica()
        self.error: BaseException | None = None
        self.resumed_with: str | None = None

    def run(self) -> None:
        try:
            self._read(stream(self.server, self.api, self.base + self.query), self.resume_after)
            if self.resume_after is not None:
                time.sleep(0.3)
                self.replica.reconnect()
                sep = "&" if self.query else "?"
                self.resumed_with = f"{self.query}{sep}since={self.replica.rev}"
                self._read(stream(self.server, self.api, self.base + self.resumed_with), None)
        except BaseException as error:  # noqa: BLE001 - re-raised by the test
            self.error = error

    def _read(self, s: Stream, for_seconds: float | None) -> None:
        deadline = time.monotonic() + (for_seconds if for_seconds is not None else 60)
        try:
            while time.monotonic() < deadline:
                message = s.recv(20)
                assert message is not None, f"closed with {s.close_code}"
                self.replica.apply(message)
                if message["type"] == "change" and message["todo"].get("title") == self.last_title:
                    assert self.replica.ready
                    return
        finally:
            s.close()
