"""The stream load generator: one gevent process holding up to 10,000+ WebSocket streams.

    python -m bench.streamclient SPEC.json

SPEC names a scenario and its sizes (written by bench.phases); the process is
started with its file limit raised (bench.servers.raise_fd_limit). It reports
JSON lines on stdout, waits for a `go` line on stdin where the orchestrator
measures the server (ramp stages), and exits by itself, every wait bounded.

Scenarios:
- ramp:  open list streams (one user each) up to each stage; at each stage
         update random users' todos with SQL at a fixed rate (durable commits,
         straight to PostgreSQL like any writer) and time each write from the
         moment its commit is acknowledged until its change frame arrives
         (commit-to-client; also from the moment it is sent: write-to-client,
         the durable commit included). REST PUTs are not used here: on this box one worker's
         PUT capacity is below the probe rate, so a PUT-timed probe would
         measure the request queue, not the wake-up path.
- hold:  open idle list streams in stages (up to 50,000 from one process, spread
         over loopback source addresses); at each stage report how long each
         handshake took (its tail shows the server's pauses) and wait for `go`
         while the orchestrator samples the server.
- burst: open streams, send writes (back to back, `concurrency` at a time, or
         one at a time at `rate` writes/s) and count the text frames delivered
         after `ready`: messages (or changes) per second. With one writer, the
         n-th frame of a stream answers the n-th write, so each frame is also
         timed from the moment its write was sent (write-to-client latency;
         exact to within `read_pause`, so latency runs read with none).
"""
from __future__ import annotations

import json
import os
import random
import sys
import time
from typing import Any, Sequence

import gevent
import gevent.pool
import gevent.queue
import gevent.select

import psycopg2
import psycogreen.gevent

from bench.report import percentile
from bench.wsclient import Http, Stream

HANDSHAKE_TIMEOUT = 60.0
SOURCE_PORTS = 25_000        # streams per loopback source address (each has ~28,000 ephemeral ports)
WRITER_CONNECTIONS = 16      # durable commits take ~1-5 ms each: enough of them for 1,000/s and more
# What a PUT changes, as any SQL writer would: the triggers log it and the ringer wakes the streams.
PROBE_WRITE = "UPDATE todos SET title = %(title)s, completed = %(completed)s WHERE id = %(id)s"


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def wait_for_go(timeout: float = 120.0) -> None:
    """Block this greenlet (not the process: streams keep answering pings) until stdin says go."""
    fd = sys.stdin.fileno()
    line = b""
    deadline = time.monotonic() + timeout
    while not line.endswith(b"\n"):
        ready, _, _ = gevent.select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise TimeoutError("no go from the orchestrator")
        chunk = os.read(fd, 1)
        if not chunk:
            raise EOFError("orchestrator went away")
        line += chunk


class Streams:
    """The streams this process holds, opened `concurrency` handshakes at a time."""

    def __init__(self, host: str, port: int, concurrency: int, sources: list[str] | None = None) -> None:
        self.host, self.port = host, port
        self.pool = gevent.pool.Pool(concurrency)
        self.open: list[Stream] = []
        self.readers: list[gevent.Greenlet] = []
        self.failures: list[str] = []
        self.handshakes: list[float] = []           # seconds each successful open took
        self.sources: Sequence[str | None] = sources or [None]     # None: the kernel picks the source address

    def open_many(self, targets: list[tuple[str | None, str]], on_text_for, read_pause: float = 0.0) -> float:
        """Open one stream per (token, path); returns the seconds it took."""
        started = time.perf_counter()

        def open_one(index: int, token: str | None, path: str) -> None:
            stream = Stream()
            stream.on_text = on_text_for(index)
            began = time.perf_counter()
            try:
                stream.open(self.host, self.port, path, token, HANDSHAKE_TIMEOUT,
                            self.sources[index // SOURCE_PORTS % len(self.sources)])
            except (OSError, ConnectionError, ValueError) as error:
                stream.close()
                self.failures.append(f"{type(error).__name__}: {error}")
                return
            self.handshakes.append(time.perf_counter() - began)
            self.open.append(stream)
            self.readers.append(gevent.spawn(stream.read_forever, read_pause))

        first = len(self.open) + len(self.failures)
        for offset, (token, path) in enumerate(targets):
            self.pool.spawn(open_one, first + offset, token, path)
        self.pool.join()
        return time.perf_counter() - started

    def alive(self) -> int:
        return sum(1 for reader in self.readers if not reader.dead)

    def close_all(self) -> None:
        for stream in self.open:
            stream.close()
        gevent.joinall(self.readers, timeout=10)


def ramp(spec: dict) -> None:
    host, port = spec["host"], spec["port"]
    users: list[list[str]] = spec["users"]          # [token, todo_id], one stream each
    streams = Streams(host, port, spec["connect_concurrency"])
    sent: dict[int, float] = {}          # probe number -> when its UPDATE was sent
    acked: dict[int, float] = {}         # -> when its commit was acknowledged
    arrived: dict[int, float] = {}       # -> when its change frame arrived (maybe before the ack)

    def on_text_for(index: int):
        def on_text(payload: bytes, now: float) -> None:
            title = json.loads(payload).get("todo", {}).get("title", "")
            if title.startswith("probe "):
                number = int(title[6:])
                if number in sent:
                    arrived.setdefault(number, now)
        return on_text

    connections: gevent.queue.Queue = gevent.queue.Queue()
    for _ in range(WRITER_CONNECTIONS):
        conn = psycopg2.connect(spec["dsn"], application_name="bench-probe")
        conn.autocommit = True                      # each UPDATE is its own durable commit
        connections.put(conn)
    errors: list[str] = []
    sequence = 0

    def write(user: int, number: int) -> None:
        conn = connections.get()
        _, todo_id = users[user]
        try:
            sent[number] = time.perf_counter()
            with conn.cursor() as cur:
                cur.execute(PROBE_WRITE, {"title": f"probe {number}", "completed": number % 2 == 0, "id": todo_id})
                acked[number] = time.perf_counter()
                if cur.rowcount != 1:
                    sent.pop(number, None)
                    errors.append(f"probe write of {todo_id} changed {cur.rowcount} rows")
        except psycopg2.Error as error:
            sent.pop(number, None)
            errors.append(f"probe write failed: {error}")
        finally:
            connections.put(conn)

    for stage in spec["stages"]:
        seconds = streams.open_many([(token, "/api/todos/") for token, _ in users[len(streams.open):stage]],
                                    on_text_for)
        emit("stage", target=stage, ready=len(streams.open), failed=len(streams.failures),
             alive=streams.alive(), seconds=round(seconds, 3), errors=streams.failures[:5])
        wait_for_go()
        # Probe: writes at a fixed rate to random users whose stream is open.
        for log in (sent, acked, arrived):
            log.clear()
        count = max(1, int(spec["probe_rate"] * spec["probe_seconds"]))
        interval = 1.0 / spec["probe_rate"]
        start = time.perf_counter()
        workers = []
        opened = len(streams.open)
        for i in range(count):
            delay = start + i * interval - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            sequence += 1
            workers.append(gevent.spawn(write, random.randrange(opened), sequence))
        gevent.joinall(workers, timeout=30)
        deadline = time.perf_counter() + 5.0
        while len(arrived) < len(sent) and time.perf_counter() < deadline:
            gevent.sleep(0.01)
        done = [number for number in sent if number in arrived and number in acked]
        emit("latency", target=stage, sent=count, received=len(arrived), lost=len(sent) - len(arrived),
             latencies_ms=[round((arrived[n] - acked[n]) * 1000.0, 3) for n in done],
             write_latencies_ms=[round((arrived[n] - sent[n]) * 1000.0, 3) for n in done],
             commit_ms=[round((acked[n] - sent[n]) * 1000.0, 3) for n in done],
             alive=streams.alive(), errors=errors[:5])
        errors.clear()
    emit("done", alive=streams.alive())
    streams.close_all()


def hold(spec: dict) -> None:
    """Idle streams in stages; each stage's handshake times, then wait for go (the server is sampled)."""
    targets: list[list[str]] = spec["targets"]          # [token, path] per stream
    sources = [f"127.0.0.{1 + n}" for n in range(1 + len(targets) // SOURCE_PORTS)]
    streams = Streams(spec["host"], spec["port"], spec["connect_concurrency"], sources)
    for stage in spec["stages"]:
        streams.handshakes.clear()
        seconds = streams.open_many([(token, path) for token, path in targets[len(streams.open):stage]],
                                    lambda index: None)
        times = [t * 1000.0 for t in streams.handshakes]
        emit("stage", target=stage, ready=len(streams.open), failed=len(streams.failures),
             alive=streams.alive(), seconds=round(seconds, 3), errors=streams.failures[:5],
             handshake_ms={**{f"p{p}": round(percentile(times, p) or 0.0, 2) for p in (50, 90, 99)},
                           "max": round(max(times, default=0.0), 2)})
        wait_for_go(timeout=600)
    emit("done", alive=streams.alive())
    streams.close_all()


def burst(spec: dict) -> None:
    host, port = spec["host"], spec["port"]
    streams = Streams(host, port, spec["connect_concurrency"])
    counter = {"frames": 0, "last": 0.0}
    sent_at: list[float] = []                        # when write n was sent (one writer: in order)
    answered_in: list[float] = []                    # each write's own round trip, to its answer
    frames_of = [0] * len(spec["streams"])           # frames each stream has had so far
    latencies: list[float] = []

    def on_text_for(index: int):
        def on_text(payload: bytes, now: float) -> None:
            counter["frames"] += 1
            counter["last"] = now
            number = frames_of[index]
            frames_of[index] = number + 1
            if number < len(sent_at):
                latencies.append(now - sent_at[number])
        return on_text

    opened_in = streams.open_many([(token, path) for token, path in spec["streams"]], on_text_for,
                                  spec.get("read_pause", 0.0))
    emit("open", ready=len(streams.open), failed=len(streams.failures), seconds=round(opened_in, 3),
         errors=streams.failures[:5])
    writes = iter(spec["writes"])                    # [method, path, token, body]
    errors: list[str] = []
    first_sent = time.perf_counter()

    rate = spec.get("rate")

    def writer() -> None:
        conn = Http(host, port)
        try:
            for method, path, token, body in writes:
                if rate:
                    gevent.sleep(max(0.0, first_sent + len(sent_at) / rate - time.perf_counter()))
                sent_at.append(time.perf_counter())
                status, answer = conn.request(method, path, token, body.encode() if body is not None else None)
                answered_in.append(time.perf_counter() - sent_at[-1])
                if status >= 300:
                    errors.append(f"{method} {status}: {answer[:200]!r}")
        finally:
            conn.close()

    gevent.joinall([gevent.spawn(writer) for _ in range(spec["concurrency"])], timeout=spec["timeout"])
    writes_done = time.perf_counter()
    expected = spec["expected_frames"]
    deadline = first_sent + spec["timeout"]
    idle_limit = 5.0
    while counter["frames"] < expected and time.perf_counter() < deadline:
        last = counter["last"] or writes_done
        if time.perf_counter() - max(last, writes_done) > idle_limit:
            break                                    # nothing more is coming
        gevent.sleep(0.005)
    elapsed = (counter["last"] or time.perf_counter()) - first_sent
    timed = spec["concurrency"] == 1
    emit("burst", streams=len(streams.open), received=counter["frames"], expected=expected,
         seconds=round(elapsed, 4), writes_seconds=round(writes_done - first_sent, 4),
         alive=streams.alive(), errors=errors[:5],
         latency_ms={f"p{p}": round((percentile(latencies, p) or 0.0) * 1000.0, 3) for p in (50, 90, 99)}
         if timed and latencies else None,
         answer_ms={f"p{p}": round((percentile(answered_in, p) or 0.0) * 1000.0, 3) for p in (50, 99)}
         if timed and answered_in else None)
    streams.close_all()


def main() -> int:
    psycogreen.gevent.patch_psycopg()               # probe writers wait cooperatively
    with open(sys.argv[1]) as file:
        spec = json.load(file)
    runner = {"ramp": ramp, "burst": burst, "hold": hold}[spec["scenario"]]
    try:
        with gevent.Timeout(spec.get("deadline", 900)):
            runner(spec)
    except BaseException as error:  # report, then exit non-zero: the orchestrator prints it
        emit("error", error=f"{type(error).__name__}: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
