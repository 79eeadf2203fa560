"""Logging set-up: readable lines by default, one JSON object per line with --log-format json."""
from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from typing import TextIO

# Attributes every LogRecord has; anything else was passed in `extra=` and belongs in JSON output.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
ACCESS = logging.getLogger("todopy.access")
# What could end a line, or rewrite it on a terminal, in a text log: C0 and C1 controls,
# DEL, and Unicode's line and paragraph separators. A client's `%0a` in a path would
# otherwise start a line of its choosing (log forging).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """`text` with every control character written as a backslash escape, so it stays one line."""
    return _CONTROL.sub(_escape, text) if _CONTROL.search(text) else text


class TextFormatter(logging.Formatter):
    """The text format, with control characters in messages escaped (tracebacks stay multi-line)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        message = record.message
        escaped = escape_controls(message)
        if escaped is message:
            return super().formatMessage(record)
        record.message = escaped
        try:
            return super().formatMessage(record)
        finally:
            record.message = message


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        entry.update({key: value for key, value in vars(record).items() if key not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(log_format: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class AccessLog:
    """The access log: one line per request, as the `todopy.access` logger's INFO lines look.

    Written straight to the log stream (stderr), not through logging: a LogRecord, the
    walk up three loggers, the handler's locks and a strftime per line cost more than
    routing the request. The logger's level still decides whether lines are written,
    and the lines are those the configured format (text or JSON) would write
    (tests/test_logs.py holds them to it).
    """

    def __init__(self, log_format: str = "text", stream: TextIO | None = None) -> None:
        self.json = log_format == "json"
        self.stream = stream if stream is not None else sys.stderr
        self._second = -1
        self._stamp = ""

    def write(self, method: str, path: str, status: str, seconds: float, user_id: str | None,
              error: str | None) -> None:
        if not ACCESS.isEnabledFor(logging.INFO):
            return
        now = time.time()
        second = int(now)
        if second != self._second:          # the time's text changes once a second
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S" if self.json else "%Y-%m-%d %H:%M:%S",
                                        time.localtime(now))
        millis = int((now - second) * 1000)
        message = "%s %s %s %.1fms" % (method, path, status, seconds * 1000)
        if not self.json:
            message = escape_controls(message)   # JSON escapes them itself
        if self.json:
            line = json.dumps({"time": f"{self._stamp}.{millis:03d}", "level": "INFO", "logger": ACCESS.name,
                               "message": message, "method": method, "path": path, "status": int(status),
                               "ms": round(seconds * 1000, 2), "user_id": user_id, "error": error}, default=str)
        else:
            line = f"{self._stamp},{millis:03d} INFO [{os.getpid()}] {ACCESS.name}: {message}"
        self.stream.write(line + "\n")
        self.stream.flush()
