"""Prometheus metrics (official prometheus_client), summed over every worker process.

With several workers a scrape reaches one of them at random, so `todopy serve`
puts the library in multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set before it is
imported): every worker writes its samples to files there and any worker
answers /metrics for all of them.
"""
from __future__ import annotations

import gc
import logging
import os
import time

import gevent
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

log = logging.getLogger(__name__)
GC_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LONG_GC_PAUSE = 0.5                  # seconds: a collection this long is also logged
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
        self.changes_handed = Counter("todopy_changes_handed",
                                      "Changes this process wrote, handed to its streams from the write's own "
                                      "read-back as it committed (no ring waited for, no read of the log)",
                                      registry=r)
        self.write_to_send_seconds = Histogram(
            "todopy_write_to_send_seconds",
            "From a change's commit-time stamp to its frames being written: once per change per fan-out "
            "(the streams that took it at once), and once per change a stream wrote from its queue",
            buckets=LATENCY_BUCKETS, registry=r)
        # Frames written by a fan-out under way, counted here and added to `messages_sent` once
        # when it ends (`sent_in_fan_out`): an update of a prometheus_client metric takes a lock
        # (gevent's), and with two per frame a fan-out to 1,000 streams took 16.6 µs of CPU per
        # message against 11.0 µs now (docs/design.md, "The path of a change", 5).
        self.frames_in_fan_out = 0
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

        self.gc_pause_seconds = Histogram(
            "todopy_gc_pause_seconds", "Garbage collections by generation: how long each stopped the process",
            ["generation"], buckets=GC_BUCKETS, registry=r)
        self._pauses: list[tuple[int, float]] = []
        self._collection_started = 0.0

    def sent_in_fan_out(self, changed_times: list[float]) -> None:
        """A fan-out ended: its frames counted, and each change's time from commit to now observed once."""
        frames, self.frames_in_fan_out = self.frames_in_fan_out, 0
        if frames:
            self.messages_sent.inc(frames)
            self._observe_write_to_send(changed_times)

    def sent_from_queue(self, changed_times: list[float]) -> None:
        """A stream wrote these changes from its queue (it had fallen behind)."""
        self.messages_sent.inc(len(changed_times))
        self._observe_write_to_send(changed_times)

    def _observe_write_to_send(self, changed_times: list[float]) -> None:
        now = time.time()
        for changed_time in changed_times:
            self.write_to_send_seconds.observe(max(0.0, now - changed_time))

    def watch_collections(self, interval: float = 1.0) -> None:
        """Time every garbage collection of this process (a server worker's: once, at start).

        The callback only notes the time: it runs wherever an allocation set the
        collector off, maybe inside a metric's or a handler's lock. The pauses reach
        the histogram (and the log, when long) every `interval` seconds, and at a scrape.
        """
        gc.callbacks.append(self._on_collection)

        def publish_forever() -> None:
            while True:
                gevent.sleep(interval)
                self.publish_collections()

        gevent.spawn(publish_forever)

    def _on_collection(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._collection_started = time.perf_counter()
        else:
            self._pauses.append((info["generation"], time.perf_counter() - self._collection_started))

    def publish_collections(self) -> None:
        pauses, self._pauses = self._pauses, []
        for generation, seconds in pauses:
            self.gc_pause_seconds.labels(str(generation)).observe(seconds)
            if seconds >= LONG_GC_PAUSE:
                log.warning("a generation-%d garbage collection stopped this process for %.2f s", generation, seconds)

    def render(self) -> bytes:
        self.publish_collections()
        if os.environ.get(MULTIPROCESS_ENV):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
