"""One log line and one metrics sample per request."""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from todopy.fastpaths import AccessLog
from todopy.environ import ENDPOINT, ERROR, STREAM, USER
from todopy.metrics import Metrics

# Metric labels come from closed sets: a label per made-up method would let any client
# grow /metrics (and every scrape's time) without bound. Routes are endpoint names.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"
UNMATCHED = "unmatched"


def method_label(method: str) -> str:
    """The request method as a metric label: one of KNOWN_METHODS, else OTHER."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


class AccessLogMiddleware:
    def __init__(self, app: Callable, metrics: Metrics, access_log: AccessLog | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log if access_log is not None else AccessLog()
        self.clock = clock
        # Labelled metric children, looked up once per label set rather than on every request.
        self._samples: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = self.clock()
        statuses: list[str] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            statuses.append(status)
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, start)
        finally:
            self._record(environ, statuses[-1].split(" ", 1)[0] if statuses else "500", self.clock() - started)

    def _record(self, environ: dict, status: str, seconds: float) -> None:
        if environ.get(STREAM):
            return  # streams log their own open and close lines
        route = environ.get(ENDPOINT, UNMATCHED)
        method = environ.get("REQUEST_METHOD", "-")
        label = method_label(method)
        samples = self._samples.get((route, label, status))
        if samples is None:
            samples = self._samples[route, label, status] = (
                self.metrics.requests.labels(route, label, status), self.metrics.request_seconds.labels(route))
        samples[0].inc()
        samples[1].observe(seconds)
        user = environ.get(USER)
        self.access_log.write(method, environ.get("PATH_INFO", ""), status, seconds, user.id if user else None,
                              environ.get(ERROR))
