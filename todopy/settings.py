"""One settings object, read once from the environment and passed down."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names it."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {raw!r}")
    return value


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip().rstrip("/") for item in env.get(name, "").split(",") if item.strip())


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything configurable, with the defaults a developer laptop wants.

    Every field maps to one environment variable, documented in docs/operations.md.
    """

    database_url: str | None = None          # DATABASE_URL; None: embedded PostgreSQL
    data_dir: Path = Path("var/pg")          # TODOPY_DATA_DIR, for the embedded PostgreSQL
    host: str = "127.0.0.1"                  # HOST
    port: int = 8000                         # PORT
    workers: int = 1                         # TODOPY_WORKERS
    pool_size: int = 8                       # TODOPY_POOL_SIZE: connections per process (+1 for LISTEN)
    db_timeout: float = 2.0                  # TODOPY_DB_TIMEOUT: seconds to connect / wait for a pooled connection
    statement_timeout_ms: int = 5000         # TODOPY_STATEMENT_TIMEOUT_MS
    allowed_origins: tuple[str, ...] = ()    # TODOPY_ALLOWED_ORIGINS: extra origins allowed to write with cookies
    session_ttl: int = 30 * 24 * 3600        # TODOPY_SESSION_TTL seconds
    token_cache_ttl: float = 5.0             # TODOPY_TOKEN_CACHE_TTL seconds a resolved token is trusted
    login_max_failures: int = 10             # TODOPY_LOGIN_MAX_FAILURES before 429
    login_cooldown: int = 60                 # TODOPY_LOGIN_COOLDOWN seconds
    hash_workers: int = 2                    # TODOPY_HASH_WORKERS: password hashes at once, per process
    hash_queue: int = 8                      # TODOPY_HASH_QUEUE: more waiting for one; past it 503 at once
    auth_per_client: int = 2                 # TODOPY_AUTH_PER_CLIENT: sign-ins/ups in progress per client
    write_timeout: float = 30.0              # TODOPY_WRITE_TIMEOUT: seconds a stream may make no write progress
    ping_interval: float = 25.0              # TODOPY_PING_INTERVAL seconds between websocket pings
    presence_timeout: float = 30.0           # TODOPY_PRESENCE_TIMEOUT: seconds a quiet tab or process stays present
    stream_queue_size: int = 1000            # TODOPY_STREAM_QUEUE: changes buffered per stream before 4008
    changelog_retention_s: int = 7 * 24 * 3600   # TODOPY_CHANGELOG_RETENTION: seconds of change log kept
    housekeeping_interval: float = 60.0      # TODOPY_HOUSEKEEPING_INTERVAL: seconds between prunes of the log and sessions
    reconcile_interval: float = 5.0          # TODOPY_RECONCILE_INTERVAL: seconds between head-rev checks of followed lists
    ringer_lease: float = 1.0                # TODOPY_RINGER_LEASE: seconds a ringer that stops renewing keeps its role
    ring_silence: float = 1.0                # TODOPY_RING_SILENCE: seconds without a ring before reconciling that often
    idle_in_transaction_timeout_ms: int = 10_000  # TODOPY_IDLE_IN_TRANSACTION_TIMEOUT_MS for the server's connections
    read_timeout: float = 30.0               # TODOPY_READ_TIMEOUT: seconds for request headers and bodies
    max_streams_per_user: int = 100          # TODOPY_MAX_STREAMS_PER_USER: open streams per user, per process
    fd_reserve: int = 200                    # TODOPY_FD_RESERVE: descriptors streams leave to everything else
    write_burst: int = 10_000                # TODOPY_WRITE_BURST: changed rows a user may write at once
    write_rate: float = 5.0                  # TODOPY_WRITE_RATE: changed rows per second a user earns back
    proxy_hops: int = 0                      # TODOPY_PROXY_HOPS: trusted X-Forwarded-* proxies in front
    idempotency_ttl: int = 24 * 3600         # TODOPY_IDEMPOTENCY_TTL: seconds an Idempotency-Key is remembered
    idempotency_max_keys: int = 10_000       # TODOPY_IDEMPOTENCY_MAX_KEYS: live keys per user; past it 429
    log_format: str = "text"                 # TODOPY_LOG_FORMAT: text | json
    log_level: str = "INFO"                  # TODOPY_LOG_LEVEL

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        log_format = env.get("TODOPY_LOG_FORMAT") or "text"
        if log_format not in ("text", "json"):
            raise SettingsError(f"TODOPY_LOG_FORMAT must be 'text' or 'json', got {log_format!r}")
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            data_dir=Path(env.get("TODOPY_DATA_DIR") or "var/pg"),
            host=env.get("HOST") or "127.0.0.1",
            port=_int(env, "PORT", 8000),
            workers=_int(env, "TODOPY_WORKERS", 1, minimum=1),
            pool_size=_int(env, "TODOPY_POOL_SIZE", 8, minimum=1),
            db_timeout=_float(env, "TODOPY_DB_TIMEOUT", 2.0),
            statement_timeout_ms=_int(env, "TODOPY_STATEMENT_TIMEOUT_MS", 5000, minimum=1),
            allowed_origins=_list(env, "TODOPY_ALLOWED_ORIGINS"),
            session_ttl=_int(env, "TODOPY_SESSION_TTL", 30 * 24 * 3600, minimum=60),
            token_cache_ttl=float(_int(env, "TODOPY_TOKEN_CACHE_TTL", 5)),
            login_max_failures=_int(env, "TODOPY_LOGIN_MAX_FAILURES", 10, minimum=1),
            login_cooldown=_int(env, "TODOPY_LOGIN_COOLDOWN", 60, minimum=1),
            hash_workers=_int(env, "TODOPY_HASH_WORKERS", 2, minimum=1),
            hash_queue=_int(env, "TODOPY_HASH_QUEUE", 8),
            auth_per_client=_int(env, "TODOPY_AUTH_PER_CLIENT", 2, minimum=1),
            write_timeout=_float(env, "TODOPY_WRITE_TIMEOUT", 30.0),
            ping_interval=_float(env, "TODOPY_PING_INTERVAL", 25.0),
            presence_timeout=_float(env, "TODOPY_PRESENCE_TIMEOUT", 30.0),
            stream_queue_size=_int(env, "TODOPY_STREAM_QUEUE", 1000, minimum=1),
            changelog_retention_s=_int(env, "TODOPY_CHANGELOG_RETENTION", 7 * 24 * 3600, minimum=1),
            housekeeping_interval=_float(env, "TODOPY_HOUSEKEEPING_INTERVAL", 60.0),
            reconcile_interval=_float(env, "TODOPY_RECONCILE_INTERVAL", 5.0),
            ringer_lease=_float(env, "TODOPY_RINGER_LEASE", 1.0),
            ring_silence=_float(env, "TODOPY_RING_SILENCE", 1.0),
            idle_in_transaction_timeout_ms=_int(env, "TODOPY_IDLE_IN_TRANSACTION_TIMEOUT_MS", 10_000, minimum=1),
            read_timeout=_float(env, "TODOPY_READ_TIMEOUT", 30.0),
            max_streams_per_user=_int(env, "TODOPY_MAX_STREAMS_PER_USER", 100, minimum=1),
            fd_reserve=_int(env, "TODOPY_FD_RESERVE", 200),
            write_burst=_int(env, "TODOPY_WRITE_BURST", 10_000, minimum=1),
            write_rate=_float(env, "TODOPY_WRITE_RATE", 5.0),
            proxy_hops=_int(env, "TODOPY_PROXY_HOPS", 0),
            idempotency_ttl=_int(env, "TODOPY_IDEMPOTENCY_TTL", 24 * 3600, minimum=1),
            idempotency_max_keys=_int(env, "TODOPY_IDEMPOTENCY_MAX_KEYS", 10_000, minimum=1),
            log_format=log_format,
            log_level=(env.get("TODOPY_LOG_LEVEL") or "INFO").upper(),
        )

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)
