"""Settings.from_env: every variable read, every bad value refused with a message that names it."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from todopy.settings import Settings, SettingsError

# variable -> (the field it sets, a value other than the default, what the field becomes)
EVERY_VARIABLE = {
    "DATABASE_URL": ("database_url", "postgresql://db/todopy", "postgresql://db/todopy"),
    "TODOPY_DATA_DIR": ("data_dir", "/srv/pg", Path("/srv/pg")),
    "HOST": ("host", "0.0.0.0", "0.0.0.0"),
    "PORT": ("port", "9000", 9000),
    "TODOPY_WORKERS": ("workers", "4", 4),
    "TODOPY_POOL_SIZE": ("pool_size", "3", 3),
    "TODOPY_DB_TIMEOUT": ("db_timeout", "0.5", 0.5),
    "TODOPY_STATEMENT_TIMEOUT_MS": ("statement_timeout_ms", "250", 250),
    "TODOPY_ALLOWED_ORIGINS": ("allowed_origins", " https://a.example/ ,,https://b.example",
                               ("https://a.example", "https://b.example")),
    "TODOPY_SESSION_TTL": ("session_ttl", "3600", 3600),
    "TODOPY_TOKEN_CACHE_TTL": ("token_cache_ttl", "0", 0.0),
    "TODOPY_LOGIN_MAX_FAILURES": ("login_max_failures", "3", 3),
    "TODOPY_LOGIN_COOLDOWN": ("login_cooldown", "2", 2),
    "TODOPY_HASH_WORKERS": ("hash_workers", "1", 1),
    "TODOPY_HASH_QUEUE": ("hash_queue", "0", 0),
    "TODOPY_AUTH_PER_CLIENT": ("auth_per_client", "5", 5),
    "TODOPY_WRITE_TIMEOUT": ("write_timeout", "2.5", 2.5),
    "TODOPY_PING_INTERVAL": ("ping_interval", "1", 1.0),
    "TODOPY_PRESENCE_TIMEOUT": ("presence_timeout", "5", 5.0),
    "TODOPY_STREAM_QUEUE": ("stream_queue_size", "20", 20),
    "TODOPY_CHANGELOG_RETENTION": ("changelog_retention_s", "60", 60),
    "TODOPY_HOUSEKEEPING_INTERVAL": ("housekeeping_interval", "0.2", 0.2),
    "TODOPY_RECONCILE_INTERVAL": ("reconcile_interval", "0.1", 0.1),
    "TODOPY_RINGER_LEASE": ("ringer_lease", "2.5", 2.5),
    "TODOPY_RING_SILENCE": ("ring_silence", "0.5", 0.5),
    "TODOPY_IDLE_IN_TRANSACTION_TIMEOUT_MS": ("idle_in_transaction_timeout_ms", "500", 500),
    "TODOPY_READ_TIMEOUT": ("read_timeout", "3", 3.0),
    "TODOPY_PROXY_HOPS": ("proxy_hops", "1", 1),
    "TODOPY_MAX_STREAMS_PER_USER": ("max_streams_per_user", "5", 5),
    "TODOPY_FD_RESERVE": ("fd_reserve", "0", 0),
    "TODOPY_WRITE_BURST": ("write_burst", "500", 500),
    "TODOPY_WRITE_RATE": ("write_rate", "0.5", 0.5),
    "TODOPY_IDEMPOTENCY_TTL": ("idempotency_ttl", "120", 120),
    "TODOPY_IDEMPOTENCY_MAX_KEYS": ("idempotency_max_keys", "7", 7),
    "TODOPY_LOG_FORMAT": ("log_format", "json", "json"),
    "TODOPY_LOG_LEVEL": ("log_level", "debug", "DEBUG"),
}

# variable -> values it refuses, each with what the message must say
REFUSED = {
    "PORT": [("eighty", "must be an integer"), ("-1", "must be at least 0")],
    "TODOPY_WORKERS": [("0", "must be at least 1"), ("2.5", "must be an integer")],
    "TODOPY_POOL_SIZE": [("0", "must be at least 1")],
    "TODOPY_DB_TIMEOUT": [("0", "must be positive"), ("-2", "must be positive"), ("soon", "must be a number")],
    "TODOPY_STATEMENT_TIMEOUT_MS": [("0", "must be at least 1")],
    "TODOPY_SESSION_TTL": [("59", "must be at least 60")],
    "TODOPY_TOKEN_CACHE_TTL": [("-1", "must be at least 0"), ("1.5", "must be an integer")],
    "TODOPY_LOGIN_MAX_FAILURES": [("0", "must be at least 1")],
    "TODOPY_LOGIN_COOLDOWN": [("0", "must be at least 1")],
    "TODOPY_HASH_WORKERS": [("0", "must be at least 1")],
    "TODOPY_HASH_QUEUE": [("-1", "must be at least 0")],
    "TODOPY_AUTH_PER_CLIENT": [("0", "must be at least 1")],
    "TODOPY_WRITE_TIMEOUT": [("0", "must be positive")],
    "TODOPY_PING_INTERVAL": [("never", "must be a number")],
    "TODOPY_STREAM_QUEUE": [("0", "must be at least 1")],
    "TODOPY_CHANGELOG_RETENTION": [("0", "must be at least 1"), ("1d", "must be an integer")],
    "TODOPY_HOUSEKEEPING_INTERVAL": [("0", "must be positive")],
    "TODOPY_RECONCILE_INTERVAL": [("-0.1", "must be positive")],
    "TODOPY_RINGER_LEASE": [("0", "must be positive")],
    "TODOPY_RING_SILENCE": [("soon", "must be a number")],
    "TODOPY_IDLE_IN_TRANSACTION_TIMEOUT_MS": [("0", "must be at least 1")],
    "TODOPY_READ_TIMEOUT": [("0", "must be positive")],
    "TODOPY_PROXY_HOPS": [("-1", "must be at least 0")],
    "TODOPY_MAX_STREAMS_PER_USER": [("0", "must be at least 1")],
    "TODOPY_FD_RESERVE": [("-1", "must be at least 0")],
    "TODOPY_WRITE_BURST": [("0", "must be at least 1"), ("lots", "must be an integer")],
    "TODOPY_WRITE_RATE": [("0", "must be positive")],
    "TODOPY_LOG_FORMAT": [("xml", "must be 'text' or 'json'")],
}


def test_an_empty_environment_gives_the_defaults():
    assert Settings.from_env({}) == Settings()


def test_every_field_has_a_variable_and_every_variable_is_read():
    assert sorted(field for field, _, _ in EVERY_VARIABLE.values()) == sorted(
        field.name for field in dataclasses.fields(Settings))
    settings = Settings.from_env({name: raw for name, (_, raw, _) in EVERY_VARIABLE.items()})
    for name, (field, _, expected) in EVERY_VARIABLE.items():
        assert getattr(settings, field) == expected, name
        assert expected != getattr(Settings(), field), f"{name}: pick a value other than the default"


@pytest.mark.parametrize("name, raw, says", [(name, raw, says) for name, cases in REFUSED.items()
                                             for raw, says in cases])
def test_a_bad_value_is_refused_with_its_variables_name(name, raw, says):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({name: raw})
    assert str(refused.value).startswith(name) and says in str(refused.value) and raw in str(refused.value)


@pytest.mark.parametrize("name", sorted(EVERY_VARIABLE))
def test_an_empty_variable_means_its_default(name):
    field = EVERY_VARIABLE[name][0]
    assert getattr(Settings.from_env({name: ""}), field) == getattr(Settings(), field)
