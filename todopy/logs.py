"""Logging set-up: readable lines by default, one JSON object per line with --log-format json."""
from __future__ import annotations

import json
import logging
import re
import sys

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
    # No format of ours names the thread. Asking for it costs, in a greenlet, a dummy
    # Thread kept for the greenlet's life: a few hundred bytes and a dozen objects for
    # the garbage collector to walk, for every stream that logged its opening.
    logging.logThreads = False
