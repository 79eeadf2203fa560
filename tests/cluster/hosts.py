"""Three app hosts on one PostgreSQL, each in its own Linux network namespace, and the ringer's host partitioned.

Run as root: `python -m tests.cluster.hosts` (`make test-cluster`). The hosts reach
PostgreSQL, and clients reach the hosts, by address over a bridge, as on a real
network. Shown, with one PASS/FAIL line each: streams spread over the hosts; a
write on any host reaches the streams on all; with the ringer's host cut off
(its link down, its process running) in the middle of a write storm, another host
rings within 2 s and the cut-off host's clients resume on the others with `since`,
losing and repeating nothing; when the link comes back the host rejoins, and only
one process rings.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import requests

from tests.cluster.common import Cleanup, Report, Server, Writers, serve, sh, start_database, verdict
from tests.fleet import Fleet
from tests.support import LIST, Api, register
from todopy.migrate import migrate

HOSTS = 3
STREAMS_PER_HOST = 8
PORT = 8000
FAILOVER_TARGET = 2.0


def main() -> int:
    report = Report("hosts")
    if os.geteuid() != 0 or shutil.which("ip") is None:
        print("SKIP hosts: network namespaces need root and iproute2 (`ip`); not run", flush=True)
        return 0
    tag = os.getpid() % 100_000
    subnet = f"10.{77 + tag % 100}.{tag % 250}"        # one of its own, should two runs overlap
    cleanup = Cleanup()
    work = Path(tempfile.mkdtemp(prefix="todopy-hosts-"))
    cleanup.add("work directory", lambda: shutil.rmtree(work, ignore_errors=True))
    try:
        links = network(cleanup, subnet, tag)
        cluster = start_database(work / "pg", listen=f"127.0.0.1,{subnet}.1",
                                 hba=(f"host all all {subnet}.0/24 scram-sha-256",))
        cleanup.add("PostgreSQL", lambda: cluster.stop("immediate"))
        migrate(cluster.dsn())
        dsn = cluster.dsn().replace("@127.0.0.1:", f"@{subnet}.1:")
        hosts = [Server(f"host{i}", dsn, f"{subnet}.{11 + i}", PORT, work, netns=f"todopy{tag}h{i}")
                 for i in range(HOSTS)]
        serve(hosts, cleanup)
        prove(report, hosts, links, work)
    finally:
        cleanup.run()
    return report.exit_status()


def network(cleanup: Cleanup, subnet: str, tag: int) -> list[str]:
    """A bridge at `subnet`.1 (where PostgreSQL listens) and a namespace per host at `subnet`.11, .12, ...
    with a veth pair into the bridge; the bridge-side end of each pair, whose state is the host's link."""
    bridge = f"tdbr{tag}"
    sh("ip", "link", "add", bridge, "type", "bridge")
    cleanup.add("bridge", lambda: sh("ip", "link", "del", bridge))
    sh("ip", "addr", "add", f"{subnet}.1/24", "dev", bridge)
    sh("ip", "link", "set", bridge, "up")
    links = []
    for i in range(HOSTS):
        ns, outer, inner = f"todopy{tag}h{i}", f"tdo{tag}h{i}", f"tdi{tag}h{i}"
        sh("ip", "netns", "add", ns)
        cleanup.add(ns, lambda ns=ns: sh("ip", "netns", "del", ns))
        sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        cleanup.add(outer, lambda outer=outer: sh("ip", "link", "del", outer) if link_exists(outer) else None)
        sh("ip", "link", "set", inner, "netns", ns)
        sh("ip", "link", "set", outer, "master", bridge, "up")
        sh("ip", "-n", ns, "addr", "add", f"{subnet}.{11 + i}/24", "dev", inner)
        sh("ip", "-n", ns, "link", "set", inner, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        links.append(outer)
    return links


def link_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def prove(report: Report, hosts: list[Server], links: list[str], work: Path) -> None:
    alice = register(hosts[0].base_url)
    fleets = [Fleet(host.ws_url) for host in hosts]
    for fleet in fleets:
        for _ in range(STREAMS_PER_HOST):
            fleet.open(alice.token)
        fleet.start()
    try:
        spread = [len(fleet.streams) for fleet in fleets]
        report.check("streams per host", all(spread), " / ".join(map(str, spread)))

        # A write on any host reaches the streams on all of them.
        written = [Api(host.base_url, alice.token).create_todo(f"from {host.name}") for host in hosts]
        for fleet in fleets:
            fleet.wait_quiet(0.5)
        reached = sum(all(todo["id"] in stream.replica.todos for todo in written)
                      for fleet in fleets for stream in fleet.streams)
        report.check("a write on any host reaches streams on all", reached == HOSTS * STREAMS_PER_HOST,
                     f"{reached} of {HOSTS * STREAMS_PER_HOST} streams have the write of each host")

        ringer = next(i for i, host in enumerate(hosts) if host.rings())
        others = [host for i, host in enumerate(hosts) if i != ringer]
        report.note(f"{hosts[ringer].name} rings; cutting its link mid-storm")
        writers = Writers(alice.token, others)
        writers.start()
        time.sleep(1.0)
        sh("ip", "link", "set", links[ringer], "down")
        cut = time.monotonic()
        takeover = None
        while time.monotonic() - cut < 10:
            if any(host.rings(0.5) for host in others):
                takeover = time.monotonic() - cut
                break
            time.sleep(0.05)
        report.check("ringer takeover", takeover is not None and takeover <= FAILOVER_TARGET,
                     f"another host rang {takeover:.2f}s after the cut" if takeover is not None
                     else "no other host rang within 10 s")
        # The cut-off host's clients give up on it and resume on the others, each from its own position.
        resumed = 0
        for n, stream in enumerate(list(fleets[ringer].streams)):
            fleets[ringer].abandon(stream)
            target = fleets[[i for i in range(HOSTS) if i != ringer][n % 2]]
            target.open(alice.token, f"{LIST}?since={stream.replica.rev}", replica=stream.replica)
            resumed += 1
        time.sleep(2.0)
        writers.finish()
        report.check("the cut-off host's streams resume elsewhere with since", resumed == STREAMS_PER_HOST,
                     f"{resumed} streams resumed on the other hosts")

        sh("ip", "link", "set", links[ringer], "up")
        healed = time.monotonic()
        rejoined = None
        while time.monotonic() - healed < 30:
            try:
                if requests.get(hosts[ringer].base_url + "/healthz", timeout=1).status_code == 200:
                    rejoined = time.monotonic() - healed
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        ringers_seen = set()
        checks = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            ringing = [host.name for host in hosts if host.rings(2)]
            ringers_seen.add(tuple(ringing))
            checks += 1
            time.sleep(0.1)
        report.check("rejoins without two ringers", rejoined is not None and all(len(r) == 1 for r in ringers_seen),
                     f"healthy again {rejoined:.1f}s after the link came back; ringers seen over 3 s: "
                     f"{sorted(ringers_seen)}" if rejoined is not None else "never healthy again")
        truth = Api(others[0].base_url, alice.token).list_todos()["todos"]
        for fleet in fleets:
            fleet.wait_quiet(1.0)
        report.note(f"storm: {sum(writers.statuses.values())} writes {dict(writers.statuses)}")
        verdict(report, [fleets[i] for i in range(HOSTS) if i != ringer], truth, writers.acked)
    finally:
        for fleet in fleets:
            fleet.stop()


if __name__ == "__main__":
    sys.exit(main())
