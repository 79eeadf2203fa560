"""Password hashing is bounded: per client and in all, sign-ins and sign-ups are refused at once past the limits.

Clients are told apart by address; behind a trusted proxy (TODOPY_PROXY_HOPS) by
X-Forwarded-For, which is how these tests play many clients from loopback.
"""
from __future__ import annotations

import concurrent.futures
import itertools

import requests

from tests.contract import PASSWORD, assert_error
from tests.support import new_username, register

FLOOD = 40
LIMITS = {"TODOPY_PROXY_HOPS": "1", "TODOPY_HASH_WORKERS": "1", "TODOPY_HASH_QUEUE": "3",
          "TODOPY_AUTH_PER_CLIENT": "2"}


def attempt(base_url: str, path: str, client: str, username: str | None = None,
            password: str = "wrong password") -> requests.Response:
    return requests.post(base_url + path, json={"username": username or new_username("f"), "password": password},
                         headers={"X-Forwarded-For": client}, timeout=60)


def flood(base_url: str, path: str, clients: list[str]) -> list[requests.Response]:
    with concurrent.futures.ThreadPoolExecutor(FLOOD) as pool:
        return list(pool.map(lambda client: attempt(base_url, path, client), clients))


def test_one_client_gets_at_most_two_password_checks_at_once_the_rest_429(start_server):
    server = start_server(env=LIMITS)
    for path, done in (("/api/session/", 401), ("/api/users/", 201)):
        answers = flood(server.base_url, path, ["203.0.113.7"] * FLOOD)
        statuses = [answer.status_code for answer in answers]
        assert set(statuses) <= {done, 429}, statuses
        assert statuses.count(429) >= FLOOD // 2, statuses      # refused without hashing
        for answer in answers:
            if answer.status_code == 429:
                assert_error(answer, 429)
                assert int(answer.headers["Retry-After"]) >= 1
    # Another client is served meanwhile, and the flooder again once its attempts are done.
    user = register(server.base_url)
    signed_in = attempt(server.base_url, "/api/session/", "198.51.100.1", user.user["username"], PASSWORD)
    assert signed_in.status_code == 200
    assert attempt(server.base_url, "/api/session/", "203.0.113.7").status_code == 401


def test_many_clients_at_once_fill_the_hashing_queue_and_the_rest_get_503_at_once(start_server):
    server = start_server(env=LIMITS)
    clients = [f"198.18.{i // 250}.{i % 250 + 1}" for i in range(FLOOD)]
    for path, done in (("/api/session/", 401), ("/api/users/", 201)):
        answers = flood(server.base_url, path, clients)
        statuses = [answer.status_code for answer in answers]
        assert set(statuses) <= {done, 503}, statuses
        assert statuses.count(503) >= FLOOD // 2, statuses
        for answer in answers:
            if answer.status_code == 503:
                assert_error(answer, 503, code="server_busy")
                assert int(answer.headers["Retry-After"]) >= 1


def test_ipv6_clients_are_counted_by_their_64(start_server):
    server = start_server(env=LIMITS)
    one_host = [f"2001:db8:1:2::{i:x}" for i in range(1, FLOOD + 1)]
    statuses = [answer.status_code for answer in flood(server.base_url, "/api/session/", one_host)]
    assert statuses.count(429) >= FLOOD // 2, statuses


def test_limits_count_attempts_in_progress_not_past_ones(start_server):
    server = start_server(env=LIMITS)
    # One at a time, a client is never refused: the limits bound work at once, not a rate.
    for _ in itertools.repeat(None, 12):
        assert attempt(server.base_url, "/api/users/", "192.0.2.9").status_code == 201
