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
    measured: float | None
    unit: str
    ceiling: float | None = None          # the same quantity for the ceiling server, same run
    relative: bool = False                # judged as a ratio to the ceiling (even when a phase did not run)

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
                "ratio": self.ratio, "target": self.target, "pass": self.passed}


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


def table(figures: list[Figure]) -> str:
    rows = [("figure", "measured", "ceiling", "ratio", "target", "result")]
    for figure in figures:
        result = {True: "PASS", False: "MISS", None: "n/a"}[figure.passed]
        ratio = "-" if figure.ratio is None else f"{figure.ratio:.0%}"
        rows.append((figure.label, _number(figure.measured, figure.unit), _number(figure.ceiling, figure.unit),
                     ratio, figure.target, result))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) if i in (0, 4, 5) else cell.rjust(widths[i])
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


def figures(run: Run) -> list[Figure]:
    d = run.details
    streams = d.get("streams") or {}
    stages = streams.get("stages") or []
    latency_stage = next((s for s in stages if s["target"] == run.plan.latency_stage), None)
    last = stages[-1] if stages else None
    fanout, throughput, rest_results, trig = d.get("fanout"), d.get("throughput"), d.get("rest"), d.get("triggers")
    wake = d.get("wakeup") or {}
    held_open, failover = wake.get("held_open"), wake.get("failover")
    held = min(last["open"], streams["alive_at_end"]) if last else None
    return [
        Figure("streams_held", "streams held, all ready", held, "streams"),
        Figure("pg_connections", f"PostgreSQL connections (pool {POOL_SIZE})", streams.get("pg_connections_peak"),
               "conns"),
        Figure("rss_per_stream_kib", "RSS per idle stream",
               streams["rss_per_stream_bytes"] / 1024 if streams else None, "KiB"),
        Figure("latency_p50_ms", f"commit-to-client p50 ({run.plan.latency_stage:,} streams, "
                                 f"{run.plan.probe_rate:,.0f} writes/s)",
               latency_stage["latency_ms"]["p50"] if latency_stage else None, "ms"),
        Figure("latency_p99_ms", f"commit-to-client p99 ({run.plan.latency_stage:,} streams, "
                                 f"{run.plan.probe_rate:,.0f} writes/s)",
               latency_stage["latency_ms"]["p99"] if latency_stage else None, "ms"),
        Figure("held_open_p99_ms", "commit-to-client p99, other lists, one write transaction open",
               held_open["latency_ms"]["p99"] if held_open else None, "ms"),
        Figure("failover_s", "ringer killed (SIGKILL): longest wait of a change",
               failover["worst_wait_s"] if failover else None, "s"),
        Figure("fanout_messages_per_s", f"fan-out, {run.plan.fanout_streams:,} streams of one user",
               fanout["todopy_messages_per_s"] if fanout else None, "msg/s",
               fanout["ceiling_messages_per_s"] if fanout else None, relative=True),
        Figure("change_throughput_per_s", f"change throughput, {run.plan.bulk_users} users",
               throughput["changes_per_s"] if throughput else None, "changes/s"),
        Figure("rest_get_per_s", "REST GET /api/todos/<id>/",
               rest_results["get"]["requests_per_s"] if rest_results else None, "req/s",
               rest_results["ceiling"]["requests_per_s"] if rest_results else None, relative=True),
        Figure("rest_put_per_s", "REST PUT /api/todos/<id>/",
               rest_results["put"]["requests_per_s"] if rest_results else None, "req/s",
               rest_results["ceiling"]["requests_per_s"] if rest_results else None, relative=True),
        Figure("durable_writes_16", "durable writes, triggers vs none, 16 writers",
               trig["writers_16"]["tps_with_triggers"] if trig else None, "tps",
               trig["writers_16"]["tps_without_triggers"] if trig else None, relative=True),
        Figure("durable_writes_1", "durable writes, triggers vs none, 1 writer",
               trig["writers_1"]["tps_with_triggers"] if trig else None, "tps",
               trig["writers_1"]["tps_without_triggers"] if trig else None, relative=True),
    ]


def cpu_notes(run: Run) -> list[str]:
    """Server CPU time per message and per request, todopy against its ceiling: what other load on a
    shared machine distorts least (the figures above are rates, and the rates share the CPUs)."""
    notes = []
    fanout, rest_results = run.details.get("fanout"), run.details.get("rest")
    if fanout:
        mine, bare = fanout["todopy"]["server_cpu_us_per_frame"], fanout["ceiling"]["server_cpu_us_per_frame"]
        notes.append(f"fan-out CPU per message: todopy {mine} µs, ceiling {bare} µs ({bare / mine:.0%} efficiency)")
    if rest_results:
        bare = rest_results["ceiling"]["server_cpu_us_per_request"]
        for name in ("get", "put"):
            mine = rest_results[name]["server_cpu_us_per_request"]
            notes.append(f"REST {name.upper()} CPU per request: todopy {mine} µs, ceiling {bare} µs "
                         f"({bare / mine:.0%} efficiency)")
    return notes


def index_notes(run: Run) -> list[str]:
    """What each of the change log's indexes costs durable writes (bench/triggers.py)."""
    costs = (run.details.get("triggers") or {}).get("change_log_indexes") or {}
    return [f"change log {name}: {cost['tps']:,.0f} tps, {cost['ratio']:.0%} of the same writes without triggers"
            for name, cost in costs.items()]
