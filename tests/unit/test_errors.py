"""todopy.errors: the database away is a plain exception, answered over HTTP as HTTP_STATUSES says."""
from __future__ import annotations

import json

import pytest

from todopy.environ import ERROR
from todopy.errors import HTTP_STATUSES, DatabaseUnavailable, HTTPError, NotFound, as_http_error
from todopy.middleware.errors import ErrorMiddleware


def raising(error: BaseException):
    def app(environ, start_response):
        raise error
    return app


def served(app, method: str = "GET") -> tuple[str, list[tuple[str, str]], bytes, dict]:
    answered: list = []
    environ = {"REQUEST_METHOD": method, "PATH_INFO": "/api/todos/"}
    body = b"".join(app(environ, lambda status, headers, exc_info=None: answered.extend([status, headers])))
    return answered[0], answered[1], body, environ


def test_the_database_away_is_not_an_http_error():
    assert not issubclass(DatabaseUnavailable, HTTPError)
    assert DatabaseUnavailable("away").code == "database_unavailable"
    assert DatabaseUnavailable("slow", code="database_timeout").code == "database_timeout"


def test_http_errors_answer_for_themselves_and_unknown_exceptions_for_nothing():
    missing = NotFound("no such list")
    assert as_http_error(missing) is missing
    assert as_http_error(ValueError("a bug")) is None


@pytest.mark.parametrize("code", ["database_unavailable", "database_timeout", "database_busy"])
def test_the_database_away_is_a_503_with_its_own_code_and_message(code):
    status, headers, body, environ = served(ErrorMiddleware(raising(DatabaseUnavailable("try again", code=code))))
    assert status.startswith("503 ") and HTTP_STATUSES[DatabaseUnavailable] == 503
    # docs/api.md's shape, serialized as every HTTPError's body is (json.dumps' defaults).
    assert body == json.dumps({"error": {"code": code, "message": "try again"}}).encode()
    assert [name for name, _ in headers] == ["Content-Type", "Content-Length"]
    assert environ[ERROR] == code


def test_a_subclass_is_answered_as_its_parent_row():
    class PoolExhausted(DatabaseUnavailable):
        pass

    error = as_http_error(PoolExhausted("no connection came free"))
    assert error is not None and (error.status, error.code) == (503, "database_unavailable")


def test_anything_else_is_a_logged_500(caplog):
    status, _, body, environ = served(ErrorMiddleware(raising(KeyError("oops"))))
    assert status.startswith("500 ") and json.loads(body)["error"]["code"] == "internal_error"
    assert environ[ERROR] == "internal_error" and "unexpected error in GET /api/todos/" in caplog.text
