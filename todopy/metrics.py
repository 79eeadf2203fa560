"""Prometheus metrics (official prometheus_client), summed over every worker process.

With several workers a scrape reaches one of them at random, so `todopy serve`
puts the library in multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set before it is
imported): every worker writes its samples to files there and any worker
answers /metrics for all of them.
"""
from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Every metric the server exports; one instance per process, handed to who records."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("todopy_http_requests", "HTTP requests by route and status",
                                ["route", "method", "status"], registry=r)
        self.request_seconds = Histogram("todopy_http_request_seconds", "HTTP request latency",
                                         ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.open_streams = Gauge("todopy_open_streams", "WebSocket streams open now", registry=r,
                                  multiprocess_mode="livesum")
        self.messages_sent = Counter("todopy_stream_messages_sent", "Stream messages written to sockets",
                                     registry=r)
        self.slow_consumers = Counter("todopy_stream_slow_consumers_dropped",
                                      "Streams closed with 4008 because they fell behind", registry=r)
        self.listener_reconnects = Counter("todopy_listener_reconnects",
                                           "Times the LISTEN connection was re-established", registry=r)
        self.listener_up = Gauge("todopy_listener_up", "1 while the change listener is connected",
                                 registry=r, multiprocess_mode="livemin")
        self.changes_dispatched = Counter("todopy_changes_dispatched", "Changes read from the change log",
                                          registry=r)
        self.write_to_send_seconds = Histogram(
            "todopy_write_to_send_seconds", "From a change's commit-time stamp to its frame being written",
            buckets=LATENCY_BUCKETS, registry=r)
        self.streams_refused = Counter("todopy_streams_refused",
                                       "Stream handshakes refused: a user at their cap (streams_per_user), or "
                                       "the process near its open-files limit (descriptors)", ["limit"], registry=r)
        self.writes_refused = Counter("todopy_writes_refused",
                                      "Writes refused with 429 slow_down: the user's write budget was spent",
                                      registry=r)

        self.ringer_elected = Gauge("todopy_ringer_elected", "1 in the process that rings change notifications",
                                    registry=r, multiprocess_mode="livesum")
        self.ringer_lag_seconds = Gauge(
            "todopy_ringer_lag_seconds",
            "At the ringer's latest tick, how long the oldest change it rang had waited since it was written",
            registry=r, multiprocess_mode="livemax")
        self.ringer_doorbells = Counter(
            "todopy_ringer_doorbells", "Times a write woke the sleeping ringer (its doorbell) instead of a tick",
            registry=r)
        self.ringer_silent = Gauge(
            "todopy_ringer_silent", "1 while no ring came for TODOPY_RING_SILENCE: this process reads the log itself",
            registry=r, multiprocess_mode="livemax")

    def render(self) -> bytes:
        if os.environ.get(MULTIPROCESS_ENV):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
