"""How big each measurement is (full run or --quick smoke run), and the targets it is judged by."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Plan:
    stages: tuple[int, ...]          # open list streams (one user each) at which RSS and latency are sampled
    latency_stage: int               # the stage whose latency is the headline figure (1,000 users)
    probe_rate: float                # SQL writes (durable commits) per second while probing latency
    probe_seconds: float             # per stage
    fanout_streams: int              # streams of one user
    fanout_writes: int               # PUTs back to back (below the stream queue size: no 4008)
    paced_streams: tuple[int, ...]   # streams of one user, timed from each write to each frame at paced_rate
    paced_rate: float                # PUTs per second, one at a time
    paced_writes: int                # per paced run
    burst_streams: int               # streams of one user, timed while fanout_writes PUTs go back to back
    bulk_users: int                  # users with one stream each, for change throughput
    bulk_todos: int                  # todos per bulk user: one bulk toggle changes all of them
    bulk_rounds: int                 # toggles per user
    bulk_concurrency: int            # writers at once
    rest_seconds: int                # per wrk run
    rest_connections: int
    rest_rounds: int                 # alternated rounds of todopy's and the peer's runs (the median is reported)
    pgbench_seconds: int             # per trigger-cost run
    harder_seconds: int              # per run of issue 20's harder case: every list streamed while pgbench writes
    harder_rounds: int               # alternated rounds of it (the median is reported)
    deadlock_seconds: int            # multi-row SQL writers on one list, with the triggers and without
    toggle_seconds: int              # single-row SQL writers beside REST toggle-alls, one list
    connect_concurrency: int         # stream handshakes in flight at once
    idle_stages: tuple[int, ...]     # idle streams held by one process (todopy's worker, and the bare limit)

    @property
    def ramp_users(self) -> int:
        return max(self.stages)


FULL = Plan(stages=(100, 1_000, 5_000, 10_000), latency_stage=1_000, probe_rate=1_000.0, probe_seconds=10.0,
            fanout_streams=1_000, fanout_writes=400, paced_streams=(50, 500), paced_rate=10.0, paced_writes=50,
            burst_streams=500, bulk_users=100, bulk_todos=50, bulk_rounds=10,
            bulk_concurrency=4, rest_seconds=10, rest_connections=50, rest_rounds=3,
            pgbench_seconds=10, harder_seconds=8,
            harder_rounds=3, deadlock_seconds=6, toggle_seconds=10, connect_concurrency=100,
            idle_stages=(10_000, 50_000))

QUICK = Plan(stages=(10, 50, 100), latency_stage=100, probe_rate=50.0, probe_seconds=1.0,
             fanout_streams=50, fanout_writes=20, paced_streams=(10, 50), paced_rate=20.0, paced_writes=10,
             burst_streams=50, bulk_users=10, bulk_todos=20, bulk_rounds=2,
             bulk_concurrency=4, rest_seconds=1, rest_connections=50, rest_rounds=1,
             pgbench_seconds=1, harder_seconds=1,
             harder_rounds=1, deadlock_seconds=1, toggle_seconds=1, connect_concurrency=50,
             idle_stages=(100, 200))

POOL_SIZE = 8                        # TODOPY_POOL_SIZE of the benchmarked server

# figure -> (comparison, threshold); the figure PASSes when `measured <comparison> threshold`.
# Ratios are to the ceiling measured in the same run.
TARGETS: dict[str, tuple[str, float]] = {
    "streams_held": (">=", 10_000),
    "pg_connections": ("<=", POOL_SIZE + 2),   # the pool, the LISTEN connection, the ringer's
    "rss_per_stream_kib": ("<=", 40),
    "idle_held": (">=", 50_000),                # idle streams held by one process, all ready
    "idle_rss_ratio": ("<=", 1.3),              # RSS per idle stream, ratio to the bare limit's (same stage)
    "idle_handshake_max_ms": ("<=", 1_000),     # the longest handshake while they open (the server's pauses)
    "latency_p50_ms": ("<=", 8),               # commit to client, at probe_rate writes/s
    "latency_p99_ms": ("<=", 30),
    "held_open_p99_ms": ("<=", 50),            # other lists' commit to client, one write transaction open
    "failover_s": ("<=", 2),                   # the ringer killed: the longest a change then waited
    "fanout_messages_per_s": (">=", 0.70),     # ratio to the broadcast ceiling
    # write-to-client latency of one user's streams, ratios to the broadcast ceiling's (issue 25)
    "paced_small_p50_ms": ("<=", 1.3),         # paced_streams[0] streams at paced_rate writes/s
    "paced_small_p99_ms": ("<=", 1.3),
    "paced_large_p50_ms": ("<=", 1.3),         # paced_streams[1] streams
    "paced_large_p99_ms": ("<=", 1.3),
    "burst_p99_ms": ("<=", 2.0),               # burst_streams streams, fanout_writes PUTs back to back
    "burst_common_p99_ms": ("<=", 2.0),        # the same, all paced at the slowest one's back-to-back rate
    "change_throughput_per_s": (">=", 5_000),
    "rest_get_per_s": (">=", 0.40),            # ratio to the REST ceiling
    "rest_put_per_s": (">=", 0.25),            # ratio to the REST ceiling
    "durable_writes_16": (">=", 0.70),         # ratio to the same writes without triggers, 16 writers, fsync on
    "durable_writes_1": (">=", 0.80),          # same, 1 writer
    "durable_writes_hot": (">=", 0.70),        # same, the 16 writers all on one list
    "durable_writes_streamed": (">=", 0.70),   # 16 writers, every list streamed (issue 20's harder case)
    "deadlock_ratio": ("<=", 1.0),             # multi-row SQL writers' deadlocks, triggers / none
    "toggle_failures": ("<=", 0),              # deadlocks + failed requests: SQL writers beside REST toggle-alls
}
