"""Resource figures under hostile clients (issue 14), against a running server: no assertions, a report.

    python -m bench.hostile --base http://127.0.0.1:8000 --worker-pid PID [--only metrics,signin,headers]

- metrics: /metrics size (and scrape time) after 20,000 requests with made-up methods;
- signin: a legitimate user's sign-in latency while 40 clients flood sign-ins with
  random usernames, from one address and from 40 (the server must run with
  TODOPY_PROXY_HOPS=1: addresses are played with X-Forwarded-For);
- headers: the worker's RSS while 300 connections send huge header blocks slowly.

Run it once against the old code and once against the new for a before/after.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import random
import socket
import statistics
import string
import threading
import time
import uuid

import psutil
import requests

PASSWORD = "correct horse"


def odd_methods(base: str, count: int = 20_000, threads: int = 8) -> dict:
    def run(share: int) -> None:
        session = requests.Session()
        for _ in range(share):
            method = "".join(random.choices(string.ascii_uppercase, k=10))
            session.request(method, base + "/api/todos/", timeout=30)

    before = len(requests.get(base + "/metrics", timeout=30).content)
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, [count // threads] * threads))
    started = time.monotonic()
    after = requests.get(base + "/metrics", timeout=120)
    return {"metrics_bytes_before": before, "metrics_bytes_after": len(after.content),
            "scrape_seconds_after": round(time.monotonic() - started, 3), "odd_requests": count}


def sign_in_under_flood(base: str, flooders: int = 40, seconds: float = 15.0, distributed: bool = False) -> dict:
    username = "legit" + uuid.uuid4().hex[:10]
    created = requests.post(base + "/api/users/", json={"username": username, "password": PASSWORD},
                            headers={"X-Forwarded-For": "192.0.2.200"}, timeout=60)
    assert created.status_code == 201, created.text
    stop = threading.Event()
    counts: dict[int, int] = {}
    lock = threading.Lock()

    def flood(index: int) -> None:
        session = requests.Session()
        address = f"198.18.0.{index + 1}" if distributed else "203.0.113.9"
        while not stop.is_set():
            status = session.post(base + "/api/session/", json={"username": "x" + uuid.uuid4().hex[:12],
                                                                 "password": "wrong password"},
                                  headers={"X-Forwarded-For": address}, timeout=120).status_code
            with lock:
                counts[status] = counts.get(status, 0) + 1

    threads = [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(flooders)]
    for thread in threads:
        thread.start()
    time.sleep(2)                       # the flood is on
    latencies, statuses = [], []
    session = requests.Session()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        response = session.post(base + "/api/session/", json={"username": username, "password": PASSWORD},
                                headers={"X-Forwarded-For": "192.0.2.200"}, timeout=120)
        latencies.append(time.monotonic() - started)
        statuses.append(response.status_code)
        time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(130)
    ok = [latency for latency, status in zip(latencies, statuses) if status == 200]
    return {"flood": "40 addresses" if distributed else "one address", "legit_attempts": len(statuses),
            "legit_200": len(ok), "legit_statuses": sorted(set(statuses)),
            "legit_median_s": round(statistics.median(latencies), 3), "legit_max_s": round(max(latencies), 3),
            "flood_statuses": counts}


def huge_headers(port: int, worker_pid: int, connections: int = 300, lines: int = 99, line_kib: int = 60,
                 hold: float = 20.0) -> dict:
    worker = psutil.Process(worker_pid)
    before = worker.memory_info().rss
    peak = before
    socks: list[socket.socket] = []
    line = b"X-Pad: " + b"a" * (line_kib * 1024) + b"\r\n"
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, worker.memory_info().rss)
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    def attack(_: int) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        socks.append(sock)
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            for _ in range(lines):
                sock.sendall(line)          # never the end of the headers
        except OSError:
            pass                            # refused (431) and closed: what we want

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        list(pool.map(attack, range(connections)))
    sent_in = time.monotonic() - started
    time.sleep(hold)
    stop.set()
    sampler.join()
    held = worker.memory_info().rss
    for sock in socks:
        sock.close()
    mib = 1024 * 1024
    return {"connections": connections, "header_bytes_each": lines * line_kib * 1024,
            "rss_before_mib": round(before / mib), "rss_peak_mib": round(peak / mib),
            "rss_after_hold_mib": round(held / mib), "send_seconds": round(sent_in, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True)
    parser.add_argument("--worker-pid", type=int, required=True)
    parser.add_argument("--only", default="metrics,signin,headers")
    args = parser.parse_args()
    port = int(args.base.rsplit(":", 1)[1])
    results = {}
    parts = args.only.split(",")
    if "metrics" in parts:
        results["metrics"] = odd_methods(args.base)
    if "signin" in parts:
        results["signin_one_address"] = sign_in_under_flood(args.base)
        results["signin_40_addresses"] = sign_in_under_flood(args.base, distributed=True)
    if "headers" in parts:
        results["headers"] = huge_headers(port, args.worker_pid)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
