"""Lost-update protection under real concurrency: If-Match lets exactly one of many racing writers win."""
from __future__ import annotations

import concurrent.futures
import threading

from tests.support import Api, read_until, stream

RACERS = 20


def test_parallel_patches_with_the_same_if_match_let_exactly_one_through(server, alice):
    todo = alice.create_todo("contended")
    s = stream(server, alice)
    try:
        s.sync()
        start = threading.Barrier(RACERS)

        def patch(n: int):
            api = Api(alice.base_url, alice.token)        # a connection of its own
            start.wait()
            return api.patch(f"/api/todos/{todo['id']}/", {"title": f"racer {n}"},
                             headers={"If-Match": f'"{todo["rev"]}"'})

        with concurrent.futures.ThreadPoolExecutor(RACERS) as pool:
            responses = list(pool.map(patch, range(RACERS)))
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [200] + [412] * (RACERS - 1), statuses
        (winner,) = [response.json() for response in responses if response.status_code == 200]
        assert all(r.json()["error"]["code"] for r in responses if r.status_code == 412)
        assert alice.get(f"/api/todos/{todo['id']}/").json() == winner

        (change,) = read_until(s, lambda m: m["type"] == "change")
        assert change == {"type": "change", "op": "update", "todo": winner, "rev": winner["rev"],
                          "by": alice.user["username"]}
        s.expect_silence(1.0)                              # the losers changed nothing
    finally:
        s.close()
