"""Streams end when their session does, however the news is lost; resumes are bounded; If-Match is strict."""
from __future__ import annotations

import time

import psycopg2

from tests.support import LIST, Api, Stream, expect_close, register


def test_an_expired_session_closes_its_streams_with_1008_within_the_reconcile_interval(start_server, sql):
    server = start_server(env={"TODOPY_RECONCILE_INTERVAL": "1"})
    api = register(server.base_url)
    s = Stream(server.ws_url, LIST, api.token)
    try:
        s.sync()
        sql("UPDATE sessions SET expires_time = now() - interval '1 second' WHERE user_id = %s", (api.user["id"],))
        expired = time.monotonic()
        expect_close(s, 1008, timeout=5)
        assert time.monotonic() - expired < 1 + 2.0      # the interval, plus a turn of a busy dispatcher
    finally:
        s.close()


def test_a_sign_out_missed_by_the_listener_still_closes_the_stream(start_server, dsn):
    """The revocation's notification is sent while the LISTEN connection is down (it is lost):
    the reconnect checks the sessions of every open stream."""
    server = start_server(env={"TODOPY_RECONCILE_INTERVAL": "60"})   # the slow timer cannot be what saves it
    api = register(server.base_url)
    s = Stream(server.ws_url, LIST, api.token)
    conn = psycopg2.connect(dsn)
    try:
        s.sync()
        with conn.cursor() as cur:
            # One transaction: the listener is gone before the revocation's NOTIFY is sent at commit.
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = 'todopy-listener' AND datname = current_database()")
            cur.execute("DELETE FROM sessions WHERE user_id = %s", (api.user["id"],))
        conn.commit()
        expect_close(s, 1008, timeout=10)
        assert Api(server.base_url, api.token).get(LIST).status_code == 401
    finally:
        conn.close()
        s.close()


def test_a_resume_longer_than_a_queue_gets_a_snapshot(start_server):
    server = start_server(env={"TODOPY_STREAM_QUEUE": "20"})
    api = register(server.base_url)
    todo = api.create_todo("edited often")
    for i in range(30):
        api.patch(f"/api/todos/{todo['id']}/", {"title": f"edit {i}"})
    head = api.list_todos()["rev"]
    near = Stream(server.ws_url, f"{LIST}?since={head - 10}", api.token)
    far = Stream(server.ws_url, f"{LIST}?since={head - 25}", api.token)
    try:
        missed, ready = near.sync()
        assert [m["rev"] for m in missed] == list(range(head - 9, head + 1)) and ready["rev"] == head
        (snapshot,), ready = far.sync()
        assert snapshot["type"] == "snapshot" and snapshot["todos"][0]["title"] == "edit 29"
    finally:
        near.close(), far.close()


def test_if_match_takes_a_list_of_tags_and_compares_strongly(alice: Api):
    todo = alice.create_todo()
    path = f"/api/todos/{todo['id']}/"
    rev = todo["rev"]
    weak = alice.patch(path, {"title": "weak"}, headers={"If-Match": f'W/"{rev}"'})
    assert weak.status_code == 412                         # a weak tag never matches strongly
    listed = alice.patch(path, {"title": "listed"}, headers={"If-Match": f'"999999", "{rev}"'})
    assert listed.status_code == 200 and listed.json()["title"] == "listed"
    stale = alice.patch(path, {"title": "stale"}, headers={"If-Match": f'"{rev}", "999999"'})
    assert stale.status_code == 412 and f"since rev {rev}, 999999" in stale.json()["error"]["message"]
    garbage = alice.patch(path, {"title": "garbage"}, headers={"If-Match": 'not a tag'})
    assert garbage.status_code == 412
    anything = alice.patch(path, {"title": "any"}, headers={"If-Match": "*"})
    assert anything.status_code == 200
    assert alice.get(path).json()["title"] == "any"


def test_a_reconnect_storm_queues_for_the_pool_instead_of_failing_fast(start_server, dsn):
    """Handshakes wait (bounded) for a pooled connection, where a REST request gets its fast 503."""
    import concurrent.futures

    from tests.pg import lock_sessions

    server = start_server(env={"TODOPY_POOL_SIZE": "1", "TODOPY_DB_TIMEOUT": "1", "TODOPY_TOKEN_CACHE_TTL": "0"})
    users = [register(server.base_url) for _ in range(3)]
    locker = psycopg2.connect(dsn)
    try:
        lock_sessions(locker)            # every token look-up now waits, and holds the one pooled connection

        def handshake(api: Api) -> str:
            s = Stream(server.ws_url, LIST, api.token, timeout=30)
            try:
                return s.sync()[1]["type"]
            finally:
                s.close()

        with concurrent.futures.ThreadPoolExecutor(10) as storm:
            streams = [storm.submit(handshake, users[i % 3]) for i in range(10)]
            time.sleep(0.5)
            rest = Api(server.base_url, users[0].token).get(LIST)
            assert rest.status_code == 503                 # REST fails fast, as documented
            time.sleep(1.5)                                # past TODOPY_DB_TIMEOUT: handshakes still queue
            locker.rollback()
            assert [f.result(30) for f in streams] == ["ready"] * 10
    finally:
        locker.close()
