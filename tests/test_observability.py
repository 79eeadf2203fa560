"""Operators' view: /metrics, structured logs, and secrets kept out of both."""
from __future__ import annotations

import json
import time

import requests

from tests.support import PASSWORD, Stream, metric, register


def test_metrics_count_requests_streams_and_messages(server, alice):
    before = requests.get(server.base_url + "/metrics", timeout=5)
    assert before.status_code == 200
    assert before.headers["Content-Type"].startswith("text/plain")
    for name in ("todopy_http_requests_total", "todopy_http_request_seconds_bucket", "todopy_open_streams",
                 "todopy_stream_messages_sent_total", "todopy_write_to_send_seconds_bucket",
                 "todopy_listener_reconnects_total", "todopy_stream_slow_consumers_dropped_total"):
        assert name in before.text, name
    created_before = metric(before.text, "todopy_http_requests_total", 'method="POST",route="todos",status="201"')
    sent_before = metric(before.text, "todopy_stream_messages_sent_total")
    latencies_before = metric(before.text, "todopy_write_to_send_seconds_count")

    stream = Stream(server.ws_url, "/api/todos/", alice.token)
    try:
        stream.sync()
        alice.create_todo("counted")
        assert stream.recv(5)["type"] == "change"
        after = requests.get(server.base_url + "/metrics", timeout=5).text
        assert metric(after, "todopy_open_streams") >= 1
        assert metric(after, "todopy_http_requests_total",
                      'method="POST",route="todos",status="201"') == created_before + 1
        # Against the values read before, not ">= 1": earlier tests on this server have counted already.
        # Nothing else streams meanwhile: the one change is the one message (sync messages are not counted).
        assert metric(after, "todopy_stream_messages_sent_total") == sent_before + 1
        assert metric(after, "todopy_write_to_send_seconds_count") == latencies_before + 1
    finally:
        stream.close()


def test_json_logs_name_the_user_never_the_token(start_server):
    server = start_server(args=("--log-format", "json"))
    user = register(server.base_url)
    user.create_todo("logged")
    stream = Stream(server.ws_url, "/api/todos/", user.token)
    stream.sync()
    stream.close()
    signed_in = requests.post(server.base_url + "/api/session/", timeout=10,
                              json={"username": user.user["username"], "password": PASSWORD}).json()
    for _ in range(40):         # a busy log: the early lines are far from its end
        assert user.get("/api/todos/").status_code == 200
    time.sleep(0.5)
    log = server.full_log()     # all of it: a token logged at sign-up would be far from the tail
    assert len(log) > 2 * len(server.log())
    assert user.token not in log and signed_in["token"] not in log
    assert PASSWORD not in log
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    requests_logged = [e for e in entries if e.get("logger") == "todopy.access"]
    created = [e for e in requests_logged if e["method"] == "POST" and e["path"] == "/api/todos/"]
    assert created and created[0]["status"] == 201 and created[0]["user_id"] == user.user["id"]
    assert isinstance(created[0]["ms"], float)
    events = {e.get("event") for e in entries}
    assert {"stream_open", "stream_close"} <= events


def test_tokens_are_stored_only_as_hashes(server, alice, sql):
    stored = sql("SELECT token_hash FROM sessions")
    assert stored and all(len(bytes(row[0])) == 32 for row in stored)
    assert all(alice.token.encode() not in bytes(row[0]) for row in stored)
    passwords = sql("SELECT password_hash FROM users")
    assert all(row[0].startswith("scrypt:") and PASSWORD not in row[0] for row in passwords)


def test_signing_out_closes_that_sessions_open_streams(server, alice):
    other_session = requests.post(server.base_url + "/api/session/", timeout=10,
                                  json={"username": alice.user["username"], "password": PASSWORD}).json()
    revoked = Stream(server.ws_url, "/api/todos/", alice.token)
    kept = Stream(server.ws_url, "/api/todos/", other_session["token"])
    try:
        revoked.sync()
        kept.sync()
        assert alice.delete("/api/session/").status_code == 204
        started = time.monotonic()
        assert revoked.recv(5) is None
        assert revoked.close_code == 1008
        assert time.monotonic() - started < 3
        kept_user = alice.__class__(server.base_url, other_session["token"])
        kept_user.create_todo("still live")
        assert kept.recv(5)["type"] == "change"
    finally:
        revoked.close()
        kept.close()
