"""Users, sign-in with throttling, and session tokens (stored hashed, cached briefly)."""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import ipaddress
import math
import secrets
import time
from typing import Callable, Iterator

import gevent
import gevent.lock
from werkzeug.security import check_password_hash, generate_password_hash

from todopy.db import ConnectionPool, Row
from todopy.errors import Conflict, ServerBusy, TooManyRequests, Unauthorized
from todopy.settings import Settings
from todopy.sqlfiles import queries

ACCOUNTS_SQL = queries("accounts")
WRONG_CREDENTIALS = "unknown username or wrong password"
# Verified against when the user does not exist, so both failures take as long.
_DUMMY_HASH = generate_password_hash("not a real password", method="scrypt")


@dataclasses.dataclass(frozen=True)
class User:
    id: str
    username: str
    personal_list: str          # the list behind /api/todos/, made with the account

    @classmethod
    def of(cls, row: Row) -> User:
        """The user of a row with their id, username and personal_list."""
        return cls(str(row.id), row.username, str(row.personal_list))


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _off_loop(function: Callable, *args: object) -> object:
    # scrypt holds the CPU for tens of milliseconds; in a thread (hashlib releases
    # the GIL) it does not stall every other greenlet of the process.
    return gevent.get_hub().threadpool.apply(function, args)


def client_key(address: str | None) -> str:
    """Who is asking, for per-client limits: the address, or its /64 for IPv6 (one host holds a /64)."""
    if not address:
        return "-"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class HashGate:
    """A bounded queue in front of password hashing, which is slow on purpose (scrypt).

    At most `workers` hashes run at once (more only share the same cores, and every
    one gets slower); at most `queue` more wait for a turn. Past that a request is
    refused at once (503 with Retry-After) instead of joining a queue whose wait
    would be seconds. One client may have at most `per_client` sign-ins or sign-ups
    in progress (429 past it), so one client alone cannot fill the queue.
    """

    def __init__(self, workers: int, queue: int, per_client: int) -> None:
        self._slots = gevent.lock.Semaphore(workers)
        self.limit = workers + queue
        self.per_client = per_client
        self.pending = 0
        self._by_client: dict[str, int] = {}

    @contextlib.contextmanager
    def admit(self, client: str) -> Iterator[None]:
        """Count a sign-in or sign-up of `client` for as long as it lasts; refuse it if over a limit."""
        held = self._by_client.get(client, 0)
        if held >= self.per_client:
            raise TooManyRequests("too many sign-ins or sign-ups at once from this address; "
                                  "wait for one to finish", 1)
        if self.pending >= self.limit:
            raise ServerBusy("the server is busy checking passwords; try again in a second", 1)
        self._by_client[client] = held + 1
        self.pending += 1
        try:
            yield
        finally:
            self.pending -= 1
            left = self._by_client[client] - 1
            if left:
                self._by_client[client] = left
            else:
                del self._by_client[client]

    def hash(self, function: Callable, *args: object) -> object:
        """`function(*args)` in a worker thread, when a slot is free."""
        with self._slots:
            return _off_loop(function, *args)


class Accounts:
    """Everything about who a request is; the only code that touches passwords and tokens."""

    CACHE_LIMIT = 50_000

    def __init__(self, pool: ConnectionPool, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.pool = pool
        self.settings = settings
        self.clock = clock
        self._cache: dict[bytes, tuple[User, float]] = {}
        self._caching = True          # only while revocations are heard (the change listener is up)
        self.gate = HashGate(settings.hash_workers, settings.hash_queue, settings.auth_per_client)

    # -- sign-up / sign-in / sign-out ---------------------------------------

    def register(self, username: str, password: str, client: str = "-") -> tuple[User, str]:
        with self.gate.admit(client_key(client)):
            return self._register(username, password)

    def sign_in(self, username: str, password: str, client: str = "-") -> tuple[User, str]:
        with self.gate.admit(client_key(client)):
            return self._sign_in(username, password)

    def _register(self, username: str, password: str) -> tuple[User, str]:
        password_hash = self.gate.hash(generate_password_hash, password, "scrypt")
        with self.pool.cursor() as cur:
            cur.execute(ACCOUNTS_SQL["create_user"], {"username": username, "password_hash": password_hash})
            created = cur.fetchone()
            if created is None:
                raise Conflict("username is taken", code="username_taken")
            cur.execute(ACCOUNTS_SQL["registered"], {"user_id": created.id})
            user = User.of(cur.fetchone())
            token = self._new_session(cur, user)
        return user, token

    def _sign_in(self, username: str, password: str) -> tuple[User, str]:
        params = {"username": username}
        attempt = self.pool.query_one(ACCOUNTS_SQL["begin_attempt"], {
            **params, "max_failures": self.settings.login_max_failures, "cooldown": self.settings.login_cooldown})
        if attempt is None:
            row = self.pool.query_one(ACCOUNTS_SQL["throttle_state"], params)
            seconds = row.seconds if row is not None and row.seconds is not None else 0
            wait = max(1, math.ceil(seconds))
            raise TooManyRequests(f"too many failed sign-ins for this username; try again in {wait} s", wait)
        found = self.pool.query_one(ACCOUNTS_SQL["user_by_name"], params)
        stored_hash = found.password_hash if found else _DUMMY_HASH
        valid = self.gate.hash(check_password_hash, stored_hash, password)
        if not (found and valid):
            raise Unauthorized(WRONG_CREDENTIALS, code="bad_credentials")   # already counted
        user = User.of(found)
        with self.pool.cursor() as cur:
            cur.execute(ACCOUNTS_SQL["clear_failures"], params)
            token = self._new_session(cur, user)
        return user, token

    def sign_out(self, token: str) -> None:
        token_hash = hash_token(token)
        self._cache.pop(token_hash, None)
        with self.pool.cursor() as cur:
            cur.execute(ACCOUNTS_SQL["delete_session"], {"token_hash": token_hash})

    # -- resolving tokens ---------------------------------------------------

    def user_for(self, token: str, *, wait: float | None = None) -> User | None:
        """The user a token belongs to, or None; one indexed query, cached for a few seconds.

        `wait`: how long to queue for a pooled connection (default: the pool's timeout)."""
        token_hash = hash_token(token)
        now = self.clock()
        cached = self._cache.get(token_hash)
        if cached is not None and cached[1] > now:
            return cached[0]
        row = self.pool.query_one(ACCOUNTS_SQL["session_user"], {"token_hash": token_hash}, timeout=wait)
        if row is None:
            self._cache.pop(token_hash, None)
            return None
        user = User.of(row)
        if self.settings.token_cache_ttl > 0 and self._caching:
            if len(self._cache) >= self.CACHE_LIMIT:
                self._cache.clear()
            self._cache[token_hash] = (user, now + self.settings.token_cache_ttl)
        return user

    def invalid_tokens(self, token_hashes: list[bytes]) -> list[bytes]:
        """Of these token hashes, those no longer valid (revoked or expired)."""
        rows = self.pool.query_all(ACCOUNTS_SQL["invalid_tokens"], {"token_hashes": [bytes(h) for h in token_hashes]})
        return [bytes(row.token_hash) for row in rows]

    def forget(self, token_hash: bytes) -> None:
        """Drop a revoked token from the cache (told by the change feed)."""
        self._cache.pop(token_hash, None)

    def trust_cache(self, trusted: bool) -> None:
        """Empty the cache, and cache again only if `trusted`: when the change listener goes
        away or comes back, a sign-out may have gone unheard, so every token is looked up afresh."""
        self._cache.clear()
        self._caching = trusted

    def _new_session(self, cur, user: User) -> str:
        token = secrets.token_urlsafe(32)
        cur.execute(ACCOUNTS_SQL["create_session"], {"token_hash": hash_token(token), "user_id": user.id,
                                          "ttl": self.settings.session_ttl})
        return token
