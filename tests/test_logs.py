"""Access lines, written without logging, are the lines logging's configured formats would write."""
from __future__ import annotations

import io
import json
import logging
import os
import re

import pytest

from todopy import logs

CALLS = [("GET", "/api/todos/5f0c2a8e-3b1d-4c6e-9a7f-2d8b1e4c6a90/", "200", 0.0012345, "u-1", None),
         ("POST", "/api/todos/", "422", 0.25, None, "invalid"),
         ("PATCH", "/caf\u00e9 \"quoted\"", "500", 12.0, "u-2", "internal_error")]


@pytest.fixture(autouse=True)
def access_at_info():
    """As `todopy serve` configures it (the root logger at INFO)."""
    logs.ACCESS.setLevel(logging.INFO)
    yield
    logs.ACCESS.setLevel(logging.NOTSET)


def through_logging(formatter: logging.Formatter, call: tuple, created: float) -> str:
    """The line logging wrote for the access log before (a LogRecord with the same fields)."""
    method, path, status, seconds, user_id, error = call
    record = logging.LogRecord("todopy.access", logging.INFO, __file__, 0, "%s %s %s %.1fms",
                               (method, path, status, seconds * 1000), None)
    record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
    record.process = os.getpid()
    if isinstance(formatter, logs.JSONFormatter):
        record.__dict__.update({"method": method, "path": path, "status": int(status), "ms": round(seconds * 1000, 2),
                                "user_id": user_id, "error": error})
    return formatter.format(record)


@pytest.mark.parametrize("log_format, formatter", [("text", logging.Formatter(logs.TEXT_FORMAT)),
                                                   ("json", logs.JSONFormatter())])
@pytest.mark.parametrize("call", CALLS)
def test_access_lines_are_what_logging_would_write(monkeypatch, log_format, formatter, call):
    created = 1_795_000_000.0125      # a moment with milliseconds to show
    monkeypatch.setattr(logs.time, "time", lambda: created)
    stream = io.StringIO()
    logs.AccessLog(log_format, stream).write(*call)
    assert stream.getvalue() == through_logging(formatter, call, created) + "\n"


def test_the_time_text_follows_the_clock(monkeypatch):
    now = [1_795_000_000.5]
    monkeypatch.setattr(logs.time, "time", lambda: now[0])
    stream = io.StringIO()
    access = logs.AccessLog("text", stream)
    for moment in (1_795_000_000.5, 1_795_000_000.999, 1_795_000_001.001, 1_795_003_600.0):
        now[0] = moment
        access.write(*CALLS[0])
    stamps = re.findall(r"^(\S+ \S+) ", stream.getvalue(), re.MULTILINE)
    formatter = logging.Formatter(logs.TEXT_FORMAT)
    assert stamps == [through_logging(formatter, CALLS[0], moment)[:23]
                      for moment in (1_795_000_000.5, 1_795_000_000.999, 1_795_000_001.001, 1_795_003_600.0)]


def test_the_access_loggers_level_still_decides():
    stream = io.StringIO()
    logs.ACCESS.setLevel(logging.WARNING)
    logs.AccessLog("text", stream).write(*CALLS[0])
    assert stream.getvalue() == ""


def test_json_lines_are_json_objects():
    stream = io.StringIO()
    logs.AccessLog("json", stream).write(*CALLS[1])
    entry = json.loads(stream.getvalue())
    assert entry["logger"] == "todopy.access" and entry["status"] == 422 and entry["error"] == "invalid"
