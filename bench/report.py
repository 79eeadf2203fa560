"""Figures judged against their targets: the table on stdout, the JSON file and the plot."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.plan import POOL_SIZE, TARGETS

if TYPE_CHECKING:
    from bench.phases import Run

SHARE = "share"             # a unit: a fraction, shown as a percentage


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclasses.dataclass
class Figure:
    key: str
    label: str
    measured: float | None                # todopy's
    unit: str
    ceiling: float | None = None          # the same quantity for the limit (a bare server, no triggers), same run
    relative: bool = False                # judged as a ratio to the ceiling (even when a phase did not run)
    peer: float | None = None             # the same quantity for the peer (bench.peer), same run
    peer_ratio: float | None = None       # for relative figures whose peer ratio is not peer / ceiling

    @property
    def higher_is_better(self) -> bool:
        return TARGETS[self.key][0] == ">="

    @property
    def versus_peer(self) -> float | None:
        """todopy's judged value over the peer's (for latencies and sizes, above 1 is behind)."""
        peer = self.peer_judged_value
        value = self.judged_value
        if peer is None or value is None or peer <= 0 or value <= 0:   # a latency of ~0 has no meaningful ratio
            return None
        return value / peer

    @property
    def peer_judged_value(self) -> float | None:
        if not self.relative:
            return self.peer
        if self.peer_ratio is not None:
            return self.peer_ratio
        if self.peer is None or not self.ceiling:
            return None
        return self.peer / self.ceiling

    @property
    def ratio(self) -> float | None:
        if self.ceiling is None or self.measured is None or not self.ceiling:
            return None
        return self.measured / self.ceiling

    @property
    def judged_value(self) -> float | None:
        return self.ratio if self.relative else self.measured

    @property
    def target(self) -> str:
        comparison, threshold = TARGETS[self.key]
        if self.relative:
            return f"ratio {comparison} {threshold:.0%}"
        return f"{comparison} {_number(threshold, self.unit)}"

    @property
    def passed(self) -> bool | None:
        value = self.judged_value
        if value is None:
            return None
        comparison, threshold = TARGETS[self.key]
        return value >= threshold if comparison == ">=" else value <= threshold

    def as_json(self) -> dict[str, Any]:
        return {"label": self.label, "measured": self.measured, "unit": self.unit, "ceiling": self.ceiling,
                "ratio": self.ratio, "target": self.target, "pass": self.passed, "peer": self.peer,
                "peer_judged": self.peer_judged_value, "versus_peer": self.versus_peer}


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == SHARE:
        return f"{value:.0%}"
    if abs(value) >= 100 or float(value).is_integer():
        text = f"{value:,.0f}"
    else:
        text = f"{value:,.2f}"
    return f"{text} {unit}".rstrip()


def _versus_peer(figure: Figure) -> str:
    ratio = figure.versus_peer
    if ratio is None:
        return "-"
    if ratio == 1:
        return "level"
    ahead = ratio > 1 if figure.higher_is_better else ratio < 1
    return f"{ratio:.2f}x {'ahead' if ahead else 'behind'}"


def table(figures: list[Figure]) -> str:
    """One row per figure: todopy / peer / limit, todopy's share of the limit, todopy against the peer."""
    rows = [("figure", "todopy", "peer", "limit", "todopy/limit", "vs peer", "target", "result")]
    for figure in figures:
        result = {True: "PASS", False: "MISS", None: "n/a"}[figure.passed]
        ratio = "-" if figure.ratio is None else f"{figure.ratio:.0%}"
        rows.append((figure.label, _number(figure.measured, figure.unit), _number(figure.peer, figure.unit),
                     _number(figure.ceiling, figure.unit), ratio, _versus_peer(figure), figure.target, result))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) if i in (0, 6, 7) else cell.rjust(widths[i])
                               for i, cell in enumerate(row)))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def write_json(path: Path, figures: list[Figure], details: dict[str, Any]) -> None:
    document = {"figures": {figure.key: figure.as_json() for figure in figures}, **details}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def plot(path: Path, stages: list[dict[str, Any]], title: str) -> None:
    """Latency percentiles and the worker's RSS against the number of open streams."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    opened = [stage["open"] for stage in stages]
    figure, (latency_axis, rss_axis) = plt.subplots(2, 1, sharex=True, figsize=(7, 7))
    for name, style in (("p50", "o-"), ("p90", "s--"), ("p99", "^-.")):
        values = [stage["latency_ms"].get(name) for stage in stages]
        latency_axis.plot(opened, [math.nan if value is None else value for value in values], style, label=name)
    latency_axis.set_ylabel("commit-to-client latency (ms)")
    latency_axis.set_ylim(bottom=0)
    latency_axis.legend()
    latency_axis.grid(True, which="both", alpha=0.3)
    rss_axis.plot(opened, [stage["rss_bytes"] / 2**20 for stage in stages], "o-", color="tab:red")
    rss_axis.set_ylabel("server worker RSS (MiB)")
    rss_axis.set_xlabel("open streams")
    rss_axis.set_xscale("log")
    rss_axis.grid(True, which="both", alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _stream_figures(streams: dict[str, Any], latency_stage_target: int) -> dict[str, float | None]:
    """The streams phase's figures for one server (todopy or the peer); None where it did not run."""
    stages = streams.get("stages") or []
    latency_stage = next((s for s in stages if s["target"] == latency_stage_target), None)
    last = stages[-1] if stages else None
    return {"held": min(last["open"], streams["alive_at_end"]) if last else None,
            "rss": streams["rss_per_stream_bytes"] / 1024 if streams else None,
            "p50": latency_stage["latency_ms"]["p50"] if latency_stage else None,
            "p99": latency_stage["latency_ms"]["p99"] if latency_stage else None}


def _durable(trig: dict[str, Any] | None, key: str, label: str, name: str) -> Figure:
    found = (trig or {}).get(name)
    return Figure(key, label, found["todopy_tps"] if found else None, "tps", found["limit_tps"] if found else None,
                  relative=True, peer=found["peer_tps"] if found else None)


def _latency_figures(run: Run) -> list[Figure]:
    """Write-to-client latency rows (bench.phases.latency_phase), each judged as a ratio to the ceiling's."""
    plan, found = run.plan, run.details.get("latency") or {}
    rows = [("paced_small", f"paced_{plan.paced_streams[0]}",
             f"{plan.paced_streams[0]:,} streams of one user, {plan.paced_rate:g} PUTs/s"),
            ("paced_large", f"paced_{plan.paced_streams[1]}",
             f"{plan.paced_streams[1]:,} streams of one user, {plan.paced_rate:g} PUTs/s")]
    figures = []
    for key, case, label in rows:
        for p in ("p50", "p99"):
            values = {name: (found[case][name]["latency_ms"] or {}).get(p) if case in found else None
                      for name in ("todopy", "peer", "ceiling")}
            figures.append(Figure(f"{key}_{p}_ms", f"write-to-client {p}, {label}", values["todopy"], "ms",
                                  values["ceiling"], relative=True, peer=values["peer"]))
    burst = found.get(f"burst_{plan.burst_streams}")
    values = {name: (burst[name]["latency_ms"] or {}).get("p99") if burst else None
              for name in ("todopy", "peer", "ceiling")}
    figures.append(Figure("burst_p99_ms", f"write-to-client p99, {plan.burst_streams:,} streams of one user, "
                                          f"{plan.fanout_writes} PUTs back to back", values["todopy"], "ms",
                          values["ceiling"], relative=True, peer=values["peer"]))
    common = found.get(f"burst_{plan.burst_streams}_common")
    values = {name: (common[name]["latency_ms"] or {}).get("p99") if common else None
              for name in ("todopy", "peer", "ceiling")}
    rate = f"{common['todopy']['rate']:g} PUTs/s" if common else "one rate"
    figures.append(Figure("burst_common_p99_ms", f"write-to-client p99, the same burst, all at {rate} (the slowest's)",
                          values["todopy"], "ms", values["ceiling"], relative=True, peer=values["peer"]))
    return figures


def _idle_figures(run: Run) -> list[Figure]:
    """The idle phase's rows (bench.phases.idle_phase): its largest stage, todopy against the bare limit."""
    found = run.details.get("idle") or {}
    mine, bare = (found.get(name) or {} for name in ("todopy", "ceiling"))
    last, last_bare = ((side.get("stages") or [None])[-1] for side in (mine, bare))
    size = f"{max(found.get('stages') or run.plan.idle_stages):,}"
    return [
        Figure("idle_held", "idle streams held by one process, all ready",
               min(last["open"], mine["alive_at_end"]) if last else None, "streams",
               min(last_bare["open"], bare["alive_at_end"]) if last_bare else None),
        Figure("idle_rss_ratio", f"RSS per idle stream ({size} streams)",
               last["rss_per_stream_bytes"] / 1024 if last else None, "KiB",
               last_bare["rss_per_stream_bytes"] / 1024 if last_bare else None, relative=True),
        Figure("idle_handshake_max_ms", f"longest handshake while {size} idle streams open",
               last["handshake_ms"]["max"] if last else None, "ms",
               last_bare["handshake_ms"]["max"] if last_bare else None),
    ]


def figures(run: Run) -> list[Figure]:
    d = run.details
    streams = d.get("streams") or {}
    mine = _stream_figures(streams, run.plan.latency_stage)
    theirs = _stream_figures(d.get("streams-peer") or {}, run.plan.latency_stage)
    fanout, rest_results, trig = d.get("fanout"), d.get("rest"), d.get("triggers")
    throughput, peer_throughput = d.get("throughput"), d.get("throughput-peer")
    wake = d.get("wakeup") or {}
    held_open, failover = wake.get("held_open"), wake.get("failover")
    locks = d.get("deadlocks") or {}
    multi_row, toggle = locks.get("multi_row") or {}, locks.get("toggle") or {}
    rest_ceiling = rest_results["ceiling"]["requests_per_s"] if rest_results else None
    probe = f"({run.plan.latency_stage:,} streams, {run.plan.probe_rate:,.0f} writes/s)"
    return [
        Figure("streams_held", "streams held, all ready", mine["held"], "streams", peer=theirs["held"]),
        Figure("pg_connections", f"PostgreSQL connections (pool {POOL_SIZE})", streams.get("pg_connections_peak"),
               "conns"),
        Figure("rss_per_stream_kib", "RSS per idle stream", mine["rss"], "KiB", peer=theirs["rss"]),
        *_idle_figures(run),
        Figure("latency_p50_ms", f"commit-to-client p50 {probe}", mine["p50"], "ms", peer=theirs["p50"]),
        Figure("latency_p99_ms", f"commit-to-client p99 {probe}", mine["p99"], "ms", peer=theirs["p99"]),
        Figure("held_open_p99_ms", "commit-to-client p99, other lists, one write transaction open",
               held_open["latency_ms"]["p99"] if held_open else None, "ms"),
        Figure("failover_s", "ringer killed (SIGKILL): longest wait of a change",
               failover["worst_wait_s"] if failover else None, "s"),
        Figure("fanout_messages_per_s", f"fan-out, {run.plan.fanout_streams:,} streams of one user",
               fanout["todopy_messages_per_s"] if fanout else None, "msg/s",
               fanout["ceiling_messages_per_s"] if fanout else None, relative=True,
               peer=fanout["peer_messages_per_s"] if fanout else None),
        *_latency_figures(run),
        Figure("change_throughput_per_s", f"change throughput, {run.plan.bulk_users} users",
               throughput["changes_per_s"] if throughput else None, "changes/s",
               peer=peer_throughput["changes_per_s"] if peer_throughput else None),
        Figure("rest_get_per_s", "REST GET /api/todos/<id>/",
               rest_results["get"]["requests_per_s"] if rest_results else None, "req/s", rest_ceiling, relative=True,
               peer=rest_results["peer_get"]["requests_per_s"] if rest_results else None),
        Figure("rest_put_per_s", "REST PUT /api/todos/<id>/",
               rest_results["put"]["requests_per_s"] if rest_results else None, "req/s", rest_ceiling, relative=True,
               peer=rest_results["peer_put"]["requests_per_s"] if rest_results else None),
        _durable(trig, "durable_writes_16", "durable writes, 16 writers over 16 lists", "writers_16"),
        _durable(trig, "durable_writes_1", "durable writes, 1 writer", "writers_1"),
        _durable(trig, "durable_writes_hot", "durable writes, 16 writers on one list", "hot_list"),
        _durable(trig, "durable_writes_streamed", f"durable writes, 16 writers, every list streamed (median of "
                                                  f"{run.plan.harder_rounds})", "streamed"),
        Figure("deadlock_ratio", "multi-row SQL writers, one list: deadlocks with triggers / without",
               multi_row["todopy"]["ratio"] if multi_row else None, "x",
               peer=multi_row["peer"]["ratio"] if multi_row else None),
        Figure("toggle_failures", "3 SQL writers + 2 REST toggle-alls, one list: deadlocks + failures",
               toggle["todopy"]["failures"] if toggle else None, "",
               peer=toggle["peer"]["failures"] if toggle else None),
    ]


def cpu_notes(run: Run) -> list[str]:
    """Server CPU time per message and per request, todopy against its ceiling: what other load on a
    shared machine distorts least (the figures above are rates, and the rates share the CPUs)."""
    notes = []
    fanout, rest_results = run.details.get("fanout"), run.details.get("rest")
    if fanout:
        mine, bare = fanout["todopy"]["server_cpu_us_per_frame"], fanout["ceiling"]["server_cpu_us_per_frame"]
        theirs = fanout["peer"]["server_cpu_us_per_frame"]
        notes.append(f"fan-out CPU per message: todopy {mine} µs, peer {theirs} µs, ceiling {bare} µs "
                     f"({bare / mine:.0%} efficiency)")
    if rest_results:
        bare = rest_results["ceiling"]["server_cpu_us_per_request"]
        for name in ("get", "put"):
            mine = rest_results[name]["server_cpu_us_per_request"]
            theirs = rest_results[f"peer_{name}"]["server_cpu_us_per_request"]
            notes.append(f"REST {name.upper()} CPU per request: todopy {mine} µs, peer {theirs} µs, ceiling {bare} µs "
                         f"({bare / mine:.0%} efficiency)")
    return notes


def latency_notes(run: Run) -> list[str]:
    """What a paced write-to-client figure holds besides the fan-out: the write's own round trip to
    its answer (a durable commit for todopy and the peer; the limit writes nothing)."""
    notes = []
    for case, found in (run.details.get("latency") or {}).items():
        if not case.startswith("paced_"):
            continue
        answers = {name: (result.get("answer_ms") or {}).get("p50") for name, result in found.items()}
        notes.append(f"{case}: the write's own answer p50 todopy {answers.get('todopy')} ms, peer "
                     f"{answers.get('peer')} ms, limit {answers.get('ceiling')} ms (no database)")
    commit = run.details.get("durable_commit")
    if commit:
        notes.append(f"one durable UPDATE and commit from a client, no server, no trigger: p50 {commit['p50']} ms, "
                     f"p99 {commit['p99']} ms (the limit's paced rows include none)")
        # What a server that writes durably cannot beat: the limit's fan-out after one commit.
        for case, found in (run.details.get("latency") or {}).items():
            if not case.startswith("paced_") or "ceiling" not in found:
                continue
            floor = {p: found["ceiling"]["latency_ms"][p] + commit[p] for p in ("p50", "p99")}
            shares = ", ".join(f"{name} {found[name]['latency_ms']['p50'] / floor['p50']:.2f}x/"
                               f"{found[name]['latency_ms']['p99'] / floor['p99']:.2f}x"
                               for name in ("todopy", "peer") if name in found)
            notes.append(f"{case}: the limit plus one durable commit, p50/p99 {floor['p50']:.2f}/{floor['p99']:.2f} ms"
                         f" (already {floor['p50'] / found['ceiling']['latency_ms']['p50']:.2f}x the limit's p50);"
                         f" against it {shares}")
    return notes


def write_notes(run: Run) -> list[str]:
    """What the write stages' rows leave out: changes delivered while streamed, the deadlock workloads' counts,
    the idle stages' memory and pauses."""
    notes = []
    for name, found in (run.details.get("idle") or {}).items():
        if name == "stages":
            continue
        for stage in found.get("stages") or []:
            notes.append(f"idle streams, {name}: {stage['open']:,} open in {stage['open_seconds']:.0f} s, "
                         f"{stage['rss_per_stream_bytes'] / 1024:.1f} KiB RSS a stream, handshake p50/p99/max "
                         f"{stage['handshake_ms']['p50']}/{stage['handshake_ms']['p99']}/{stage['handshake_ms']['max']} ms"
                         + (f", full collections while they opened: {stage['gc']['full_collections']} taking "
                            f"{stage['gc']['seconds']} s ({stage['gc']['over_0.5s']} over 0.5 s)" if "gc" in stage else ""))
    for phase in ("streams", "streams-peer"):
        stages = (run.details.get(phase) or {}).get("stages") or []
        stage = next((s for s in stages if s["target"] == run.plan.latency_stage), None)
        if stage:       # the peer's NOTIFY reaches it before the writer's ack: commit-to-client alone flatters it
            notes.append(f"{phase}: at {stage['open']:,} streams, the commits themselves p50/p99 "
                         f"{stage['commit_ms']['p50']}/{stage['commit_ms']['p99']} ms, write-to-client "
                         f"{stage['write_latency_ms']['p50']}/{stage['write_latency_ms']['p99']} ms")
    streamed = (run.details.get("triggers") or {}).get("streamed")
    if streamed:
        for subject in ("todopy", "peer"):
            runs = streamed["runs"][subject]
            notes.append(f"every list streamed, {subject}: delivered {sum(r['delivered'] for r in runs):,} of "
                         f"{sum(r['transactions'] for r in runs):,} committed changes")
    locks = run.details.get("deadlocks") or {}
    for subject, found in (locks.get("multi_row") or {}).items():
        with_t, without = found["with_triggers"], found["without_triggers"]
        notes.append(f"multi-row SQL writers, {subject}: {with_t['deadlocks']} deadlocks in {with_t['statements']:,} "
                     f"statements with the triggers, {without['deadlocks']} in {without['statements']:,} without")
    for subject, found in (locks.get("toggle") or {}).items():
        notes.append(f"SQL writers + REST toggle-alls, {subject}: {found['deadlocks']} deadlocks and "
                     f"{found['other_errors']} other errors in {found['statements']:,} statements, "
                     f"{found['failed_requests']} failed of {found['requests']:,} requests")
    return notes


def index_notes(run: Run) -> list[str]:
    """What each of the change log's indexes costs durable writes (bench/triggers.py)."""
    costs = (run.details.get("triggers") or {}).get("change_log_indexes") or {}
    return [f"change log {name}: {cost['tps']:,.0f} tps, {cost['ratio']:.0%} of the same writes without triggers"
            for name, cost in costs.items()]
