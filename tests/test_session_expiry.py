"""Sessions end when their TTL does: REST and handshakes refuse the token, open streams close with 1008.

Expired sessions are found by the housekeeping that runs once a minute in every
worker (README: "each worker prunes once a minute"), so this one test also shows
that loop is scheduled at all: within its first minute, it closes the stream of
the expired session and prunes the change log.
"""
from __future__ import annotations

import time

import requests

from tests.pg import expire_session, new_database
from tests.contract import set_cookie_attributes, sign_in
from tests.support import LIST, PASSWORD, Api, Stream, read_until, refused, register, wait_for

TTL = 120                   # seconds; the least allowed is 60
TOKEN_CACHE_TTL = 5         # the default: a resolved token is trusted this long without a query
HOUSEKEEPING = 8.0          # seconds between housekeeping runs (TODOPY_HOUSEKEEPING_INTERVAL)
RECONCILE = 1.0             # seconds between the dispatcher's checks of open streams' sessions
MARGIN = 10.0               # a busy machine, a slow start


def resume_messages(server, api: Api, since: int) -> list[dict]:
    """What a stream resuming after `since` gets before its ready."""
    s = Stream(server.ws_url, f"{LIST}?since={since}", api.token)
    try:
        return s.sync()[0]
    finally:
        s.close()


def test_an_expired_session_is_refused_and_its_streams_closed_with_1008(start_server, postgres, sql):
    dsn = new_database(postgres, sql)           # its own change log, pruned at will
    server = start_server(env={"TODOPY_SESSION_TTL": str(TTL), "TODOPY_CHANGELOG_RETENTION": "1",
                               "TODOPY_PING_INTERVAL": "600", "TODOPY_HOUSEKEEPING_INTERVAL": str(HOUSEKEEPING),
                               "TODOPY_RECONCILE_INTERVAL": str(RECONCILE)},
                          database=dsn)
    started = time.monotonic()                  # the worker started a little before: its first run is due

    signed_up = requests.post(server.base_url + "/api/users/", json={"username": "expiring",
                                                                     "password": PASSWORD}, timeout=10)
    assert signed_up.status_code == 201
    assert set_cookie_attributes(signed_up)["max-age"] == str(TTL)
    signed_in = sign_in(server.base_url, "expiring")
    assert set_cookie_attributes(signed_in)["max-age"] == str(TTL)
    expiring = Api(server.base_url, signed_up.json()["token"], signed_up.json()["user"])
    staying = Api(server.base_url, signed_in.json()["token"], signed_in.json()["user"])
    expiring.create_todo("first")
    expiring.create_todo("second")

    doomed = Stream(server.ws_url, LIST, expiring.token)
    kept = Stream(server.ws_url, LIST, staying.token)
    try:
        doomed.sync()
        kept.sync()
        resumed = resume_messages(server, staying, 0)        # from before the first change
        assert [m["type"] for m in resumed] == ["change", "change"], "nothing pruned yet: a resume"

        expire_session(dsn, expiring.token)
        expired = time.monotonic()
        assert doomed.recv(RECONCILE + MARGIN) is None, "the expired session's stream must close"
        closed_after = time.monotonic() - expired
        assert doomed.close_code == 1008
        # Within the reconcile interval (plus a turn of a busy dispatcher): not the token cache's TTL.
        assert closed_after <= RECONCILE + 2.0
        wait_for(lambda: expiring.get(LIST).status_code == 401, timeout=TOKEN_CACHE_TTL + 2)
        assert refused(server, LIST, expiring.token) == 401
        assert staying.get(LIST).status_code == 200, "the user's other session lives on"
        third = staying.create_todo("third")
        read_until(kept, lambda m: m["type"] == "change" and m["todo"]["id"] == third["id"])
    finally:
        doomed.close(), kept.close()
    # Housekeeping runs by itself and prunes the change log (retention 1 s): the old position is
    # then answered by a snapshot.
    wait_for(lambda: [m["type"] for m in resume_messages(server, staying, 0)] == ["snapshot"],
             timeout=max(0.0, started + 2 * HOUSEKEEPING + MARGIN - time.monotonic()), interval=0.5)
    print(f"\nsession expiry: stream closed with 1008 {closed_after:.1f}s after the session expired")
    assert register(server.base_url).get(LIST).status_code == 200
