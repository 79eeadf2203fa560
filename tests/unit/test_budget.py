"""WriteBudget: a token bucket of changed rows per user, on a clock the test moves."""
from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter

from todopy.budget import WriteBudget
from todopy.errors import TooManyRequests


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def budget(burst: int = 100, rate: float = 10.0) -> tuple[WriteBudget, Clock, Counter]:
    clock = Clock()
    refused = Counter("refused", "refusals", registry=CollectorRegistry())
    return WriteBudget(burst, rate, refused, clock), clock, refused


def test_a_write_is_let_in_while_rows_are_left_and_pays_for_all_it_changed():
    b, clock, refused = budget()
    b.check("u")
    b.spend("u", 99)
    b.check("u")                 # one row left: the next write is let in, whatever its size
    b.spend("u", 500)            # a bulk write leaves the bucket in debt
    with pytest.raises(TooManyRequests) as caught:
        b.check("u")
    assert caught.value.status == 429 and caught.value.code == "slow_down"
    # 499 rows of debt, plus the one a write needs, at 10 rows/s: 50 s.
    assert dict(caught.value.headers)["Retry-After"] == "50"
    assert refused._value.get() == 1
    clock.now += 49.9
    with pytest.raises(TooManyRequests):
        b.check("u")
    clock.now += 0.1
    b.check("u")


def test_users_have_buckets_of_their_own_and_refills_stop_at_the_burst():
    b, clock, _ = budget()
    b.spend("greedy", 1000)
    with pytest.raises(TooManyRequests):
        b.check("greedy")
    b.check("other")
    clock.now += 3600            # an hour idle earns no more than the burst
    b.spend("greedy", 1000)      # repaid the debt, refilled to 100, then spent 1000
    with pytest.raises(TooManyRequests) as caught:
        b.check("greedy")
    assert dict(caught.value.headers)["Retry-After"] == "91"


def test_the_retry_after_is_never_below_one_second():
    b, _, _ = budget(rate=1000.0)
    b.spend("u", 100)
    with pytest.raises(TooManyRequests) as caught:
        b.check("u")
    assert dict(caught.value.headers)["Retry-After"] == "1"


def test_full_buckets_are_forgotten_when_many_are_kept(monkeypatch):
    monkeypatch.setattr("todopy.budget.FORGET_ABOVE", 3)
    b, clock, _ = budget()
    for user in ("a", "b", "c"):
        b.spend(user, 5)
    clock.now += 1               # refilled: 5 rows at 10 rows/s
    b.spend("d", 50)
    assert set(b._buckets) == {"d"}
