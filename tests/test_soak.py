"""Soak: many streams, steady writes; no change lost, duplicated or reordered; memory flat.

`make test` runs 30 s; `make soak` runs 5 minutes (--soak-seconds).
"""
from __future__ import annotations

import random
import threading
import time
from pathlib import Path

from tests.fleet import Fleet
from tests.support import by_id, register

USERS, STREAMS_PER_USER, WRITES_PER_SECOND = 50, 10, 100


def worker_rss_kib(master_pid: int) -> int:
    worker = int(Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()[0])
    for line in Path(f"/proc/{worker}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def writer(users, todo_ids, seconds: float, stop: threading.Event, counts: dict) -> None:
    rng = random.Random(7)
    interval = 1.0 / WRITES_PER_SECOND
    next_at = time.monotonic()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop.is_set():
        index = rng.randrange(len(users))
        user, ids = users[index], todo_ids[index]
        roll = rng.random()
        if roll < 0.1 and len(ids) < 10:
            ids.append(user.create_todo(f"soak {rng.random()}")["id"])
        elif roll < 0.15 and len(ids) > 2:
            assert user.delete(f"/api/todos/{ids.pop(rng.randrange(len(ids)))}/").status_code == 204
        else:
            body = {"completed": rng.random() < 0.5} if roll < 0.4 else {"title": f"soak {rng.random()}"}
            assert user.patch(f"/api/todos/{rng.choice(ids)}/", body).status_code == 200
        counts["writes"] += 1
        counts[user.token] = counts.get(user.token, 0) + 1
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))


def test_soak(start_server, soak_seconds):
    server = start_server(env={"TODOPY_POOL_SIZE": "8"})
    users = [register(server.base_url) for _ in range(USERS)]
    todo_ids = [[user.create_todo(f"start {n}")["id"] for n in range(3)] for user in users]
    fleet = Fleet(server.ws_url)
    for user in users:
        for _ in range(STREAMS_PER_USER):
            fleet.open(user.token)
    fleet.start()
    stop, counts = threading.Event(), {"writes": 0}
    warm_up = min(5.0, soak_seconds / 5)
    thread = threading.Thread(target=writer, args=(users, todo_ids, soak_seconds, stop, counts))
    thread.start()
    try:
        time.sleep(warm_up)
        rss_after_warm_up = worker_rss_kib(server.process.pid)
        thread.join(soak_seconds + 30)
        fleet.wait_quiet()
        rss_at_end = worker_rss_kib(server.process.pid)
    finally:
        stop.set()
        fleet.stop()

    problems = [p for s in fleet.streams for p in s.problems]
    assert problems == []
    # Every write is one change (create, delete, or PATCH of one todo, which bumps its rev even when a
    # value stays the same): each stream of its user carries it, exactly once (the replicas check "once").
    short = [s for s in fleet.streams if s.replica.applied != counts.get(s.owner_token, 0)]
    assert short == [], f"{len(short)} streams missed changes of their user"
    expected = {user.token: by_id(user.list_todos()["todos"]) for user in users}
    diverged = [s for s in fleet.streams if s.replica.todos != expected[s.owner_token]]
    assert diverged == [], f"{len(diverged)} streams diverged from GET /api/todos/"
    checked = sum(s.replica.applied for s in fleet.streams)
    print(f"\nsoak: {len(fleet.streams)} streams, {counts['writes']} writes in {soak_seconds}s, "
          f"{checked} change messages checked, worker RSS {rss_after_warm_up} KiB after warm-up, "
          f"{rss_at_end} KiB at the end")
    assert checked == counts["writes"] * STREAMS_PER_USER
    assert counts["writes"] >= WRITES_PER_SECOND * soak_seconds * 0.8
    assert rss_at_end <= rss_after_warm_up * 1.10
