"""One log line and one metrics sample per request."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable

from todopy.metrics import Metrics

log = logging.getLogger("todopy.access")
ENDPOINT_KEY = "todopy.endpoint"      # set by the router once the URL matched


class AccessLogMiddleware:
    def __init__(self, app: Callable, metrics: Metrics, clock: Callable[[], float] = time.perf_counter) -> None:
        self.app = app
        self.metrics = metrics
        self.clock = clock
        # Labelled metric children, looked up once per label set rather than on every request.
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._histograms: dict[str, Any] = {}

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = self.clock()
        status_holder: list[str] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status_holder[:] = [status.split(" ", 1)[0]]
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, start)
        finally:
            self._record(environ, status_holder[0] if status_holder else "500", self.clock() - started)

    def _record(self, environ: dict, status: str, seconds: float) -> None:
        if environ.get("todopy.stream"):
            return  # streams log their own open and close lines
        route = environ.get(ENDPOINT_KEY, "unmatched")
        method = environ.get("REQUEST_METHOD", "-")
        counter = self._counters.get((route, method, status))
        if counter is None:
            counter = self._counters[route, method, status] = self.metrics.requests.labels(route, method, status)
        counter.inc()
        histogram = self._histograms.get(route)
        if histogram is None:
            histogram = self._histograms[route] = self.metrics.request_seconds.labels(route)
        histogram.observe(seconds)
        user = environ.get("todopy.user")
        log.info("%s %s %s %.1fms", method, environ.get("PATH_INFO", ""), status, seconds * 1000,
                 extra={"method": method, "path": environ.get("PATH_INFO", ""), "status": int(status),
                        "ms": round(seconds * 1000, 2), "user_id": user.id if user else None,
                        "error": environ.get("todopy.error")})
