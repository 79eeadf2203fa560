"""StreamAdmission: places per user and in all, held for a stream's life and given back."""
from __future__ import annotations

import contextlib

import pytest
from prometheus_client import CollectorRegistry, Counter

from todopy.admission import StreamAdmission
from todopy.errors import ServerBusy, TooManyRequests


def admission(per_user: int, capacity: int) -> tuple[StreamAdmission, Counter]:
    refused = Counter("refused", "refusals", ["limit"], registry=CollectorRegistry())
    return StreamAdmission(per_user, capacity, refused), refused


def test_a_user_past_their_cap_is_refused_and_a_closed_stream_gives_its_place_back():
    a, refused = admission(per_user=2, capacity=10)
    with contextlib.ExitStack() as streams:
        streams.enter_context(a.admit("u"))
        streams.enter_context(a.admit("u"))
        with pytest.raises(TooManyRequests) as caught:
            streams.enter_context(a.admit("u"))
        assert caught.value.code == "too_many_streams" and dict(caught.value.headers)["Retry-After"] == "5"
        streams.enter_context(a.admit("v"))             # others are not affected
        assert a.total == 3
    assert a.total == 0 and not a._by_user
    assert refused.labels("streams_per_user")._value.get() == 1
    with a.admit("u"):
        pass


def test_the_process_refuses_streams_past_its_capacity_with_503():
    a, refused = admission(per_user=5, capacity=3)
    with contextlib.ExitStack() as streams:
        for user in ("a", "b", "c"):
            streams.enter_context(a.admit(user))
        with pytest.raises(ServerBusy) as caught:
            streams.enter_context(a.admit("d"))
        assert caught.value.status == 503 and caught.value.code == "server_busy"
    assert refused.labels("descriptors")._value.get() == 1


def test_a_place_is_given_back_when_the_stream_fails():
    a, _ = admission(per_user=1, capacity=5)
    with pytest.raises(RuntimeError):
        with a.admit("u"):
            raise RuntimeError("the handshake failed")
    with a.admit("u"):
        assert a.total == 1


@pytest.mark.parametrize("open_files, reserve, capacity", [(1024, 200, 824), (300, 200, 150), (64, 200, 32)])
def test_capacity_is_the_descriptors_less_the_reserve_but_at_least_half(open_files, reserve, capacity):
    a = StreamAdmission.for_descriptors(100, open_files, reserve, Counter("r", "r", ["limit"],
                                                                             registry=CollectorRegistry()))
    assert a.capacity == capacity


def test_a_kept_place_outlives_the_admitting_block_until_given_back_once():
    a, _ = admission(per_user=1, capacity=5)
    with a.admit("u") as place:
        give_back = place.keep()
    assert a.total == 1                                 # the stream runs on after its handshake's request
    with pytest.raises(TooManyRequests):
        with a.admit("u"):
            pass
    give_back()
    give_back()                                         # its connection closes once; a second call is nothing
    assert a.total == 0 and not a._by_user
    with a.admit("u"):
        pass
