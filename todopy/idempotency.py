"""Idempotency-Key (the IETF httpapi draft): a keyed write is performed once; a retry gets its first response.

The key's record is written in the write's own transaction, so the two commit
together or not at all. While a request holds a key (from its look-up to its
commit, under a transaction-scoped advisory lock), another request with that key
is refused with 409 `idempotency_key_in_use`, as the draft asks, rather than
queued: it holds no connection while the first one works, and retrying it later
gets the first response. A request refused with an error writes nothing and
records nothing: its retry is judged afresh.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Callable, Iterable

import psycopg2
from werkzeug.wrappers import Request

from todopy.db import ConnectionPool, NamedRowCursor, PinnedPool, Row
from todopy.errors import BadRequest, Conflict, TooManyRequests, Unprocessable
from todopy.fastpaths import status_line
from todopy.http import Reply, read_body, require_json_type
from todopy.settings import Settings
from todopy.sqlfiles import queries

IDEMPOTENCY_SQL = queries("idempotency")
HEADER = "Idempotency-Key"
MAX_KEY = 255
# The draft's value is a structured-field string ("..."); a bare key is taken too, and means the
# same. Its characters: printable ASCII but the quote and the backslash, so no escapes arise.
KEY_CHAR = r'[ !#-\[\]-~]'
KEY_PATTERN = (rf'"(?P<quoted>{KEY_CHAR}{{1,{MAX_KEY}}})"'
               rf'|(?P<bare>[!#-\[\]-~](?:{KEY_CHAR}{{0,{MAX_KEY - 2}}}[!#-\[\]-~])?)')
KEY = re.compile(KEY_PATTERN)
# The same, as the OpenAPI document states it (no named groups: any regex dialect reads it).
KEY_SCHEMA_PATTERN = "^(?:" + re.sub(r"\?P<\w+>", "", KEY_PATTERN) + ")$"
UNSAFE = frozenset(("POST", "PUT", "PATCH", "DELETE"))
REPLAYED = ("Idempotent-Replayed", "true")
# Response headers a replay repeats; Set-Cookie and the like are not the write's result.
KEPT_HEADERS = frozenset(("content-type", "content-length", "location", "etag"))


def applies(request: Request) -> bool:
    """Whether the request asks for an idempotent write: an unsafe method with the header."""
    return request.method in UNSAFE and HEADER in request.headers


def key_of(request: Request) -> str:
    """The request's Idempotency-Key, once its body has passed the checks that come first in
    docs/api.md's order (413, 415); 400 `invalid_idempotency_key` when malformed."""
    require_json_type(request, read_body(request))
    match = KEY.fullmatch(request.headers.get(HEADER, "").strip(" \t"))
    if match is None:
        raise BadRequest(f"{HEADER} must be 1 to {MAX_KEY} printable ASCII characters other than '\"' and '\\' "
                         "(e.g. a UUID), bare or in double quotes", code="invalid_idempotency_key")
    return match.group("quoted") or match.group("bare")


def fingerprint(request: Request, body: bytes) -> bytes:
    """What makes two requests the same request: method, path, query, If-Match and body, byte for byte."""
    digest = hashlib.sha256()
    for part in (request.method, request.path, request.query_string.decode("latin-1"),
                 request.headers.get("If-Match", "")):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    digest.update(body)
    return digest.digest()


@dataclasses.dataclass(frozen=True)
class Recorded:
    """A response as first answered, replayable as a WSGI app."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    replayed: bool = False

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        headers = [*self.headers, REPLAYED] if self.replayed else list(self.headers)
        start_response(status_line(self.status), headers)
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [self.body]


def record(reply: Reply, environ: dict) -> Recorded:
    """Run `reply` (a WSGI app) and keep what it answered."""
    answered: list = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        answered[:] = [int(status.split(" ", 1)[0]), headers]

    body = b"".join(reply(environ, start_response))
    status, headers = answered
    return Recorded(status, [(name, value) for name, value in headers if name.lower() in KEPT_HEADERS], body)


def perform(pool: ConnectionPool, settings: Settings, request: Request, user_id: str, key: str,
            write: Callable[[ConnectionPool], Reply]) -> Reply:
    """Perform `write` once for (user, key): run it in one transaction with the key's record, or
    answer the response recorded for the key; 409 while another request holds the key, 422
    when the key was used for another request, 429 past the user's bound of live keys."""
    try:
        return _attempt(pool, settings, request, user_id, key, write, savepoints=False)
    except _Again:
        # A statement the write handles was refused, and took the transaction with it (it
        # would not have on its own): all again, each statement under a savepoint.
        return _attempt(pool, settings, request, user_id, key, write, savepoints=True)


class _Again(Exception):
    """The attempt's transaction was lost to a refused statement that the write meant to handle."""


def _attempt(pool: ConnectionPool, settings: Settings, request: Request, user_id: str, key: str,
             write: Callable[[ConnectionPool], Reply], *, savepoints: bool) -> Reply:
    body = read_body(request)                   # already read and checked by `key_of`
    params = {"user": user_id, "key": key, "keep_seconds": settings.idempotency_ttl,
              "max_keys": settings.idempotency_max_keys}
    with pool.cursor() as cur:                  # one transaction: the key's look-up, the write, its record
        cur.execute(IDEMPOTENCY_SQL["lock"], params)
        if not _one(cur).locked:
            raise Conflict(f"a request with this {HEADER} is still in progress; retry it shortly",
                           code="idempotency_key_in_use", headers=[("Retry-After", "1")])
        # A statement of its own, after the lock: its snapshot sees the record of whoever held it.
        cur.execute(IDEMPOTENCY_SQL["find"], params)
        found = _one(cur)
        sent = fingerprint(request, body)
        if found.status is not None:
            if bytes(found.fingerprint) != sent:
                raise Unprocessable(f"this {HEADER} was used for another request (method, path, query, "
                                    "If-Match or body differ); send a new key for a new request",
                                    code="idempotency_key_reused")
            return Recorded(found.status, [(name, value) for name, value in found.headers], bytes(found.body),
                            replayed=True)
        if found.live >= settings.idempotency_max_keys:
            raise TooManyRequests(f"you have {settings.idempotency_max_keys} {HEADER}s in use, the most one may "
                                  "have; send this write without a key, or when the oldest expires",
                                  retry_after=max(1, found.oldest_expires_in or 1), code="too_many_idempotency_keys")
        pinned = PinnedPool(cur.connection, savepoints=savepoints)
        try:
            # An HTTP error raised here rolls the transaction back: nothing written, nothing recorded.
            answer = record(write(pinned), request.environ)
        except psycopg2.Error:
            if pinned.failed:
                raise _Again() from None
            raise
        if pinned.failed:
            raise _Again()
        cur.execute(IDEMPOTENCY_SQL["store"], {**params, "fingerprint": sent, "status": answer.status,
                                               "headers": json.dumps(answer.headers), "body": answer.body})
    pinned.committed()          # the `with` committed the write and its record
    return answer


def _one(cur: NamedRowCursor) -> Row:
    """The row of a statement that always answers one."""
    row = cur.fetchone()
    assert row is not None
    return row
